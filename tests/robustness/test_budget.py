"""The memory budget: estimates against the bytes the engine really allocates, the refusal and its advice."""

from __future__ import annotations

import math
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from helpers import CHANNELS, DTYPES, random_image

from pyramid_explorer.core import budget
from pyramid_explorer.core.budget import (
    COMPARISONS,
    ENV_VARIABLE,
    MemoryBudgetError,
    check_memory,
    estimate_memory,
    format_bytes,
    memory_budget,
    parse_budget,
    preview,
    suggest,
)
from pyramid_explorer.core.pyramid import gaussian_pyramid, laplacian_pyramid, max_levels

SHAPES = ((1, 1), (1, 9), (3, 5), (17, 31), (153, 101))


@pytest.mark.parametrize("size", SHAPES)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("levels", [None, 1, 2])
def test_estimate_matches_the_arrays_the_engine_builds(size, channels, dtype, levels):
    image = random_image(size, dtype, channels)
    count = None if levels is None else min(levels, max_levels(image.shape))
    gauss = gaussian_pyramid(image, count)
    bands = laplacian_pyramid(image, count)
    estimate = estimate_memory(image.shape, image.dtype, levels)
    assert estimate.levels == len(gauss)
    assert estimate.image == image.nbytes
    assert estimate.gaussian == sum(level.nbytes for level in gauss[1:])
    assert estimate.bands == sum(band.nbytes for band in bands)
    per_pixel = COMPARISONS * 5 * ((channels or 1) + 1)  # float32 + uint8 of image and difference
    assert estimate.comparisons == per_pixel * size[0] * size[1]
    assert estimate.total == (estimate.image + estimate.gaussian + estimate.bands + estimate.working
                              + estimate.comparisons)


@pytest.mark.parametrize("storage", ["int16", "uint8_saturate"])
def test_integer_band_storage_is_counted_by_its_own_size(storage):
    image = random_image((37, 23), np.uint8, 3)
    estimate = estimate_memory(image.shape, np.uint8, storage=storage)
    assert estimate.bands == sum(band.nbytes for band in laplacian_pyramid(image, storage=storage))


@pytest.mark.parametrize(
    ("dtype", "channels", "storage"),
    [(np.uint8, None, "float32"), (np.uint8, 3, "float32"), (np.uint16, 4, "float32"),
     (np.float32, 3, "float32"), (np.uint8, 3, "int16"), (np.uint8, 4, "uint8_saturate")],
)
def test_estimate_covers_the_peak_the_allocator_sees(dtype, channels, storage):
    """tracemalloc sees every numpy allocation, OpenCV's outputs included: building the bands peaks at
    no more than the Gaussian levels + bands + working memory of the estimate, and not far below it."""
    image = random_image((301, 257), dtype, channels)
    estimate = estimate_memory(image.shape, dtype, storage=storage)
    tracemalloc.start()
    try:
        bands = laplacian_pyramid(image, storage=storage)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    counted = estimate.gaussian + estimate.bands + estimate.working
    assert sum(band.nbytes for band in bands) == estimate.bands
    assert 0.8 * counted <= peak <= counted + (64 << 10)


def test_large_image_follows_the_textbook_ratios():
    """Gaussian levels ~ 4/3 of the image, float32 bands 4x that for uint8 (the issue's rule of thumb)."""
    estimate = estimate_memory((4096, 4096, 3), np.uint8, comparisons=0)
    assert math.isclose((estimate.image + estimate.gaussian) / estimate.image, 4 / 3, rel_tol=1e-3)
    assert math.isclose(estimate.bands / (estimate.image + estimate.gaussian), 4, rel_tol=1e-3)
    assert estimate.comparisons == 0


def test_comparisons_can_be_capped():
    capped = estimate_memory((1000, 1000), np.uint16, comparison_pixels=5000)
    assert capped.comparisons == COMPARISONS * 5000 * 5 * 2
    assert estimate_memory((10, 10), np.uint16, comparison_pixels=10**9).comparisons == COMPARISONS * 100 * 10


def test_bad_arguments():
    with pytest.raises(ValueError, match="storage"):
        estimate_memory((5, 5), np.uint8, storage="int8")
    with pytest.raises(ValueError, match="negative"):
        estimate_memory((5, 5), np.uint8, comparisons=-1)
    with pytest.raises(ValueError, match="negative"):
        preview(np.zeros((4, 4), np.uint8), -1)


# ------------------------------------------------------------------------------------------- refusal


def test_check_passes_at_the_budget_and_refuses_one_byte_below():
    estimate = estimate_memory((300, 200, 3), np.uint8)
    check_memory(estimate, estimate.total)
    with pytest.raises(MemoryBudgetError) as caught:
        check_memory(estimate, estimate.total - 1)
    assert caught.value.estimate == estimate and caught.value.budget == estimate.total - 1
    assert isinstance(caught.value, ValueError)


def test_refusal_gives_the_numbers_and_what_would_fit():
    shape = (40_000, 40_000, 3)
    estimate = estimate_memory(shape, np.uint8, comparison_pixels=1 << 20)
    limit = 8 << 30
    with pytest.raises(MemoryBudgetError) as caught:
        check_memory(estimate, limit)
    message = str(caught.value)
    assert "\n" not in message
    assert "40000 x 40000 x 3 uint8" in message and f"{estimate.levels} levels" in message
    assert format_bytes(estimate.total) in message and "8.0 GB" in message
    assert "image 4.5 GB" in message and "bands" in message and ENV_VARIABLE in message
    hint = suggest(estimate, limit)
    assert hint.preview_steps is not None
    assert f"downscaled {1 << hint.preview_steps}x" in message


