"""The Compare job on several threads: the same numbers as one after another and as the core's plain
PSNR/SSIM, images before numbers, and no step thread outliving the job (closed early or failing)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pyramid_explorer import jobs
from pyramid_explorer.core.arrays import to_dtype
from pyramid_explorer.core.deconv import DeconvSettings, aligned, deconv_output
from pyramid_explorer.core.level_input import upsample_level
from pyramid_explorer.core.metrics import psnr, ssim
from pyramid_explorer.core.upsampling import MODES
from pyramid_explorer.jobs import STEP_THREAD_PREFIX, Progress, PyramidRequest, parallel_steps
from pyramid_explorer.tools.compare import CompareRequest, DeconvResult, ModeResult, compare


def step_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(STEP_THREAD_PREFIX)]


def pyramid_of(img):
    *_, p = jobs.build_pyramid(PyramidRequest(1, img))
    return p


def results(request):
    return [item for item in compare(request) if not isinstance(item, Progress)]


def photo(shape, dtype):
    rng = np.random.default_rng(3)
    if dtype == np.float32:
        return rng.random(shape, dtype=np.float32)
    return rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize(("shape", "dtype"), [((45, 67, 3), np.uint8), ((41, 33), np.uint16),
                                              ((38, 50, 4), np.float32)])
def test_threads_give_the_numbers_of_one_thread_and_of_the_plain_metrics(shape, dtype):
    p = pyramid_of(photo(shape, dtype))
    deconv = DeconvSettings(4, 2, "bilinear")
    plain = results(CompareRequest(p, 0, deconv=deconv, threads=1))
    pooled = results(CompareRequest(p, 0, deconv=deconv, threads=3))
    assert [(type(r), getattr(r, "mode", None), r.psnr) for r in plain] == \
        [(type(r), getattr(r, "mode", None), r.psnr) for r in pooled]
    assert [r.ssim for r in plain] == [r.ssim for r in pooled]
    fine, coarse = p.gaussian[0], p.gaussian[1]
    h, w = fine.shape[:2]
    numbered = [r for r in pooled if r.psnr is not None]
    assert len(numbered) == len(pooled) // 3  # each panel: its image, its difference, its numbers
    for r in numbered:
        if isinstance(r, ModeResult):
            up = upsample_level(fine, coarse, r.mode, size=(w, h))
        else:
            up = aligned(deconv_output(coarse, r.settings), r.settings, h, w)
        assert r.psnr == pytest.approx(psnr(up, fine, p.data_range), rel=1e-6)
        assert r.ssim == pytest.approx(ssim(up, fine, p.data_range), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize(("shape", "dtype"), [((37, 44), np.float32), ((30, 41, 3), np.float32),
                                              ((33, 40, 3), np.uint8)])
def test_every_image_and_difference_holds_its_own_modes_result(shape, dtype):
    """A float level's image layer is the float result its difference and numbers are made from: each
    layer must still hold its own mode's result after every other step ran."""
    p = pyramid_of(photo(shape, dtype))
    fine, coarse = p.gaussian[0], p.gaussian[1]
    h, w = fine.shape[:2]
    settings = DeconvSettings(4, 2, "bilinear")
    for threads in (1, 2):
        items = results(CompareRequest(p, 0, deconv=settings, threads=threads))
        for r in items:
            if isinstance(r, ModeResult):
                up = upsample_level(fine, coarse, r.mode, size=(w, h))
                np.testing.assert_array_equal(r.image.data, up.astype(dtype) if dtype == np.float32 else
                                              np.clip(np.rint(up), 0, 255).astype(dtype))
            else:
                up = aligned(deconv_output(coarse, settings), settings, h, w)
            if r.difference is None:  # the images come first, their differences after them
                assert r.psnr is None
                continue
            mean = up if up.ndim == 2 else up.mean(axis=2, dtype=np.float64)
            reference = fine if fine.ndim == 2 else fine.mean(axis=2, dtype=np.float64)
            np.testing.assert_allclose(r.difference.data, mean - reference, atol=1e-4)
        assert all(r.difference is not None for r in items[len(items) // 3:])


@pytest.mark.parametrize("kernel", ["box", "bilinear"])
def test_every_image_comes_before_the_first_numbers_in_panel_order(kernel):
    """The images in panel order, then the differences, then the numbers, each in the order their results
    are made. The bilinear kernel of size 4 at stride 2 is the deconv_bilinear mode's operation: its
    difference and numbers come with that mode's, and they are that mode's."""
    p = pyramid_of(photo((40, 56, 3), np.uint8))
    items = results(CompareRequest(p, 0, deconv=DeconvSettings(4, 2, kernel), threads=4))
    third = len(items) // 3
    images, differences, numbered = items[:third], items[third:2 * third], items[2 * third:]
    assert all(r.difference is None and r.psnr is None for r in images)
    assert all(r.difference is not None and r.psnr is None for r in differences)
    assert all(r.difference is not None and r.psnr is not None for r in numbered)
    names = [getattr(r, "mode", "deconv") for r in items]
    assert names[:third] == [*MODES, "deconv"]
    # area at exactly twice the size is nearest: its difference and numbers come with nearest's; so do the
    # bilinear transposed convolution's with deconv_bilinear's
    order = ["nearest", "area", *(m for m in MODES if m not in ("nearest", "area"))]
    after = order.index("deconv_bilinear") + 1
    twin = [*order[:after], "deconv", *order[after:]]
    half = 2 * third
    assert names[third:half] == names[half:] == (twin if kernel == "bilinear" else [*order, "deconv"])
    final = dict(zip(names[half:], items[half:], strict=True))
    assert isinstance(final["deconv"], DeconvResult)
    shared = (final["deconv"].psnr, final["deconv"].ssim) == (final["deconv_bilinear"].psnr,
                                                              final["deconv_bilinear"].ssim)
    assert shared == (kernel == "bilinear")
    assert (final["deconv"].difference is final["deconv_bilinear"].difference) == (kernel == "bilinear")
    settings = DeconvSettings(4, 2, kernel)  # shared or not, the numbers are those of its own output
    own = aligned(deconv_output(p.gaussian[1], settings), settings, 40, 56)
    assert final["deconv"].psnr == pytest.approx(psnr(p.gaussian[0], own, 255.0), rel=1e-9)
    assert final["deconv"].ssim == pytest.approx(ssim(p.gaussian[0], own, 255.0), abs=1e-9)


@pytest.mark.parametrize(("shape", "dtype", "shared"), [
    ((40, 56, 3), np.uint8, True), ((30, 42), np.float32, True),  # twice the coarse level's size
    ((41, 57, 3), np.uint8, False),  # odd: not a whole factor, area is not nearest
    ((30, 42), "nan", False),  # a NaN: area's zero weights turn it into more NaN than nearest's
])
def test_area_shares_nearests_numbers_only_where_it_is_nearest(shape, dtype, shared):
    img = photo(shape, np.float32 if dtype == "nan" else dtype)
    if dtype == "nan":
        img[10, 10] = np.nan
    p = pyramid_of(img)
    items = results(CompareRequest(p, 0, ("area", "bilinear", "nearest"), None, threads=2))
    final = {r.mode: r for r in items[6:]}
    made = ["bilinear", "nearest", "area"] if shared else ["area", "bilinear", "nearest"]
    assert [r.mode for r in items[3:6]] == [r.mode for r in items[6:]] == made
    assert (final["area"].difference is final["nearest"].difference) == shared
    fine, coarse = p.gaussian[0], p.gaussian[1]
    own = upsample_level(fine, coarse, "area", size=fine.shape[1::-1])
    assert final["area"].image is items[0].image  # its own image
    np.testing.assert_array_equal(final["area"].image.data, to_dtype(own, fine.dtype))
    assert (final["area"].psnr == final["nearest"].psnr) == shared
    assert final["area"].psnr == pytest.approx(psnr(fine, own, p.data_range), rel=1e-9)
    assert final["area"].ssim == pytest.approx(ssim(fine, own, p.data_range), abs=1e-9, nan_ok=True)


def test_a_stride_other_than_two_has_no_numbers_step():
    p = pyramid_of(photo((40, 56, 3), np.uint8))
    items = results(CompareRequest(p, 0, ("nearest",), DeconvSettings(4, 3, "bilinear"), threads=2))
    assert [(type(r), r.difference is None, r.psnr is None) for r in items] == [
        (ModeResult, True, True), (DeconvResult, True, True), (ModeResult, False, True),
        (ModeResult, False, False)]


def test_closing_the_job_midway_stops_its_threads_and_starts_no_more_steps():
    started: list[int] = []
    gate = threading.Event()

    def step(n):
        def run():
            started.append(n)
            if n:  # step 0 is done at once; the others hold their thread until the gate opens
                gate.wait(10)
            return n
        return run

    steps = parallel_steps([step(n) for n in range(8)], threads=2)
    assert next(steps) == 0
    opener = threading.Timer(0.05, gate.set)  # the running steps end a moment after the close begins
    opener.start()
    steps.close()
    opener.join()
    assert step_threads() == []
    # at most the two threads' steps (1, 2) were running when it closed; the others never run
    assert set(started) <= {0, 1, 2}


def test_a_failing_step_reaches_the_job_after_its_threads_stop():
    def boom():
        raise ValueError("bad step")

    with pytest.raises(ValueError, match="bad step"):
        list(parallel_steps([lambda: 1, boom, lambda: 3], threads=2))
    assert step_threads() == []


def test_one_thread_runs_the_steps_in_the_callers_thread():
    names = list(parallel_steps([lambda: threading.current_thread().name] * 3, threads=1))
    assert names == [threading.current_thread().name] * 3


def test_closing_a_wrapper_of_the_job_during_its_metrics_closes_the_job_and_its_threads():
    """What Esc does to the GUI test's stalled job (a generator wrapping `compare`): closed from its own
    thread while the pool still holds metrics steps (after the first of them), the wrapper lets go of the
    job, which closes at once (not later, by the GC, on some other thread) and leaves no step thread."""
    p = pyramid_of(photo((40, 56, 3), np.uint8))

    def wrapper(request):
        # a for loop, as in the GUI test, not `yield from` (which would close the job explicitly): the
        # job is held by this frame only and must close when the frame lets go of it
        for item in compare(request):  # noqa: UP028
            yield item

    outer = wrapper(CompareRequest(p, 0, threads=2))
    next(r for r in outer if isinstance(r, Progress) and "differences, PSNR, SSIM: 1 of" in r.text)
    assert step_threads() != []  # the pool is still up, running or holding the other metrics
    outer.close()
    assert step_threads() == []


def test_a_failing_upsampling_fails_the_job_and_leaves_no_thread(monkeypatch):
    """A step that fails mid-way raises its error from the job, and no step thread is left running."""
    from pyramid_explorer.tools import compare as compare_module

    def upsample(fine, coarse, mode, size=None):
        if mode == "bilinear":
            raise ValueError("bad upsampling")
        return upsample_level(fine, coarse, mode, size)

    monkeypatch.setattr(compare_module, "upsample_level", upsample)
    p = pyramid_of(photo((30, 34, 3), np.uint8))
    with pytest.raises(ValueError, match="bad upsampling"):
        results(CompareRequest(p, 0, ("nearest", "bilinear", "bicubic"), None, threads=2))
    assert step_threads() == []
