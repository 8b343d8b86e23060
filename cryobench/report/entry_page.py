"""The figures and tables of one entry's page (site method page, split report block).

:func:`entry_pages` builds them for many entries at once, one forked worker process per core
(:func:`cryobench.report.parallel.fork_map`): scoring predictions and drawing figures is where
a site's time goes.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryobench.report import figures as F
from cryobench.report.diagnostics_table import diagnostics_table
from cryobench.report.entry_analysis import EntryAnalysis, SeedAnalysis, analyse_entry
from cryobench.report.truth import GroundTruth, SplitData

__all__ = ["Figure", "EntryPage", "entry_page", "entry_pages", "seed_fbeta", "fbeta_spread"]


@dataclass
class Figure:
    """A PNG figure of a page: file name, bytes and caption."""

    name: str
    png: bytes
    caption: str
    kind: str = ""

    def uri(self) -> str:
        return F.data_uri(self.png)


@dataclass
class EntryPage:
    analysis: EntryAnalysis
    figures: list[Figure] = field(default_factory=list)
    fbeta_sd: dict[str, float | None] = field(default_factory=dict)
    """Each class's F-beta spread over the seeds (:func:`fbeta_spread`)."""

    def figure(self, kind: str) -> Figure | None:
        return next((f for f in self.figures if f.kind == kind), None)


def seed_fbeta(e: Any) -> dict[str, list[float]]:
    """Each class's F-beta per seed, from the entry's counts."""
    from cryobench.report.stats import class_metrics

    fb = class_metrics(e.cube.sums(), e.cube.beta, e.cube.rule)["fbeta"]
    return {c: [float(x) for x in fb[:, k]] for k, c in enumerate(e.cube.classes)}


def fbeta_spread(seed_values: Mapping[str, Sequence[float]]) -> dict[str, float | None]:
    """Each class's sample standard deviation (``ddof=1``) over the seeds of its per-seed
    F-beta (:func:`seed_fbeta`); None with fewer than two seeds or a non-finite value."""
    out: dict[str, float | None] = {}
    for c, vals in seed_values.items():
        v = [float(x) for x in vals]
        out[c] = (statistics.stdev(v) if len(v) > 1 and all(math.isfinite(x) for x in v)
                  else None)
    return out


def entry_page(e: Any, solutions: Mapping[str, GroundTruth], data: SplitData | None,
               data_why: str = "", title: str | None = None) -> EntryPage:
    """The analysis and figures of entry ``e``."""
    try:
        a = analyse_entry(e, solutions, data, data_why)
    except Exception as exc:  # noqa: BLE001 - one entry's odd predictions never stop a site
        why = f"analysing its predictions failed ({type(exc).__name__}: {exc})"
        blocks = {r.seed: r.diagnostics for r in e.records if r.diagnostics}
        diag = diagnostics_table(e.seeds, blocks, {s: "its record has no diagnostics"
                                                   for s in e.seeds if s not in blocks}) \
            if e.metric == "czii" else None
        a = EntryAnalysis([SeedAnalysis(r.seed, why=why) for r in e.records], diag, None, None,
                          [f"no curves or example slice: {why}"])
    beta = e.cube.beta
    per_seed = seed_fbeta(e)
    figs = [Figure(f"class-{e.id}.png",
                   F.class_bars(e.per_class, per_seed, beta,
                                title if title is not None else f"{e.method} on {e.split}"),
                   f"Precision, recall and F{beta:g} per class (mean over seeds); dots are "
                   "single seeds.", "class")]
    d = a.distance
    if d is not None:
        figs.append(Figure(
            f"distance-{e.id}.png",
            F.distance_curves(d.multipliers, d.fbeta, d.score, d.official, beta, d.unit,
                              seed_scores=d.seed_scores if len(d.seed_scores) > 1 else ()),
            f"F{beta:g} per class and the weighted score against the match distance "
            f"({d.over}; ground truth: {a.truth_source}). The dashed line is the distance the "
            "entry is scored at: a curve still rising beyond it means picks that are found but "
            "placed off-centre.", "distance"))
    if a.pr:
        figs.append(Figure(
            f"pr-{e.id}.png", F.pr_panels(a.pr),
            "Precision against recall per class when keeping only the picks scoring at least "
            "a level, over every level of the picks' scores; one line per seed, the dot keeps "
            f"every pick (the method's own operating point). Ground truth: {a.truth_source}.",
            "pr"))
    if a.slice is not None:
        figs.append(Figure(f"slice-{e.id}.png", a.slice.png, a.slice.caption, "slice"))
    return EntryPage(a, figs, fbeta_spread(per_seed))


def entry_pages(entries: Sequence[Any], solutions: Mapping[str, GroundTruth],
                data: Mapping[str, tuple[SplitData | None, str]],
                titles: Sequence[str | None] | None = None) -> list[EntryPage]:
    """:func:`entry_page` of every entry (``data``: split -> (its data or None, why not)),
    on worker processes."""
    from cryobench.report.parallel import fork_map

    titles = list(titles) if titles is not None else [None] * len(entries)
    jobs = [(e, data.get(e.split, (None, ""))) for e in entries]

    def one(i: int) -> EntryPage:
        e, (sd, why) = jobs[i]
        return entry_page(e, solutions, sd, why, titles[i])

    return fork_map(one, list(range(len(jobs))))
