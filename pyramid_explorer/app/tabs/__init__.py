"""One widget per tool (`tools.registry.TOOLS`): each renders its tool's results and emits its settings."""

from __future__ import annotations

import importlib

from pyramid_explorer.app.render_queue import RenderQueue
from pyramid_explorer.app.tabs.base import ToolTab
from pyramid_explorer.tools.base import Tool


def make_tab(tool: Tool, queue: RenderQueue) -> ToolTab:
    """The tab of `tool`, built from its `widget` ("module:Class") with the window's render queue."""
    module, _, name = tool.widget.partition(":")
    tab = getattr(importlib.import_module(module), name)(queue)
    if not isinstance(tab, ToolTab):
        raise TypeError(f"{tool.widget} is not a ToolTab")
    return tab
