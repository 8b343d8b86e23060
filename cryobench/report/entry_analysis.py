"""What an entry's predictions show against the ground truth: the parts of a method's page that
need more than the records' counts.

For each seed with ``predictions.csv`` beside its record and ground truth of the same data at
hand (:mod:`cryobench.report.truth`): the F-beta-against-distance curve, the precision-recall
curves over pick scores and, when the record lacks them, the metric-gaming diagnostics. For the
entry: the diagnostics table over its seeds, the mean distance curve, and an example slice of
one test tomogram with the ground truth and the picks of its first seed marked TP / FP / FN
(only when the split's tomograms are at hand). Every part that cannot be made says why in
:attr:`EntryAnalysis.notes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cryobench.errors import CryobenchError
from cryobench.report.curves import DistanceCurve, PRCurve, distance_curve, pr_curves
from cryobench.report.diagnostics_table import DiagnosticsTable, diagnostics_table
from cryobench.report.truth import GroundTruth, SplitData, pick_truth
from cryobench.runner.record import RunRecord

__all__ = ["SeedAnalysis", "EntryAnalysis", "MeanDistanceCurve", "SliceImage",
           "analyse_entry", "read_predictions"]


@dataclass
class SeedAnalysis:
    """What one record's predictions give (None / empty where they give nothing)."""

    seed: int
    distance: DistanceCurve | None = None
    pr: dict[str, PRCurve] = field(default_factory=dict)
    diagnostics: dict[str, Any] | None = None
    computed_diagnostics: bool = False
    why: str = ""
    """Why there are no curves (no predictions, no ground truth...)."""
    truth_source: str = ""


@dataclass
class MeanDistanceCurve:
    """The distance curve, mean over the seeds that have one."""

    multipliers: np.ndarray
    fbeta: dict[str, np.ndarray]
    score: np.ndarray
    seed_scores: list[np.ndarray]
    official: float
    unit: str
    seeds_used: list[int]
    seeds_all: list[int]

    @property
    def over(self) -> str:
        n, total = len(self.seeds_used), len(self.seeds_all)
        if total == 1:
            return f"seed {self.seeds_used[0]} only"
        return f"mean over {n} seeds" if n == total else f"mean over {n} of {total} seeds"

    def to_dict(self) -> dict[str, Any]:
        return {"multipliers": self.multipliers.tolist(), "unit": self.unit,
                "official": self.official, "over": self.over, "seeds_used": self.seeds_used,
                "score": self.score.tolist(),
                "fbeta": {c: v.tolist() for c, v in self.fbeta.items()}}


@dataclass
class SliceImage:
    png: bytes
    caption: str


@dataclass
class EntryAnalysis:
    seeds: list[SeedAnalysis]
    diagnostics: DiagnosticsTable | None
    distance: MeanDistanceCurve | None
    slice: SliceImage | None
    notes: list[str] = field(default_factory=list)

    @property
    def pr(self) -> dict[str, dict[int, PRCurve]]:
        """``{class: {seed: curve}}`` over the seeds that have curves."""
        out: dict[str, dict[int, PRCurve]] = {}
        for sa in self.seeds:
            for c, cv in sa.pr.items():
                out.setdefault(c, {})[sa.seed] = cv
        return out

    @property
    def pr_seeds(self) -> list[int]:
        return [sa.seed for sa in self.seeds if sa.pr]

    @property
    def truth_source(self) -> str:
        return next((sa.truth_source for sa in self.seeds if sa.truth_source), "")


def read_predictions(rec: RunRecord) -> tuple[pd.DataFrame | None, str]:
    """The record's ``predictions.csv``, or ``(None, why not)``."""
    from cryobench.io.picks import read_picks_csv

    path = rec.predictions_path
    if path is None or not path.is_file():
        return None, "predictions.csv not found beside its record"
    try:
        return read_picks_csv(path), ""
    except CryobenchError as exc:
        return None, f"predictions.csv unreadable ({exc.message})"


