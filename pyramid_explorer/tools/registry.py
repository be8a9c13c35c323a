"""Every tool of the window, in tab order: the controller, the tabs and View menu, `--view`, the
screenshot mode and tool export all iterate over `TOOLS`. A new tool is one module here, one tab in
`app/tabs/`, and one entry below."""

from __future__ import annotations

from pyramid_explorer.tools import (
    coding,
    compare,
    convmatrix,
    equalizer,
    integrity,
    kernels,
    pyramid,
    shift,
    unpool,
)
from pyramid_explorer.tools.base import Arrays, Tool

TOOLS: tuple[Tool, ...] = (pyramid.TOOL, compare.TOOL, integrity.TOOL, equalizer.TOOL, kernels.TOOL,
                           unpool.TOOL,
                           coding.TOOL, shift.TOOL, convmatrix.TOOL)
NAMES: tuple[str, ...] = tuple(tool.name for tool in TOOLS)
"""The tools' names (`--view` choices), in tab order."""


def tool_named(name: str) -> Tool:
    """The tool called `name`; ValueError naming the choices otherwise."""
    for tool in TOOLS:
        if tool.name == name:
            return tool
    raise ValueError(f"unknown view {name!r}; views: {', '.join(NAMES)}")


def default_settings() -> dict[str, object]:
    """Every tool's settings at their defaults (a setting shared by two tools has one default)."""
    settings: dict[str, object] = {}
    for tool in TOOLS:
        settings.update(tool.settings)
    return settings


def tool_arrays(name: str, result: object, fmt: str) -> Arrays:
    """What tool `name` exports of `result` in `fmt` (`Tool.export`); TypeError for a tool exported with
    the whole pyramid instead."""
    tool = tool_named(name)
    if tool.export is None:
        raise TypeError(f"the {name} tool has no export of its own; File > Export writes the pyramid")
    return tool.export(result, fmt)
