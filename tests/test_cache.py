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


def test_the_size_function_is_the_callers():
    cache = ResultCache(100, size_of=lambda value: len(value))
    cache.put("a", "x" * 60)
    cache.put("b", "y" * 30)
    assert cache.used == 90
    cache.put("c", "z" * 20)  # 110 > 100: the oldest goes
    assert "a" not in cache and cache.used == 50


def test_keep_newest_keeps_the_last_entry_whatever_its_size():
    cache = ResultCache(50, keep_newest=True)
    cache.put("small", np.zeros(10, np.uint8))
    cache.put("other", np.zeros(20, np.uint8))
    cache.get("small")  # now the newest
    cache.put("big", np.zeros(80, np.uint8))  # over the budget alone: kept, everything else goes
    assert "big" in cache and len(cache) == 1 and cache.used == 80
    assert cache.get("small") is None
    cache.put("next", np.zeros(30, np.uint8))  # fits: the big one, now oldest, goes
    assert "next" in cache and "big" not in cache and cache.used == 30
