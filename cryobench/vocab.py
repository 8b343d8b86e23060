"""The project's vocabulary, in one place: tasks, budgets, metrics, roles, matchings, precisions.

Every layer imports these names from here (the bottom of the import graph), so a word means the
same thing to the data layer, the metrics, the methods, the runner and the CLI, and every error
that lists the choices lists the same ones.
"""

from __future__ import annotations

from cryobench.errors import ConfigError

__all__ = ["TASKS", "BUDGETS", "METRICS", "RECORD_METRICS", "TASK_METRIC", "ROLES",
           "MATCHINGS", "PRECISIONS", "check_choice"]

TASKS: tuple[str, ...] = ("particles", "motor")
"""``particles``: multi-class picking (CZII); ``motor``: zero or one motor per tomogram (BYU)."""

BUDGETS: tuple[str, ...] = ("smoke", "cpu", "full")
"""``smoke``: seconds, for tests; ``cpu``: minutes on 2 cores; ``full``: the published recipes
(GPU)."""

METRICS: tuple[str, ...] = ("czii", "byu", "map")
"""What ``cryobench score`` computes: the CZII weighted F-beta, the BYU motor F-beta, COCO mAP."""

RECORD_METRICS: tuple[str, ...] = ("czii", "byu")
"""The metrics a split (and so a run record) is scored with."""

TASK_METRIC: dict[str, str] = {"particles": "czii", "motor": "byu"}
"""The metric of each task."""

ROLES: tuple[str, ...] = ("train", "val", "test")
"""The parts of a split."""

MATCHINGS: tuple[str, ...] = ("kaggle", "one-to-one")
"""CZII true-positive rules: the official Kaggle rule, or a one-to-one (Hungarian) matching."""

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
"""Compute precisions of the built-in networks (``auto``: fp32 on CPU, fp16 AMP on CUDA)."""


def check_choice(kind: str, value: object, choices: tuple[str, ...],
                 source: str | None = None) -> str:
    """``value`` if it is one of ``choices``; otherwise a :class:`ConfigError` listing them,
    worded the same way everywhere (``unknown budget 'x'; choose one of smoke, cpu, full``)."""
    if value not in choices:
        raise ConfigError(f"unknown {kind} {value!r}; choose one of {', '.join(choices)}", source)
    return str(value)
