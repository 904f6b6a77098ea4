"""Threads that split one query's compiled passes (the kernels release the GIL).

A query at a large index spends nearly all its time in a few compiled loops
over millions of postings and hits. Each of them splits into contiguous
shares whose results, put back in order, are exactly the one-thread result;
this module holds the process's threads and runs the shares on them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_lock = threading.Lock()
_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    """This process's pool of exactly ``threads`` threads (made again in a forked
    child, where the parent's threads are gone)."""
    key = (os.getpid(), threads)
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="audiofp-match")
        return pool


def run_shares(work: Callable[[T], R], shares: Sequence[T], threads: int) -> list[R]:
    """``[work(s) for s in shares]``, in order, run on up to ``threads`` of this process's threads at once."""
    threads = min(threads, len(shares))
    if threads <= 1:
        return [work(s) for s in shares]
    return list(_pool(threads).map(work, shares))
