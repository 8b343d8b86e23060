"""Per-class localization and orientation columns of a leaderboard entry (mean over seeds).

The runner stores, per class, the centre distance of the matched picks and, when the ground truth
and the predictions carry orientations, their symmetry-aware angular error in each record's
``metrics.localization`` block (:attr:`cryobench.runner.record.RunRecord.localization`). An entry
shows the mean over its seeds of each figure, over the seeds that have it; records written before
the block existed (or classes without a matched pick) give None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from cryobench.runner.record import RunRecord

__all__ = ["LOCALIZATION_COLUMNS", "localization_columns"]

LOCALIZATION_COLUMNS: dict[str, tuple[str, str]] = {
    "distance_median": ("distance", "median"),
    "distance_p90": ("distance", "p90"),
    "angle_median": ("orientation", "median"),
    "angle_p90": ("orientation", "p90"),
    "angle_within_30": ("orientation", "within_30"),
}
"""Entry column -> (block, figure) of a record's per-class localization: distances in Å,
angles in degrees, ``angle_within_30`` the share of matched picks within 30 degrees."""


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None


def localization_columns(records: Sequence[RunRecord], particle_type: str) -> dict[str, Any]:
    """The :data:`LOCALIZATION_COLUMNS` of one class, each the mean over the records that have
    it (None when none has)."""
    out: dict[str, Any] = {}
    for column, (block, figure) in LOCALIZATION_COLUMNS.items():
        values = []
        for r in records:
            item = r.localization.get(particle_type)
            sub = item.get(block) if isinstance(item, dict) else None
            v = sub.get(figure) if isinstance(sub, dict) else None
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                values.append(float(v))
        out[column] = _mean(values)
    return out
