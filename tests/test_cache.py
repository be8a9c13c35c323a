"""The byte-bounded LRU result cache."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pyramid_explorer.cache import ResultCache, nbytes_of


@dataclass(frozen=True)
class Result:
    a: np.ndarray
    b: tuple


def test_nbytes_counts_arrays_inside_dataclasses_and_tuples_once():
    base = np.zeros(100, np.uint8)
    r = Result(base, (base[10:], np.zeros(5, np.float32), "text"))
    assert nbytes_of(r) == 100 + 20


def test_least_recently_used_entries_go_first_when_over_budget():
    cache = ResultCache(250)
    for key in "abc":
        cache.put(key, np.zeros(100, np.uint8))
    assert "a" not in cache and "b" in cache and "c" in cache and cache.used == 200
    cache.get("b")
    cache.put("d", np.zeros(100, np.uint8))
    assert "c" not in cache and "b" in cache and "d" in cache


def test_an_entry_larger_than_the_budget_is_not_kept():
    cache = ResultCache(50)
    cache.put("small", np.zeros(10, np.uint8))
    cache.put("big", np.zeros(51, np.uint8))
    assert "big" not in cache and "small" in cache and cache.used == 10


def test_replacing_and_clearing_keep_the_count_right():
    cache = ResultCache(1000)
    cache.put("k", np.zeros(100, np.uint8))
    cache.put("k", np.zeros(300, np.uint8))
    assert cache.used == 300 and len(cache) == 1
    cache.clear()
    assert cache.used == 0 and cache.get("k") is None