@pytest.mark.parametrize("limit", [50 << 20, 200 << 20, 1 << 30])
def test_suggestions_are_the_largest_that_fit(limit):
    estimate = estimate_memory((6000, 5000, 4), np.uint16)
    hint = suggest(estimate, limit)
    assert hint.preview_steps is not None and hint.preview_steps > 0
    fine = gaussian_shape(estimate.shape, hint.preview_steps - 1)
    coarse = gaussian_shape(estimate.shape, hint.preview_steps)
    assert estimate_memory(coarse, np.uint16).total <= limit < estimate_memory(fine, np.uint16).total
    if hint.levels is None:
        assert estimate_memory(estimate.shape, np.uint16, 1).total > limit
    else:
        assert estimate_memory(estimate.shape, np.uint16, hint.levels).total <= limit
        assert estimate_memory(estimate.shape, np.uint16, hint.levels + 1).total > limit


def test_fewer_levels_are_suggested_when_they_fit():
    estimate = estimate_memory((1024, 1024), np.uint8, comparisons=0)
    two = estimate_memory((1024, 1024), np.uint8, 2, comparisons=0).total
    hint = suggest(estimate, two, comparisons=0)
    assert hint.levels == 2
    with pytest.raises(MemoryBudgetError, match="build at most 2 levels or open a preview downscaled 2x"):
        check_memory(estimate, two, comparisons=0)


def test_nothing_fits_a_tiny_budget():
    estimate = estimate_memory((64, 64), np.uint8)
    assert suggest(estimate, 10) == budget.Suggestion(None, None)
    with pytest.raises(MemoryBudgetError) as caught:
        check_memory(estimate, 10)
    assert "preview" not in str(caught.value) and "levels or" not in str(caught.value)


def gaussian_shape(shape: tuple[int, ...], steps: int) -> tuple[int, ...]:
    h, w = shape[:2]
    for _ in range(steps):
        h, w = (h + 1) // 2, (w + 1) // 2
    return (h, w, *shape[2:])


@pytest.mark.parametrize("steps", [0, 1, 3, 20])
def test_preview_is_the_gaussian_level(steps):
    image = random_image((37, 22), np.uint16, 3)
    levels = gaussian_pyramid(image)
    assert np.array_equal(preview(image, steps), levels[min(steps, len(levels) - 1)])


# -------------------------------------------------------------------------------------------- budget


@pytest.mark.parametrize(
    ("text", "expected"),
    [("6G", 6 << 30), ("512M", 512 << 20), ("2.5GB", int(2.5 * (1 << 30))), ("1048576", 1 << 20),
     (" 64 kib ", 64 << 10), ("1T", 1 << 40), ("50%", 500), ("100%", 1000), (".5k", 512)],
)
def test_parse_budget(text, expected):
    assert parse_budget(text, 1000) == expected


@pytest.mark.parametrize("text", ["", "lots", "0", "-1G", "6X", "0%", "101%", "abc%", "1e9"])
def test_parse_budget_refuses_nonsense(text):
    with pytest.raises(ValueError, match="memory budget"):
        parse_budget(text, 1000)


def test_budget_is_a_share_of_available_memory_or_the_setting(monkeypatch):
    monkeypatch.setattr(budget, "available_memory", lambda: 10_000)
    assert memory_budget({}) == 10_000 * budget.DEFAULT_FRACTION
    assert memory_budget({ENV_VARIABLE: "25%"}) == 2500
    assert memory_budget({ENV_VARIABLE: "3M"}) == 3 << 20
    with pytest.raises(ValueError, match=ENV_VARIABLE):
        memory_budget({ENV_VARIABLE: "plenty"})
    monkeypatch.setenv(ENV_VARIABLE, "7M")
    assert memory_budget() == 7 << 20


def test_budget_falls_back_when_the_os_does_not_say(monkeypatch):
    monkeypatch.setattr(budget, "available_memory", lambda: None)
    assert memory_budget({}) == budget.FALLBACK_BUDGET


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="Linux only")
def test_available_memory_reads_meminfo_then_sysconf(monkeypatch, tmp_path):
    meminfo = {line.split(":")[0]: line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()}
    measured = budget.available_memory()
    assert measured is not None and 0 < measured <= int(meminfo["MemTotal"]) * 1024
    fake = tmp_path / "meminfo"
    fake.write_text("MemTotal:       1000 kB\nMemAvailable:    300 kB\n")
    monkeypatch.setattr(budget, "_MEMINFO", str(fake))
    assert budget.available_memory() == 300 * 1024
    monkeypatch.setattr(budget, "_MEMINFO", str(tmp_path / "missing"))
    assert budget.available_memory() == os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")

    def no_sysconf(name: str) -> int:
        raise ValueError(name)

    monkeypatch.setattr(os, "sysconf", no_sysconf)
    assert budget.available_memory() is None


@pytest.mark.parametrize(("size", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KB"),
                                            (5 << 30, "5.0 GB"), (3 << 40, "3.0 TB")])
def test_format_bytes(size, text):
    assert format_bytes(size) == text
