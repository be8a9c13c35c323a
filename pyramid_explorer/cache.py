"""A least-recently-used result cache bounded by memory, not by count (Qt-free).

Results differ in size by orders of magnitude (a 4K level against a 4x2 one), so a count limit
would either waste memory or thrash; the budget is in bytes of the numpy arrays a result holds.
"""

from __future__ import annotations

import dataclasses
import os
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np


def nbytes_of(value: object) -> int:
    """Bytes held by the numpy arrays inside `value` (arrays, dataclasses, tuples/lists, dicts)."""
    seen: set[int] = set()

    def walk(v: object) -> int:
        if isinstance(v, np.ndarray):
            base = v.base if isinstance(v.base, np.ndarray) else v
            if id(base) in seen:
                return 0
            seen.add(id(base))
            return int(base.nbytes)
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return sum(walk(getattr(v, f.name)) for f in dataclasses.fields(v))
        if isinstance(v, tuple | list):
            return sum(walk(x) for x in v)
        if isinstance(v, dict):
            return sum(walk(x) for x in v.values())
        return 0

    return walk(value)


def default_memory_budget() -> int:
    """A quarter of physical memory, at most 2 GiB (1 GiB when the size cannot be read).

    The window uses it as the most one view may hold; its result cache keeps half of it.
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 1 << 30
    return int(min(total // 4, 2 << 30))


class ResultCache:
    """Maps keys to results; evicts the least recently used entries once the budget is exceeded.

    `size_of(value)` is what an entry counts against the budget (by default the bytes of its numpy
    arrays). An entry larger than the whole budget is not kept at all (it would evict everything else),
    unless `keep_newest`: then the entry put or read last stays whatever its size and only the others
    are evicted, so a view that shows one large result at a time (the stored view's region on screen)
    never reads it again because it did not fit.
    """

    def __init__(self, budget_bytes: int, size_of: Callable[[Any], int] = nbytes_of,
                 keep_newest: bool = False) -> None:
        self.budget = int(budget_bytes)
        self.size_of = size_of
        self.keep_newest = keep_newest
        self._entries: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._used = 0

    @property
    def used(self) -> int:
        return self._used

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def get(self, key: Hashable) -> object | None:
        """The cached value (now most recently used), or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: Hashable, value: object) -> None:
        size = self.size_of(value)
        self.discard(key)
        if size > self.budget and not self.keep_newest:
            return
        self._entries[key] = (value, size)
        self._used += size
        kept = 1 if self.keep_newest else 0
        while self._used > self.budget and len(self._entries) > kept:
            _, (_, old_size) = self._entries.popitem(last=False)
            self._used -= old_size

    def discard(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._used -= entry[1]

    def clear(self) -> None:
        self._entries.clear()
        self._used = 0
