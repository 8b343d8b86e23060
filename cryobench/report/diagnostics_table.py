"""Metric-gaming diagnostics of an entry as a table: one row per class, mean over its seeds.

Each seed's diagnostics come from its record (``metrics.diagnostics``) or, when the record has
none and the ground truth is at hand, are computed from its predictions through the metric
registry. The table says over how many of the entry's seeds it is the mean ("mean over 2 of 3
seeds") and why a seed is left out: it never averages over a subset silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["COLUMNS", "DiagnosticsRow", "DiagnosticsTable", "diagnostics_table"]

COLUMNS: tuple[tuple[str, str], ...] = (
    ("n_candidates", "candidates"), ("n_matched", "matched"), ("n_duplicates", "duplicates"),
    ("n_unmatched", "unmatched"), ("duplicate_rate", "duplicate rate"),
    ("unmatched_rate", "unmatched rate"))
"""``(key in the diagnostics block, column heading)`` of each table column."""


@dataclass
class DiagnosticsRow:
    """One class (or all classes together): each column's mean over the seeds used."""

    name: str
    values: dict[str, float]


@dataclass
class DiagnosticsTable:
    """Per-class diagnostics of an entry, mean over the seeds that have them."""

    rows: list[DiagnosticsRow]
    total: DiagnosticsRow
    score: float
    score_deduplicated: float
    seeds_used: list[int]
    seeds_all: list[int]
    missing: dict[int, str] = field(default_factory=dict)
    """Seed -> why it has no diagnostics (left out of the mean)."""
    computed: list[int] = field(default_factory=list)
    """Seeds whose diagnostics were computed from their predictions (not from the record)."""

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def over(self) -> str:
        """``mean over 3 seeds`` / ``mean over 2 of 3 seeds`` / ``seed 0 only``."""
        n, total = len(self.seeds_used), len(self.seeds_all)
        if total == 1:
            return f"seed {self.seeds_used[0]} only"
        if n == total:
            return f"mean over {n} seeds"
        return f"mean over {n} of {total} seeds"

    @property
    def note(self) -> str:
        """Which seeds are left out and why, and which were computed (empty when neither)."""
        parts = [f"seed {s} left out: {why}" for s, why in sorted(self.missing.items())]
        if self.computed:
            parts.append("computed from the predictions of seed(s) "
                         + ", ".join(map(str, self.computed))
                         + " (their records carry no diagnostics)")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"over": self.over, "seeds_used": self.seeds_used, "seeds": self.seeds_all,
                "missing": {str(k): v for k, v in self.missing.items()},
                "computed": self.computed, "score": self.score,
                "score_deduplicated": self.score_deduplicated,
                "total": self.total.values,
                "per_class": {r.name: r.values for r in self.rows}}


def _mean(blocks: Sequence[Mapping[str, Any]], key: str) -> float:
    vals = [float(b.get(key) or 0.0) for b in blocks]
    return float(np.mean(vals)) if vals else float("nan")


def diagnostics_table(seeds: Sequence[int], blocks: Mapping[int, Mapping[str, Any]],
                      missing: Mapping[int, str], computed: Sequence[int] = ()
                      ) -> DiagnosticsTable | None:
    """The table from each seed's diagnostics block (``Diagnostics.to_dict()`` form).

    Args:
        seeds: all seeds of the entry, in order.
        blocks: seed -> its diagnostics block, for the seeds that have one.
        missing: seed -> why it has none (every seed of ``seeds`` not in ``blocks``).
        computed: the seeds of ``blocks`` computed from predictions rather than read.

    Returns None when no seed has diagnostics.
    """
    used = [s for s in seeds if s in blocks]
    if not used:
        return None
    bs = [blocks[s] for s in used]
    classes: dict[str, None] = {}
    for b in bs:
        for c in (b.get("per_class") or {}):
            classes.setdefault(str(c))
    rows = []
    for c in classes:
        per = [(b.get("per_class") or {}).get(c) or {} for b in bs]
        rows.append(DiagnosticsRow(c, {k: _mean(per, k) for k, _ in COLUMNS}))
    total = DiagnosticsRow("all classes", {k: _mean(bs, k) for k, _ in COLUMNS})
    left = {int(s): missing.get(s, "no diagnostics") for s in seeds if s not in blocks}
    return DiagnosticsTable(rows, total, _mean(bs, "score"), _mean(bs, "score_deduplicated"),
                            used, list(seeds), left, [s for s in computed if s in blocks])
