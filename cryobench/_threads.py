"""A small shared thread pool for large numpy / pandas steps (scoring, reading CSVs).

numpy releases the GIL inside sorts, searches, gathers and arithmetic on large arrays, pyarrow
inside its compute kernels and pandas' C parser while it tokenises, so two independent steps
run truly in parallel on two threads. The pool is created on first use.
``CRYOBENCH_NUM_THREADS`` caps its size (default: the CPUs this process may use, at most 8);
``1`` runs everything in the calling thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["num_threads", "run_concurrently", "submit"]

_MAX = 8
_lock = threading.Lock()
_local = threading.local()  # ``in_pool`` is set in the pool's threads
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def num_threads() -> int:
    """Threads the metrics may use: ``CRYOBENCH_NUM_THREADS`` or the usable CPUs (≤ 8)."""
    env = os.environ.get("CRYOBENCH_NUM_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass  # an unusable value means the default, not an error in the middle of a score
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(_MAX, cpus))


def _forget_pool() -> None:
    """In a forked child: the pool's threads did not survive the fork, so start a new pool."""
    global _pool, _pool_size, _lock
    _pool, _pool_size, _lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _mark_pool_thread() -> None:
    _local.in_pool = True


def _executor() -> ThreadPoolExecutor:
    global _pool, _pool_size
    size = num_threads()
    with _lock:
        if _pool is None or _pool_size != size:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="cryobench",
                                       initializer=_mark_pool_thread)
            _pool_size = size
        return _pool


def submit(fn: Callable[..., Any], *args: Any) -> Future:
    """Start ``fn(*args)`` on the pool.

    It runs at once in the calling thread when only one thread is allowed, and when the caller
    is itself a pool thread (a nested submit could otherwise wait on a queue no one serves).
    """
    if num_threads() == 1 or getattr(_local, "in_pool", False):
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # re-raised by result(), as from a pool thread
            fut.set_exception(exc)
        return fut
    return _executor().submit(fn, *args)


def run_concurrently(*calls: tuple[Any, ...]) -> list[Any]:
    """Run ``(fn, *args)`` tuples concurrently; results in the order given.

    The last call runs in the calling thread while the others run on the pool.
    """
    if not calls:
        return []
    futures = [submit(fn, *args) for fn, *args in calls[:-1]]
    fn, *args = calls[-1]
    last = fn(*args)
    return [f.result() for f in futures] + [last]
