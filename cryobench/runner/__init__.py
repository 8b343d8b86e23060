"""Runs and their records: :func:`cryobench.runner.run.run` executes one
(method, split, seed, config) cell.

Submodules: :mod:`~cryobench.runner.record` (schema, validation, upgrades, atomic I/O),
:mod:`~cryobench.runner.store` (results directory layout), :mod:`~cryobench.runner.run`
(the execution, step by step), :mod:`~cryobench.runner.env` (environment capture),
:mod:`~cryobench.runner.ablate` and :mod:`~cryobench.runner.executors` (sweeps) and
:mod:`~cryobench.runner.manifest` (the ablation manifest format). Attributes load lazily so
that reading records does not import the run machinery.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["RunResult", "RunRecord", "load_records", "iter_records"]

_LAZY = {
    "RunResult": "cryobench.runner.run",
    "load_records": "cryobench.runner.store",
    "iter_records": "cryobench.runner.store",
    "RunRecord": "cryobench.runner.record",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cryobench.runner' has no attribute {name!r}")