def _analyse_seed(rec: RunRecord, picks: pd.DataFrame | None, why: str,
                  truth: GroundTruth | None, why_truth: str) -> SeedAnalysis:
    out = SeedAnalysis(rec.seed)
    if picks is None:
        out.why = why
        return out
    if truth is None:
        out.why = why_truth
        return out
    out.truth_source = truth.source
    try:
        out.distance = distance_curve(rec, picks, truth)
        out.pr = pr_curves(rec, picks, truth)
        if rec.metric == "czii" and not rec.diagnostics:
            from cryobench.metrics.params import MetricParams
            from cryobench.metrics.registry import get_metric

            ev = get_metric("czii").evaluate(picks, truth.table,
                                             MetricParams.from_record(rec.params),
                                             per_experiment=False)
            out.diagnostics = ev.diagnostics.to_dict()
            out.computed_diagnostics = True
    except CryobenchError as exc:
        out.why = f"its predictions cannot be scored against the ground truth ({exc.message})"
        out.distance, out.pr = None, {}
    return out


def _mean_distance(seeds: list[SeedAnalysis], all_seeds: list[int]) -> MeanDistanceCurve | None:
    curves = [(sa.seed, sa.distance) for sa in seeds if sa.distance is not None]
    if not curves:
        return None
    first = curves[0][1]
    classes = list(dict.fromkeys(c for _, cv in curves for c in cv.fbeta))
    zeros = np.zeros_like(first.multipliers)
    fbeta = {c: np.mean([cv.fbeta.get(c, zeros) for _, cv in curves], axis=0) for c in classes}
    return MeanDistanceCurve(first.multipliers, fbeta,
                             np.mean([cv.score for _, cv in curves], axis=0),
                             [cv.score for _, cv in curves], first.official, first.unit,
                             [s for s, _ in curves], all_seeds)


BYU_LABELS = {("truth", "tp"): "motor found (TP)", ("truth", "fn"): "motor missed (FN)",
              ("pred", "tp"): "pick within the distance (TP)",
              ("pred", "fp"): "pick too far, or no motor (FP)"}
"""The legend of a BYU slice (the motor pick is marked wherever it lies in z)."""


def _outcome_frames(rec: RunRecord, run: Any, picks: pd.DataFrame, truth: GroundTruth
                    ) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The run's ground truth (Å) and picks with an ``outcome`` column (and a caption note)."""
    from cryobench.metrics.params import MetricParams

    params = MetricParams.from_record(rec.params)
    mine = picks[picks["experiment"].astype(str) == run.name].reset_index(drop=True)
    if rec.metric == "czii":
        from cryobench.report.curves import pick_outcomes

        sol = truth.table[truth.table["experiment"].astype(str) == run.name]
        sol = sol.reset_index(drop=True)
        pk, rk = pick_outcomes(mine, sol, params)
        return sol.assign(outcome=rk), mine.assign(outcome=pk), "Kaggle rule"
    refs = run.picks().iloc[:1].reset_index(drop=True)  # the motor the BYU solution holds
    from cryobench.metrics.registry import get_metric
    from cryobench.report.curves import submission_of

    metric = get_metric("byu")
    one = truth.table[truth.table["tomo_id"].astype(str) == run.name]
    stub = GroundTruth(truth.split, "byu", one, truth.fingerprint, truth.source,
                       [r for r in truth.runs if r.name == run.name])
    ev = metric.evaluate(submission_of(metric, mine, stub), one, params, diagnostics=False)
    outcome = str(ev.result.per_tomo["outcome"].iloc[0])
    if len(mine):
        best = (mine.sort_values("score", ascending=False, kind="stable")
                if "score" in mine.columns else mine).iloc[:1]
        mine = best.assign(outcome="tp" if outcome == "tp" else "fp")
    else:
        mine = mine.assign(outcome=pd.Series(dtype=object))
    return (refs.assign(outcome="tp" if outcome == "tp" else "fn"), mine,
            "BYU rule; the submitted (best-scoring) pick is marked at its x, y whatever its z")


