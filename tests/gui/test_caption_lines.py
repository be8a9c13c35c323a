"""Panel captions keep every number with its label, on as few lines as the width allows; the Compare
tab says a crop once in its header and marks each panel (issue 15, item 4)."""

from __future__ import annotations

import numpy as np
from guitools import wait_idle

from pyramid_explorer.app.caption import Caption
from pyramid_explorer.app.image_panel import ImagePanel
from pyramid_explorer.display import make_layer
from pyramid_explorer.tools.compare import ModeResult

NBSP = "\u00a0"
TITLE = "Nearest: PSNR 40.64 dB, SSIM 0.984 (crop)"


def shown_at(qtbot, text: str, width: int) -> Caption:
    caption = Caption(text)
    qtbot.addWidget(caption)
    caption.resize(width, 20)
    caption.show()
    qtbot.waitUntil(lambda: caption._width == width)  # laid out for this width
    return caption


def lines(caption: Caption) -> int:
    return round(caption.height() / caption.fontMetrics().height())


def label_holding(caption: Caption, item: str):
    """The visible label whose text holds `item` whole (on one line, or its spaces non-breaking where
    the label wraps), else None."""
    whole = item.replace(" ", NBSP)
    def holds(label) -> bool:
        return whole in label.text() or (item in label.text() and not label.wordWrap())
    labels = (caption.name_label, caption.lead_label, caption.numbers_label)
    return next((label for label in labels if label.isVisible() and holds(label)), None)


def test_items_stay_whole_at_any_width(qtbot):
    fm = Caption().fontMetrics()
    items = ("PSNR 40.64 dB,", "SSIM 0.984 (crop)")
    widest = max(fm.horizontalAdvance(item.replace(" ", NBSP)) for item in items)
    for width in range(widest + 2, fm.horizontalAdvance(TITLE) + 40, 9):
        caption = shown_at(qtbot, TITLE, width)
        for item in items:
            label = label_holding(caption, item) or label_holding(caption, item.rstrip(","))
            assert label is not None, (width, item)
            assert label.geometry().right() < width
        assert caption.shown_numbers() == "PSNR 40.64 dB, SSIM 0.984 (crop)"


def test_the_first_item_goes_beside_the_name_when_it_fits_so_two_lines_do(qtbot):
    fm = Caption().fontMetrics()
    width = fm.horizontalAdvance("Nearest:") + 4 + fm.horizontalAdvance(f"PSNR{NBSP}40.64{NBSP}dB,") + 2
    caption = shown_at(qtbot, TITLE, width)
    assert lines(caption) == 2
    assert caption.name_label.text() == "Nearest:"
    assert caption.lead_label.text() == f"PSNR{NBSP}40.64{NBSP}dB,"
    assert caption.numbers_label.text() == f"SSIM{NBSP}0.984{NBSP}(crop)"
    assert fm.horizontalAdvance(caption.lead_label.text()) <= caption.lead_label.width()
    wide = shown_at(qtbot, TITLE, fm.horizontalAdvance(TITLE) + 10)
    assert lines(wide) == 1 and not wide.lead_label.isVisible()


def test_a_failed_metric_says_failed_without_an_ellipsis_and_why_in_the_tooltip(qtbot):
    panel = ImagePanel("nearest", histogram=False)
    qtbot.addWidget(panel)
    panel.set_title("Nearest: PSNR/SSIM computing...")
    panel.mark_failed("out of memory")
    assert panel.title() == "Nearest: PSNR/SSIM failed"
    assert "failed: out of memory" in panel.caption.toolTip()


def cropped_result(level: int, mode: str, shape: tuple[int, int]) -> ModeResult:
    image = make_layer(np.zeros(shape, np.uint8), level)
    difference = make_layer(np.zeros(shape, np.float32), level, signed=True)
    return ModeResult(image_id=1, level=level, mode=mode, image=image, difference=difference, cropped=True,
                      psnr=40.64, ssim=0.984)


def test_compare_says_the_crop_in_its_header_and_marks_each_panel(qtbot, opened):
    opened.show_view("compare")
    wait_idle(qtbot, opened)
    tab = opened.tab("compare")
    tab.on_level_changed(0)
    tab.show_mode(cropped_result(0, "bilinear", (20, 30)))
    qtbot.waitUntil(lambda: "(crop)" in tab.mode_panels["bilinear"].title())
    assert tab.mode_panels["bilinear"].title() == "Bilinear: PSNR 40.64 dB, SSIM 0.984 (crop)"
    assert tab._level_label.text().endswith("; compared on the centre 30 x 20 crop")
    tab.on_level_changed(1)  # another level: its own results will say whether they are cropped
    assert "crop" not in tab._level_label.text()


def test_unpool_titles_use_the_human_name_with_the_code_name_in_the_tooltip(qtbot, opened):
    opened.show_view("unpool")
    wait_idle(qtbot, opened)
    panel = opened.tab("unpool").unpooled
    assert panel.title().startswith("Max unpool: ")
    assert "max_unpool" not in panel.title() and "mode: unpool" in panel.caption.toolTip()
