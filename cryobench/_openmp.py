"""How OpenMP threads (torch's CPU kernels) wait: passively, unless the user says otherwise.

By default GNU OpenMP (the runtime of torch's Linux CPU wheels) lets an idle thread spin for a
while before it sleeps. When other processes hold the cores, a spinning thread takes the time
slice its partner needs to finish, and every parallel region waits a scheduler tick: a 2-thread
``unet3d`` training step measured 12x slower than with passive waiting on a 2-core machine
with a few other jobs running (``benchmarks/bench_openmp_wait.py``). The runtime reads
``OMP_WAIT_POLICY`` once, when torch is first imported, so this must run before that.
"""

from __future__ import annotations

import os

__all__ = ["prefer_passive_waiting"]


def prefer_passive_waiting() -> None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless it is already set (a user's choice wins).

    Without effect once torch (or any OpenMP program part) has started its thread pool.
    Waiting policy changes scheduling only, never results.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
