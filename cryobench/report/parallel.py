"""Run independent report tasks (one per entry) on several processes.

The site and the split report spend their time scoring predictions and drawing figures, one
entry at a time and each independent of the others, in numpy/pandas/matplotlib code that holds
the GIL. :func:`fork_map` runs such tasks in forked worker processes, which inherit the inputs
(nothing is pickled on the way in; only the results come back), on as many processes as
:func:`cryobench._threads.num_threads` allows (``CRYOBENCH_NUM_THREADS=1``: in this process).
Results come back in the order of the inputs; a task's exception is raised here.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

__all__ = ["fork_map", "MIN_TASKS"]

T = TypeVar("T")
R = TypeVar("R")

MIN_TASKS = 4
"""Fewer tasks than this run in this process (a worker's start costs more than they take)."""

_JOB: tuple[Callable[[Any], Any], Sequence[Any]] | None = None


def _run(i: int) -> Any:
    assert _JOB is not None
    fn, items = _JOB
    return fn(items[i])


def fork_map(fn: Callable[[T], R], items: Sequence[T], workers: int | None = None) -> list[R]:
    """``[fn(x) for x in items]``, on forked worker processes where that is possible."""
    global _JOB
    from cryobench._threads import num_threads

    n = min(num_threads() if workers is None else max(1, workers), len(items))
    if n < 2 or len(items) < MIN_TASKS or "fork" not in mp.get_all_start_methods():
        return [fn(x) for x in items]
    _JOB = (fn, items)
    try:
        with ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("fork")) as pool:
            return list(pool.map(_run, range(len(items))))
    finally:
        _JOB = None
