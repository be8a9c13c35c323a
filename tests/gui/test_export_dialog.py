"""File > Export: the dialog drives the core's export on the worker and never overwrites unasked."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
from guitools import make_image, wait_idle
from PySide6.QtCore import Qt

from pyramid_explorer.app.export_dialog import ExportDialog
from pyramid_explorer.core.export import MANIFEST_NAME


def open_dialog(qtbot, window) -> ExportDialog:
    qtbot.keyClick(window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    dialogs = window.findChildren(ExportDialog)
    assert len(dialogs) == 1
    return dialogs[0]


def choose(dialog: ExportDialog, folder, kinds, fmt) -> None:
    dialog.folder.setText(str(folder))
    for kind, box in dialog.kinds.items():
        box.setChecked(kind in kinds)
    dialog.format.setCurrentIndex(dialog.format.findData(fmt))


def test_export_writes_the_levels_through_the_core(qtbot, opened, tmp_path):
    out = tmp_path / "out"
    dialog = open_dialog(qtbot, opened)
    choose(dialog, out, {"gaussian"}, "npy")
    dialog.levels.setValue(3)
    with qtbot.waitSignal(opened.controller.export_finished, timeout=20_000):
        dialog.export_button.click()
    wait_idle(qtbot, opened)
    level = make_image()
    for i in range(3):
        np.testing.assert_array_equal(np.load(out / f"gaussian_{i:02d}.npy"), level)
        level = cv2.pyrDown(level)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["status"] == "complete"
    assert opened.status_message() == f"Export wrote 3 files to {out}"


def test_existing_files_are_replaced_only_when_confirmed(qtbot, opened, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "gaussian_00.npy").write_bytes(b"precious")
    dialog = open_dialog(qtbot, opened)
    choose(dialog, out, {"gaussian"}, "npy")
    dialog.levels.setValue(2)
    monkeypatch.setattr(ExportDialog, "confirm_overwrite", lambda self, existing: False)
    dialog.export_button.click()
    assert (out / "gaussian_00.npy").read_bytes() == b"precious"
    assert "Nothing exported" in dialog.summary.text() and dialog.isVisible()
    monkeypatch.setattr(ExportDialog, "confirm_overwrite", lambda self, existing: True)
    with qtbot.waitSignal(opened.controller.export_finished, timeout=20_000):
        dialog.export_button.click()
    np.testing.assert_array_equal(np.load(out / "gaussian_00.npy"), make_image())


def test_options_that_do_not_go_together_disable_export(qtbot, opened, tmp_path):
    dialog = open_dialog(qtbot, opened)
    choose(dialog, tmp_path / "x", {"gaussian", "laplacian"}, "ome-tiff")
    assert not dialog.export_button.isEnabled()
    assert "ome-tiff" in dialog.summary.text()
    choose(dialog, tmp_path / "x", {"gaussian"}, "ome-tiff")
    assert dialog.export_button.isEnabled()
    dialog.reject()


def test_a_failing_export_is_reported(qtbot, opened, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    dialog = open_dialog(qtbot, opened)
    choose(dialog, blocker, {"gaussian"}, "npy")
    dialog.export_button.click()
    qtbot.waitUntil(opened.banner.isVisible)
    assert "not a folder" in opened.banner.label.text()
    assert os.path.isfile(blocker)
    wait_idle(qtbot, opened)


def test_current_level_exports_the_level_on_screen_alone(qtbot, opened, tmp_path):
    opened.controller.set_level(2)
    wait_idle(qtbot, opened)
    out = tmp_path / "current"
    dialog = open_dialog(qtbot, opened)
    choose(dialog, out, {"gaussian", "laplacian"}, "npy")
    dialog.which.setCurrentIndex(dialog.which.findData("current"))
    assert dialog.which.currentText() == "Current level (2)" and not dialog.first.isEnabled()
    with qtbot.waitSignal(opened.controller.export_finished, timeout=20_000):
        dialog.export_button.click()
    wait_idle(qtbot, opened)
    levels = opened.controller.pyramid.levels
    gauss = [make_image()]
    for _ in range(levels - 1):
        gauss.append(cv2.pyrDown(gauss[-1]))
    up = cv2.pyrUp(gauss[3].astype(np.float32), dstsize=gauss[2].shape[1::-1])
    band = gauss[2].astype(np.float32) - up
    np.testing.assert_array_equal(np.load(out / "gaussian_02.npy"), gauss[2])
    np.testing.assert_allclose(np.load(out / "laplacian_02.npy"), band, atol=1e-4)
    assert sorted(p.name for p in out.iterdir()) == ["gaussian_02.npy", "laplacian_02.npy", MANIFEST_NAME]
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["parameters"]["levels_exported"] == [2] and manifest["parameters"]["levels"] == levels


def test_a_level_range_exports_those_levels_and_an_empty_range_disables_export(qtbot, opened, tmp_path):
    out = tmp_path / "range"
    dialog = open_dialog(qtbot, opened)
    choose(dialog, out, {"gaussian"}, "tiff")
    dialog.which.setCurrentIndex(dialog.which.findData("range"))
    dialog.first.setValue(3)
    dialog.last.setValue(1)
    assert not dialog.export_button.isEnabled() and "holds no level" in dialog.summary.text()
    dialog.first.setValue(1)
    dialog.last.setValue(2)
    assert dialog.export_button.isEnabled() and dialog.summary.text().startswith("3 files")
    with qtbot.waitSignal(opened.controller.export_finished, timeout=20_000):
        dialog.export_button.click()
    wait_idle(qtbot, opened)
    assert sorted(p.name for p in out.iterdir()) == ["gaussian_01.tiff", "gaussian_02.tiff", MANIFEST_NAME]
