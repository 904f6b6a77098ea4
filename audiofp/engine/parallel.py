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
_state: dict[str, object] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    """This process's threads (made again in a forked child, where the parent's threads are gone)."""
    with _lock:
        pool = _state.get("pool")
        if pool is None or _state.get("pid") != os.getpid() or threads > int(_state.get("threads", 0)):  # type: ignore[call-overload]
            if isinstance(pool, ThreadPoolExecutor) and _state.get("pid") == os.getpid():
                pool.shutdown(wait=False)
            pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="audiofp-match")
            _state.update(pool=pool, pid=os.getpid(), threads=threads)
        assert isinstance(pool, ThreadPoolExecutor)
        return pool


def run_shares(work: Callable[[T], R], shares: Sequence[T]) -> list[R]:
    """``[work(s) for s in shares]``, the shares run at once on this process's threads when there are several."""
    if len(shares) <= 1:
        return [work(s) for s in shares]
    return list(_pool(len(shares)).map(work, shares))
