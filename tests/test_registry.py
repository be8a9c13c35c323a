"""Every registered tool is whole: its plan asks for results, its job makes exactly those, each one is
complete in the end, and what it exports goes through the core's writer. A tool cannot be half-registered."""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import pyramid_explorer
from pyramid_explorer.core.export import MANIFEST_NAME
from pyramid_explorer.jobs import (
    LoadedImage,
    OpenRequest,
    Progress,
    Pyramid,
    ToolExportRequest,
    export_tool,
    open_image,
)
from pyramid_explorer.samples import PROBES
from pyramid_explorer.tools.base import State
from pyramid_explorer.tools.registry import NAMES, TOOLS, default_settings, tool_arrays, tool_named

BUDGET = 1 << 30


@pytest.fixture(scope="module")
def opened() -> tuple[LoadedImage, Pyramid]:
    items = list(open_image(OpenRequest(1, probe=next(iter(PROBES)), size=(37, 29))))
    loaded = next(i for i in items if isinstance(i, LoadedImage))
    return loaded, next(i for i in items if isinstance(i, Pyramid))


def state_of(opened: tuple[LoadedImage, Pyramid], level: int = 1) -> State:
    loaded, pyramid = opened
    return State(loaded, pyramid, level, default_settings(), BUDGET)


KNOWN_ORDER = ("pyramid", "compare", "integrity", "equalizer", "kernels", "unpool",
               "learnable", "blend", "coding", "shift", "convmatrix")
"""The tools there were when this was written, in tab order: a new tool may go anywhere among them."""
PACKAGE = Path(pyramid_explorer.__file__).parent
NOT_TABS = {"__init__", "base", "shared", "stored"}  # app/tabs/ modules that are no tool's tab


def test_the_registry_names_each_tool_once_in_tab_order():
    assert [name for name in NAMES if name in KNOWN_ORDER] == list(KNOWN_ORDER)
    assert len(set(NAMES)) == len(NAMES)
    assert len({tool.title for tool in TOOLS}) == len(TOOLS)  # Ctrl+1..9 select the first nine tabs
    assert all(tool_named(name).name == name for name in NAMES)
    with pytest.raises(ValueError, match="views: pyramid, compare"):
        tool_named("nonsense")
    widgets = [tool.widget for tool in TOOLS]
    assert len(set(widgets)) == len(widgets)
    assert all(w.startswith("pyramid_explorer.app.tabs.") and ":" in w for w in widgets)


def test_every_tool_module_and_every_tab_module_is_registered():
    """A tool module with a `TOOL` is in `TOOLS`, and every module of app/tabs/ is a tool's widget (the
    files are listed, not imported: this test runs without Qt)."""
    for info in pkgutil.iter_modules([str(PACKAGE / "tools")]):
        module = importlib.import_module(f"pyramid_explorer.tools.{info.name}")
        if hasattr(module, "TOOL"):
            assert module.TOOL in TOOLS, f"tools/{info.name}.py has a TOOL that the registry does not list"
    tabs = {info.name for info in pkgutil.iter_modules([str(PACKAGE / "app" / "tabs")])} - NOT_TABS
    widgets = {tool.widget.partition(":")[0].rpartition(".")[2] for tool in TOOLS}
    assert tabs == widgets


@pytest.mark.parametrize("tool", TOOLS, ids=NAMES)
def test_every_tool_makes_what_its_plan_wants(tool, opened):
    plan = tool.plan(state_of(opened))
    assert plan.message is None and plan.wanted and plan.job is not None
    assert set(tool.settings) <= set(default_settings())
    results = [item for item in plan.job(plan.request(plan.wanted)) if not isinstance(item, Progress)]
    latest = {tool.key(result): result for result in results}
    assert set(latest) == set(plan.wanted)  # every key wanted is made, under the key it was asked by
    assert all(tool.complete(result) for result in latest.values())
    assert all(result.image_id == opened[1].image_id for result in results)


@pytest.mark.parametrize("tool", [tool for tool in TOOLS if tool.export is not None],
                         ids=[tool.name for tool in TOOLS if tool.export is not None])
def test_every_tool_export_writes_its_arrays(tool, opened, tmp_path):
    plan = tool.plan(state_of(opened))
    result = [item for item in plan.job(plan.request(plan.wanted)) if not isinstance(item, Progress)][-1]
    arrays, parameters = tool_arrays(tool.name, result, "npy")
    assert arrays and parameters["tool"] == tool.name
    image = opened[0].image
    items = list(export_tool(ToolExportRequest(image, str(tmp_path), arrays, "npy", parameters)))
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert items[-1].result.files and manifest["parameters"]["tool"] == tool.name
    for array in arrays:
        np.testing.assert_array_equal(np.load(tmp_path / f"{array.name}.npy"), array.array)


def test_tools_without_an_export_of_their_own_say_so(opened):
    for tool in TOOLS:
        if tool.export is None:
            with pytest.raises(TypeError, match="File > Export"):
                tool_arrays(tool.name, None, "npy")
