"""Ablation results: each cell's score with its interval and the paired difference to the base.

``cryobench ablate`` writes its runs into a results store and an ``ablation.json`` manifest that
lists the cells (overrides, split, config hash; the format is
:mod:`cryobench.runner.manifest`'s). This module pairs each cell
with its :class:`~cryobench.report.summary.Entry`; differences to the base cell are paired by
test experiment (and computed on seed means), so they are only given when the cell and the base
were scored on the same split.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryobench.errors import CryobenchError, ResultsError
from cryobench.report.stats import PairedComparison, paired_comparison
from cryobench.report.summary import Entry, entry_from_records
from cryobench.runner.manifest import read_manifest

__all__ = ["AblationCell", "Ablation", "analyse", "load_ablation", "ablation_text"]



@dataclass
class AblationCell:
    """One cell of an ablation grid and what is known of its runs."""

    label: str
    split: str
    overrides: dict[str, Any]
    config_hash: str
    is_base: bool
    entry: Entry | None = None
    diff: float | None = None
    diff_interval: tuple[float, float] | None = None
    seed_wins: tuple[int, int] | None = None  # (seeds scoring above the base, shared seeds)
    comparison: PairedComparison | None = None
    """The paired comparison with the base (p-value, its attainable minimum, standard error)."""
    note: str = ""

    @property
    def p_value(self) -> float | None:
        return None if self.comparison is None else self.comparison.p_value

    @property
    def seed_scores(self) -> dict[int, float]:
        """Score of each seed of this cell (empty when it has not run)."""
        if self.entry is None:
            return {}
        return dict(zip(self.entry.seeds, self.entry.seed_scores, strict=True))


@dataclass
class Ablation:
    """A whole ablation: its manifest fields and analysed cells."""

    name: str
    title: str
    description: str
    method: str
    budget: str
    seeds: list[int]
    vary: dict[str, list[Any]]
    cells: list[AblationCell] = field(default_factory=list)
    source: str = ""

    @property
    def page_name(self) -> str:
        """The file-name stem of its page and figures (unique whatever the name holds)."""
        from cryobench.report.summary import safe_name

        return safe_name(self.name)

    @property
    def base(self) -> AblationCell | None:
        return next((c for c in self.cells if c.is_base), None)

    @property
    def complete(self) -> int:
        return sum(1 for c in self.cells if c.entry is not None and not c.entry.flagged)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "description": self.description,
            "method": self.method, "budget": self.budget, "seeds": self.seeds,
            "vary": self.vary, "source": self.source,
            "cells": [{
                "label": c.label, "split": c.split, "overrides": c.overrides,
                "config_hash": c.config_hash, "base": c.is_base,
                "entry": None if c.entry is None else c.entry.id,
                "score": None if c.entry is None else c.entry.score,
                "interval": None if c.entry is None else c.entry.interval,
                "seeds": [] if c.entry is None else c.entry.seeds,
                "seed_scores": {str(k): v for k, v in c.seed_scores.items()},
                "diff": c.diff, "diff_interval": c.diff_interval,
                "p_value": c.p_value,
                "p_min": None if c.comparison is None else c.comparison.min_p,
                "interval_includes_seed_spread": None if c.comparison is None
                else c.comparison.includes_seed_spread,
                "seed_wins": None if c.seed_wins is None else list(c.seed_wins),
                "note": c.note,
            } for c in self.cells],
        }


def _own_seeds(entry: Entry | None, seeds: list[int], n_flips: int, test_seed: int
               ) -> Entry | None:
    """The entry restricted to (and judged against) the ablation's own seeds: the same config
    may have more seeds elsewhere in the results (e.g. the official runs)."""
    if entry is None or not seeds or sorted(entry.seeds) == sorted(seeds):
        if entry is not None and seeds and sorted(entry.expected_seeds) != sorted(seeds):
            return entry_from_records(entry.records, seeds, n_flips, test_seed)
        return entry
    mine = [r for r in entry.records if r.seed in set(seeds)]
    return entry_from_records(mine, seeds, n_flips, test_seed) if mine else None


def analyse(manifest: Mapping[str, Any], entries: Mapping[tuple[str, str, str], Entry],
            n_flips: int = 9999, test_seed: int = 0, source: str = "") -> Ablation:
    """Pair each manifest cell with its entry and compute paired differences to the base."""
    method = str(manifest["method"])
    abl = Ablation(name=str(manifest["name"]), title=str(manifest.get("title") or
                                                          manifest["name"]),
                   description=str(manifest.get("description", "")), method=method,
                   budget=str(manifest.get("budget", "")),
                   seeds=[int(s) for s in manifest.get("seeds", [])],
                   vary={k: list(v) for k, v in dict(manifest.get("vary", {})).items()},
                   source=source)
    for c in manifest["cells"]:
        key = (str(c["split"]), method, str(c["config_hash"]))
        abl.cells.append(AblationCell(label=str(c.get("label", "")), split=str(c["split"]),
                                      overrides=dict(c.get("overrides", {})),
                                      config_hash=str(c["config_hash"]),
                                      is_base=bool(c.get("base", False)),
                                      entry=_own_seeds(entries.get(key), abl.seeds, n_flips,
                                                       test_seed)))
    base = abl.base
    for c in abl.cells:
        if c.entry is None:
            c.note = "not run yet"
            continue
        if c.is_base:
            c.note = "base"
            continue
        if base is None or base.entry is None:
            c.note = "base not run"
            continue
        shared = set(c.entry.cube.experiments) & set(base.entry.cube.experiments)
        if not shared:
            c.note = "no test experiments shared with the base: not paired"
            continue
        notes = []
        if c.split != base.split:
            notes.append("paired with the base by experiment name across splits")
        if not n_flips:
            c.note = "; ".join(notes)
            continue
        try:
            cmp = paired_comparison(c.entry.cube, base.entry.cube, n_flips=n_flips,
                                    seed=test_seed)
        except CryobenchError as exc:
            c.note = "; ".join([*notes, f"not paired: {exc.message}"])
            continue
        c.diff, c.diff_interval, c.comparison = cmp.difference, cmp.bounds, cmp
        # the seed-to-seed spread the interval does not contain: seed by seed against the base
        mine, theirs = c.seed_scores, base.seed_scores
        common = sorted(set(mine) & set(theirs))
        if common:
            c.seed_wins = (sum(mine[k] > theirs[k] for k in common), len(common))
        if c.entry.flagged:
            notes.append("flagged: " + "; ".join(c.entry.flags))
        c.note = "; ".join(notes)
    return abl


def load_ablation(results_dir: str | os.PathLike[str], manifest: str | os.PathLike[str],
                  n_flips: int = 9999, test_seed: int = 0) -> Ablation:
    """Analyse one manifest against the records of ``results_dir`` (cells may be missing)."""
    from cryobench.report.loading import load_records
    from cryobench.report.summary import summarise

    data = read_manifest(manifest)
    try:
        records, _ = load_records([results_dir])
    except ResultsError:
        records = []
    mine = [r for r in records if r.method == data["method"]]
    entries = summarise(mine, data.get("seeds") or None, n_flips, test_seed)
    by_key = {(e.split, e.method, e.config_hash): e for e in entries}
    return analyse(data, by_key, n_flips, test_seed, str(manifest))


def _p(cmp: PairedComparison) -> str:
    """A p-value with its attainable minimum when that is what limits it."""
    p = f"{cmp.p_value:.3g}"
    return f"{p} (min {cmp.min_p:.3g})" if cmp.min_p >= 0.01 else p


def ablation_text(abl: Ablation) -> str:
    """A plain-text table of an ablation (for the terminal)."""
    header = ["cell", "split", "score", "95% CI", "per seed", "diff", "95% CI diff", "p",
              "seeds above base", "note"]
    rows = []
    for c in abl.cells:
        e = c.entry
        per_seed = c.seed_scores
        rows.append([
            c.label + (" *" if c.is_base else ""), c.split,
            "-" if e is None else f"{e.score:.4f}",
            "-" if e is None or e.interval is None else
            f"[{e.interval[0]:.3f}, {e.interval[1]:.3f}]",
            " ".join(f"{k}:{per_seed[k]:.3f}" for k in sorted(per_seed)) or "-",
            "-" if c.diff is None else f"{c.diff:+.4f}",
            "-" if c.diff_interval is None else
            f"[{c.diff_interval[0]:+.3f}, {c.diff_interval[1]:+.3f}]",
            "-" if c.comparison is None else _p(c.comparison),
            "-" if c.seed_wins is None else f"{c.seed_wins[0]} of {c.seed_wins[1]}",
            c.note if not c.is_base else "",
        ])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"{abl.title} ({abl.method}, budget {abl.budget}, seeds "
             f"{','.join(map(str, abl.seeds))}); * = base"]
    for r in [header, *rows]:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)
