"""What a tool (one tab of the window) is to the controller: a Qt-free description it can serve.

A tool module defines its frozen request, its `*Result` classes, its generator job and what it exports,
and ends with one `TOOL = Tool(...)`; `tools.registry.TOOLS` lists them in tab order. The controller
keeps no per-tool code: for the visible tool it asks `plan(state)` for the cache keys of the results
the tab shows (one per panel group), emits the cached ones, and runs `plan.job(plan.request(missing))`
for the others; each result the job yields is cached under `key(result)` and shown when that key is still
wanted. So a cache key is spelled once, in the tool's `key`, used both ways.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyramid_explorer.core.export import NamedArray
from pyramid_explorer.jobs import LoadedImage, Progress, Pyramid

Key = tuple[Hashable, ...]
Arrays = tuple[tuple[NamedArray, ...], dict[str, Any]]
"""What a tool exports: the named arrays for the core's `export_arrays`, and the manifest's parameters."""


@dataclass(frozen=True, eq=False)
class State:
    """What the window has open and chosen, as every tool's `plan` reads it.

    `settings` holds every tool's settings by name (the defaults are the tools' `settings`), so a new
    tool's setting needs no new field here.
    """

    loaded: LoadedImage
    pyramid: Pyramid
    level: int
    settings: Mapping[str, Any]
    memory_budget: int


@dataclass(frozen=True)
class Plan:
    """What the tab needs now.

    `wanted` are the cache keys of the results it shows; `request(missing)` makes the job's request for
    the keys not cached (or not complete), run as `job`. `message` instead says the whole tab has nothing
    to show (why), and `unavailable` names (panel, why) for panels that cannot be computed at this level.
    """

    wanted: tuple[Key, ...] = ()
    job: Callable[[Any], Iterator[Progress | object]] | None = None
    request: Callable[[tuple[Key, ...]], object] | None = None
    message: str | None = None
    unavailable: tuple[tuple[str, str], ...] = ()
    corrected: Mapping[str, Any] = field(default_factory=dict)
    """Settings the plan could not honour for this image, and what it used instead (the controller keeps
    them)."""


def _always_complete(_result: object) -> bool:
    return True


@dataclass(frozen=True)
class Tool:
    """One tab: its name (`--view`, settings, cache keys), title, how it is served and exported.

    `widget` is "module:Class" of its tab in the Qt layer, imported by the window only (this package
    never imports Qt). `complete(result)` is False for a result delivered early (images before their
    numbers) that the job must still finish. `export(result, fmt)` gives the arrays the tool exports,
    None when the tool is exported with the whole pyramid (File > Export).
    """

    name: str
    title: str
    widget: str
    plan: Callable[[State], Plan]
    key: Callable[[Any], Key]
    settings: Mapping[str, Any] = field(default_factory=dict)
    per_pyramid: tuple[str, ...] = ()
    """Settings back at their defaults on every new pyramid."""
    complete: Callable[[Any], bool] = _always_complete
    export: Callable[[Any, str], Arrays] | None = None
