"""``cryobench report``: one split's results as a self-contained HTML page or Markdown.

The report holds, per method (one entry per config): the score as the mean over seeds with a
95% interval over test experiments and seeds (recomputed from the records' counts), per-class
precision / recall / F-beta / F1 / AP, the metric-gaming diagnostics per class, per-experiment
counts, runtime and peak memory. With ground truth of the records' data at hand (the split's
data, or ``--solutions``) it adds F-beta against the match distance, precision-recall curves
over pick scores per class and a threshold sweep; with the split's tomograms, an example slice
per entry with its picks marked TP / FP / FN (see :mod:`cryobench.report.entry_page`).
Whatever cannot be drawn is named, with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cryobench import __version__
from cryobench.errors import ConfigError, CryobenchError
from cryobench.io.atomic import atomic_dir, atomic_write_text
from cryobench.report import figures as F
from cryobench.report.entry_page import Figure
from cryobench.report.leaderboard import classes_of, split_markdown
from cryobench.report.loading import load_records
from cryobench.report.render import Markdown, environment, short_name
from cryobench.report.summary import Entry, config_json, one_split, summarise
from cryobench.runner.record import RunRecord

__all__ = ["ReportResult", "write_report", "build_context"]

SWEEP_POINTS = 25


@dataclass
class ReportResult:
    path: Path
    split: str
    n_entries: int
    n_records: int
    bad_files: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ----- data-dependent parts ----------------------------------------------------------------------
def _thresholds(scores: np.ndarray) -> np.ndarray:
    qs = np.quantile(scores, np.linspace(0.0, 0.99, SWEEP_POINTS))
    return np.unique(np.round(qs, 6))


def _sweep(rec: RunRecord, truth, picks) -> dict[str, Any] | None:
    """The score when keeping predictions with score >= t, for a grid of t (scored through the
    metric registry with the record's own parameters)."""
    from cryobench.metrics.params import MetricParams
    from cryobench.metrics.registry import get_metric
    from cryobench.report.curves import submission_of

    if picks is None or "score" not in picks.columns or len(picks) == 0:
        return None
    if picks["score"].nunique() < 2 or rec.metric not in ("czii", "byu"):
        return None
    metric = get_metric(rec.metric)
    params = MetricParams.from_record(rec.params)
    ts = _thresholds(picks["score"].to_numpy(np.float64))
    scores = [metric.evaluate(submission_of(metric, picks[picks["score"] >= t], truth),
                              truth.table, params, per_experiment=False,
                              diagnostics=False).score for t in ts]
    return {"thresholds": ts, "scores": np.asarray(scores)}


# ----- context ----------------------------------------------------------------------------------
def _entry_block(e: Entry, page, solutions, data) -> dict[str, Any]:
    from cryobench.report.entry_analysis import read_predictions
    from cryobench.report.site import _exp_rows
    from cryobench.report.truth import pick_truth

    a = page.analysis
    notes = [f"{e.method} ({e.config_hash[:8]}): {n}" for n in a.notes]
    figs = list(page.figures)
    rec = next((r for r, sa in zip(e.records, a.seeds, strict=True) if sa.truth_source), None)
    if rec is not None:
        picks, _ = read_predictions(rec)
        truth, _ = pick_truth(rec, solutions, data)
        try:
            sw = _sweep(rec, truth, picks) if truth is not None else None
        except CryobenchError as exc:
            sw = None
            notes.append(f"{e.method}: threshold sweep left out ({exc})")
        if sw is not None:
            figs.append(Figure(
                f"sweep-{e.id}.png", F.threshold_sweep(sw["thresholds"], sw["scores"],
                                                       ylabel=f"{e.metric} score"),
                f"Score against the minimum prediction score kept (seed {rec.seed}); the "
                "method's own thresholds were tuned on validation runs.", "sweep"))
    return {"e": e, "a": a, "figures": [f for f in figs if f.kind != "slice"],
            "slice": page.figure("slice"), "notes": notes, "exp_rows": _exp_rows(e),
            "fbeta_sd": page.fbeta_sd,
            "config_text": config_json(e.config),
            "seed_rows": list(zip(e.records, e.seed_scores, strict=True))}


def build_context(results: Sequence[str | os.PathLike[str]], split: str | None = None,
                  n_flips: int = 9999, test_seed: int = 0,
                  expected_seeds: Sequence[int] | None = None, use_data: bool = True,
                  data_dir: str | None = None,
                  solutions: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Everything the report templates need (figures as PNG bytes)."""
    from cryobench.report.entry_page import entry_pages
    from cryobench.report.truth import open_split_data, truth_from_solution
    from cryobench.report.verification import load_solutions

    records, bad = load_records(results)
    sols, bad_sols = load_solutions(solutions)
    bad += bad_sols
    split, chosen = one_split(records, split, str(results[0]))
    entries = summarise(chosen, expected_seeds, n_flips, test_seed)
    notes: list[str] = []
    if use_data:
        sd, why = open_split_data(split, data_dir)
        if sd is None:
            notes.append(f"{why}: curves need a solutions folder (--solutions), and example "
                         "slices are left out")
    else:
        sd, why = None, "data not used (--no-data)"
        notes.append("data not used (--no-data): no example slices, and curves only from "
                     "--solutions")
    truths = {k: truth_from_solution(v) for k, v in sols.items()}
    few = sorted({len(e.cube.experiments) for e in entries if len(e.cube.experiments) < 5})
    if few:
        notes.append(f"some entries were scored on only {', '.join(map(str, few))} test "
                     "experiment(s): their intervals say little")
    pages = entry_pages(entries, truths, {split: (sd, why)},
                        [f"{e.method} ({e.config_hash[:8]})" for e in entries])
    blocks = [_entry_block(e, pg, truths, sd) for e, pg in zip(entries, pages, strict=True)]
    for b in blocks:
        notes += [n for n in b["notes"] if "no example slice" not in n or sd is not None]
    figures: list[Figure] = [Figure(
        "scores.png", F.score_forest([f"{e.method} ({e.config_hash[:6]})" for e in entries],
                                     [e.score for e in entries], [e.interval for e in entries],
                                     [e.flagged for e in entries],
                                     xlabel=f"{entries[0].metric} score",
                                     seed_points=[e.seed_scores for e in entries]),
        "Mean score over seeds with 95% intervals (grey: flagged); open circles: "
        "each seed's score.")]
    if any(e.timing("total_s") is not None for e in entries):
        figures.append(Figure("runtime.png", F.runtime_scatter(
            [e.method for e in entries], [e.timing("total_s") for e in entries],
            [e.peak_memory_mb for e in entries], [e.score for e in entries]),
            "Score against total time per run; marker size grows with peak memory."))
    return {
        "split": split, "entries": entries, "blocks": blocks, "figures": figures,
        "notes": notes, "bad_files": bad, "n_records": len(chosen),
        "classes": classes_of(entries), "metric": entries[0].metric,
        "beta": entries[0].cube.beta, "n_flips": n_flips, "version": __version__,
        "table_md": Markdown(split_markdown(split, entries)),
    }


def write_report(results: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
                 split: str | None = None, n_flips: int = 9999, test_seed: int = 0,
                 expected_seeds: Sequence[int] | None = None, use_data: bool = True,
                 data_dir: str | None = None,
                 solutions: str | os.PathLike[str] | None = None) -> ReportResult:
    """Write ``out`` (``.html``: self-contained; ``.md``: figures in ``<stem>_figures/``).

    Raises:
        ResultsError: no valid records, mixed schema versions, or several splits and none chosen.
        ConfigError: ``out`` is neither ``.html`` nor ``.md``.
    """
    import datetime as _dt

    out = Path(out)
    kind = out.suffix.lower()
    if kind not in (".html", ".htm", ".md"):
        raise ConfigError("the report must be a .html or .md file", out)
    ctx = build_context(results, split, n_flips, test_seed, expected_seeds, use_data, data_dir,
                        solutions)
    built_at = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    common = {"built_at": built_at, "short": short_name, "title": f"cryobench report: "
              f"{ctx['split']}", "root": "", "nav": []}
    if kind == ".md":
        fig_dir = out.with_name(f"{out.stem}_figures")
        all_figs = list(ctx["figures"]) + [f for b in ctx["blocks"] for f in b["figures"]]
        all_figs += [b["slice"] for b in ctx["blocks"] if b["slice"] is not None]
        with atomic_dir(fig_dir) as tmp:
            for f in all_figs:
                (tmp / f.name).write_bytes(f.png)
        text = environment(markdown=True).get_template("report.md.j2").render(
            fig_dir=fig_dir.name, **ctx, **common)
    else:
        text = environment().get_template("report.html.j2").render(**ctx, **common)
    atomic_write_text(out, text)
    return ReportResult(out, ctx["split"], len(ctx["entries"]), ctx["n_records"],
                        ctx["bad_files"], ctx["notes"])