def _slice(entry: Any, data: SplitData, first: tuple[RunRecord, pd.DataFrame] | None
           ) -> tuple[SliceImage | None, str]:
    from cryobench.data.show import slice_png

    if first is None:
        return None, "no seed has predictions to draw"
    rec, picks = first
    why = data.truth.why_not(rec)
    if why is not None:
        return None, why
    runs = data.split.runs("test")
    if not runs:
        return None, "the split has no test runs"
    run = runs[0]
    if rec.metric == "byu":
        with_motor = set(data.truth.table.loc[data.truth.table["Has motor"] == 1, "tomo_id"]
                         .astype(str))
        run = next((r for r in runs if r.name in with_motor), runs[0])
    refs, mine, rule = _outcome_frames(rec, run, picks, data.truth)
    byu = rec.metric == "byu"
    png, info = slice_png(run, predictions=mine, truth=refs, xz=False,
                          title=f"{run.name}: {entry.method}, seed {rec.seed}",
                          project_picks=byu, outcome_labels=BYU_LABELS if byu else None)
    return SliceImage(png, f"Test tomogram {run.name}, xy slice z = {info['z']} (the plane "
                           f"cutting the most reference particles): ground truth and the picks "
                           f"of seed {rec.seed}, marked by outcome ({rule}); a pick or "
                           "reference is drawn where its sphere cuts the plane; the legend "
                           "counts those in this slice."), ""


def analyse_entry(entry: Any, solutions: Mapping[str, GroundTruth],
                  data: SplitData | None, data_why: str = "",
                  slice_image: bool = True) -> EntryAnalysis:
    """Everything :mod:`entry_analysis` computes for ``entry`` (an
    :class:`~cryobench.report.summary.Entry`)."""
    seeds: list[SeedAnalysis] = []
    first: tuple[RunRecord, pd.DataFrame] | None = None
    for rec in entry.records:
        picks, why = read_predictions(rec)
        truth, why_truth = pick_truth(rec, solutions, data)
        seeds.append(_analyse_seed(rec, picks, why, truth, why_truth))
        if picks is not None and first is None:
            first = (rec, picks)
    notes: list[str] = []
    all_seeds = [r.seed for r in entry.records]
    # diagnostics: the records' blocks, else computed from the predictions
    blocks: dict[int, dict[str, Any]] = {}
    missing: dict[int, str] = {}
    computed: list[int] = []
    for rec, sa in zip(entry.records, seeds, strict=True):
        if rec.diagnostics:
            blocks[rec.seed] = rec.diagnostics
        elif sa.diagnostics is not None:
            blocks[rec.seed] = sa.diagnostics
            computed.append(rec.seed)
        else:
            missing[rec.seed] = ("its record has no diagnostics"
                                 + (f" and {sa.why}" if sa.why else ""))
    diag = diagnostics_table(all_seeds, blocks, missing, computed) if entry.metric == "czii" \
        else None
    dist = _mean_distance(seeds, all_seeds)
    without = [sa for sa in seeds if sa.distance is None]
    if without:
        whys: dict[str, list[int]] = {}
        for sa in without:
            whys.setdefault(sa.why, []).append(sa.seed)
        what = "; ".join(f"seed{'s' if len(ss) > 1 else ''} {', '.join(map(str, ss))}: {why}"
                         for why, ss in whys.items())
        notes.append(("no distance or precision-recall curves" if dist is None else
                      f"curves over {len(all_seeds) - len(without)} of {len(all_seeds)} "
                      "seeds") + f" ({what})")
    elif not any(sa.pr for sa in seeds):
        notes.append("no precision-recall curves: the predictions carry no score column")
    img = None
    if slice_image:
        if data is None:
            notes.append(f"no example slice: {data_why or 'the split data is not at hand'}")
        else:
            try:
                img, why = _slice(entry, data, first)
            except (CryobenchError, OSError, ValueError) as exc:
                img, why = None, str(exc)
            if img is None:
                notes.append(f"no example slice: {why}")
    return EntryAnalysis(seeds, diag, dist, img, notes)
