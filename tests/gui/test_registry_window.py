"""Every registered tool is whole in the window: a tab in registry order with its View-menu entry, its
results drawn once shown, and a screenshot by name (`--view NAME`)."""

from __future__ import annotations

import cv2
import pytest
from guitools import make_image, wait_idle, write_png
from test_launch import explorer

from pyramid_explorer.app.main_window import DEFAULT_SIZE
from pyramid_explorer.app.tabs.base import ToolTab
from pyramid_explorer.tools.registry import NAMES, TOOLS


@pytest.mark.parametrize("tool", TOOLS, ids=NAMES)
def test_every_tool_has_a_tab_a_menu_entry_and_draws_its_results(qtbot, opened, tool):
    index = NAMES.index(tool.name)
    tab = opened.tab(tool.name)
    assert isinstance(tab, ToolTab) and opened.tabs.widget(index) is tab
    assert opened.tabs.tabText(index) == tool.title.replace("&", "")
    opened.actions[f"view_{tool.name}"].trigger()
    assert opened.tabs.currentWidget() is tab and opened.controller.view == tool.name
    opened.controller.set_level(1)
    wait_idle(qtbot, opened)
    assert tab.panels and any(panel.layer is not None for panel in tab.panels)
    if tool.export is not None:
        assert tab.result is not None  # what its export writes


@pytest.mark.parametrize("name", NAMES)
def test_every_tool_can_be_screenshotted_by_name(tmp_path, name):
    image = write_png(tmp_path / "in.png", make_image(33, 47))
    out = tmp_path / f"{name}.png"
    run = explorer(image, "--screenshot", str(out), "--view", name, "--level", "1", home=tmp_path)
    assert run.returncode == 0, run.stderr
    shot = cv2.imread(str(out))
    assert shot is not None and (shot.shape[1], shot.shape[0]) == DEFAULT_SIZE and shot.std() > 10
