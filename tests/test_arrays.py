"""`core.arrays.to_dtype` against numpy's round-half-to-even and saturation, written out here."""

import numpy as np
import pytest
from helpers import ODD_SHAPES

from pyramid_explorer.core.arrays import to_dtype

INTEGER_DTYPES = (np.uint8, np.int8, np.uint16, np.int16)


def direct(image: np.ndarray, dtype: type) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(np.rint(image.astype(np.float64)), info.min, info.max).astype(dtype)


@pytest.mark.parametrize("dtype", INTEGER_DTYPES)
@pytest.mark.parametrize("source", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [*ODD_SHAPES, (1, 1, 3), (1, 1, 4), (1, 2, 3), (4, 1), (9, 7, 1), (9, 7, 3),
                                   (6, 5, 6), (5, 3, 4)])
def test_rounds_half_to_even_and_saturates(dtype, source, shape):
    rng = np.random.default_rng(sum(shape))
    image = rng.normal(0, 40000, shape).astype(source)
    halves = np.arange(-6, 6) + 0.5  # ties round to the even neighbour
    flat = image.reshape(-1)
    flat[: min(flat.size, halves.size)] = halves[: flat.size]
    out = to_dtype(image, dtype)
    assert out.dtype == dtype and out.shape == shape
    np.testing.assert_array_equal(out, direct(image, dtype))


@pytest.mark.parametrize("dtype", INTEGER_DTYPES)
def test_values_beyond_int32_and_infinities_saturate(dtype):
    image = np.array([[1e10, -1e10, np.inf, -np.inf, 3e9, 254.5]], np.float32)
    np.testing.assert_array_equal(to_dtype(image, dtype), direct(image, dtype))


def test_float_targets_are_a_plain_cast():
    image = np.array([[0.5, -1.25, 300.75]], np.float32)
    assert to_dtype(image, np.float32) is image
    np.testing.assert_array_equal(to_dtype(image, np.float64), image.astype(np.float64))
