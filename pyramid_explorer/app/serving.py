"""The one serve loop of the controllers: what a plan wants comes from the cache, the rest from one job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyramid_explorer.app.worker import JobRunner
from pyramid_explorer.cache import ResultCache
from pyramid_explorer.tools.base import Key, Plan


def serve_plan(plan: Plan, cache: ResultCache, runner: JobRunner, channel: str, show: Callable[[Any], None],
               on_item: Callable[[object], None], on_error: Callable[[str], None],
               complete: Callable[[Any], bool] | None = None) -> bool:
    """Show the results `plan` wants that `cache` holds; submit one job on `channel` for those it lacks
    or holds incomplete (`complete(result)` False; None: all are complete), its items to `on_item`.

    Return whether a job was submitted; when none is, the channel's job is cancelled (nothing it
    makes is wanted)."""
    missing: list[Key] = []
    for key in plan.wanted:
        cached = cache.get(key)
        if cached is not None:
            show(cached)
        if cached is None or (complete is not None and not complete(cached)):
            missing.append(key)
    if not missing:
        runner.cancel(channel)
        return False
    assert plan.job is not None and plan.request is not None  # a plan that wants results makes them
    runner.submit(channel, plan.job, plan.request(tuple(missing)), on_item, on_error)
    return True
