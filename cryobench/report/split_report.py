"""``cryobench report``: one split's results as a self-contained HTML page or Markdown.

The report holds, per method (one entry per config): the score as the mean over seeds with a
bootstrap 95% interval over test experiments (recomputed from the records' counts), per-class
precision / recall / F-beta / F1 / AP, per-experiment counts, runtime and peak memory, and the
metric-gaming diagnostics when the records carry them. When the split's data is at hand (ground
truth and tomograms; synthetic splits only once generated) and the predictions have scores, it
adds precision-recall curves, a threshold sweep and a slice image with predictions for one test
run; otherwise it says why they are missing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cryobench import __version__
from cryobench.errors import ConfigError, CryobenchError
from cryobench.io.atomic import atomic_dir, atomic_write_text
from cryobench.report import figures as F
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


@dataclass
class _Figure:
    name: str
    png: bytes
    caption: str

    def uri(self) -> str:
        return F.data_uri(self.png)


# ----- data-dependent parts ----------------------------------------------------------------------
def _open_split(name: str, data_dir: str | None, notes: list[str]):
    """The split with its data, or None (with a note) when the data is not at hand."""
    try:
        from cryobench.data import load_split
        from cryobench.data.synth import CONFIG_NAME
    except ImportError as exc:  # pragma: no cover - the data layer is part of cryobench
        notes.append(f"data layer unavailable ({exc}); no curves or slice image")
        return None
    try:
        sp = load_split(name, data_dir)
        if sp.is_synthetic and not (sp.cache_path() / CONFIG_NAME).is_file():
            notes.append(f"split {name!r} has not been generated on this machine yet (a run "
                         "generates it); precision-recall curves and the slice image are "
                         "left out")
            return None
        sp.project(progress=False)
        return sp
    except CryobenchError as exc:
        notes.append(f"no data for split {name!r} ({exc}); precision-recall curves and the "
                     "slice image are left out")
        return None


def _predictions(record: RunRecord):
    """``(picks, "")``, or ``(None, why not)``."""
    from cryobench.io.picks import read_picks_csv

    path = record.predictions_path
    if path is None or not path.is_file():
        return None, "not found beside its record"
    try:
        return read_picks_csv(path), ""
    except CryobenchError as exc:
        return None, f"unreadable ({exc.message})"


def _thresholds(scores: np.ndarray) -> np.ndarray:
    qs = np.quantile(scores, np.linspace(0.0, 0.99, SWEEP_POINTS))
    return np.unique(np.round(qs, 6))


def _sweep(entry: Entry, sp, picks) -> dict[str, Any] | None:
    """Score and per-class P/R when keeping predictions with score >= t, for a grid of t
    (scored through the metric registry with the record's own parameters)."""
    from cryobench.metrics.params import MetricParams
    from cryobench.metrics.registry import get_metric

    if picks is None or "score" not in picks.columns or len(picks) == 0:
        return None
    if picks["score"].nunique() < 2 or entry.metric not in ("czii", "byu"):
        return None
    metric = get_metric(entry.metric)
    params = MetricParams.from_record(entry.records[0].params)
    runs = sp.runs("test")
    solution = metric.solution_from_split(sp, "test")
    ts = _thresholds(picks["score"].to_numpy(np.float64))
    scores, pr = [], {c: ([], []) for c in entry.cube.classes}
    for t in ts:
        ev = metric.evaluate(metric.submission_from_picks(picks[picks["score"] >= t], runs),
                             solution, params, per_experiment=False, diagnostics=False)
        scores.append(ev.score)
        if entry.metric == "czii":
            for c, st in ev.result.per_class.items():
                if c in pr:
                    pr[c][0].append(st.recall)
                    pr[c][1].append(st.precision)
        else:
            c = entry.cube.classes[0]
            pr[c][0].append(ev.result.recall)
            pr[c][1].append(ev.result.precision)
    return {"thresholds": ts, "scores": np.asarray(scores),
            "pr": {c: (np.asarray(r), np.asarray(p)) for c, (r, p) in pr.items() if r}}


def _diagnostics_from_predictions(entry: Entry, sp, picks) -> dict[str, float]:
    from cryobench.metrics.params import MetricParams
    from cryobench.metrics.registry import get_metric

    if entry.metric != "czii" or picks is None:
        return {}
    params = MetricParams.from_record(entry.records[0].params)
    d = get_metric("czii").evaluate(picks, sp.solution("test"), params).diagnostics
    return {"duplicate_rate": d.duplicate_rate, "unmatched_rate": d.unmatched_rate,
            "score": d.score, "score_deduplicated": d.score_deduplicated}


def _slice_figure(entry: Entry, sp, picks) -> _Figure | None:
    from cryobench.data.show import render_run

    runs = sp.runs("test")
    if not runs:
        return None
    run = runs[0]
    mine = None if picks is None else picks[picks["experiment"] == run.name]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "slice.png"
        render_run(run, out, predictions=mine)
        png = out.read_bytes()
    return _Figure(f"slice-{entry.id}.png", png,
                   f"Test run {run.name}: ground truth (solid) and {entry.method} seed "
                   f"{entry.seeds[0]} predictions (dashed).")


# ----- context ----------------------------------------------------------------------------------
def _entry_block(e: Entry, sp, notes: list[str]) -> dict[str, Any]:
    from cryobench.report.site import _exp_rows, _seed_fbeta

    figs = [_Figure(f"class-{e.id}.png", F.class_bars(e.per_class, _seed_fbeta(e), e.cube.beta,
                                                      f"{e.method} ({e.config_hash[:8]})"),
                    f"Precision, recall and F{e.cube.beta:g} per class; dots are seeds.")]
    diagnostics = e.diagnostics()
    diag_source = "records"
    if sp is not None:
        picks, why = _predictions(e.records[0])
        if picks is None:
            notes.append(f"{e.method}: predictions of seed {e.seeds[0]} {why}; no curves")
        else:
            try:
                sw = _sweep(e, sp, picks)
                if sw is not None:
                    if sw["pr"]:
                        figs.append(_Figure(f"pr-{e.id}.png", F.pr_curves(sw["pr"]),
                                            f"Precision-recall per class (seed {e.seeds[0]}), "
                                            "sweeping a global score threshold."))
                    figs.append(_Figure(f"sweep-{e.id}.png",
                                        F.threshold_sweep(sw["thresholds"], sw["scores"],
                                                          ylabel=f"{e.metric} score"),
                                        f"Score against the minimum prediction score kept "
                                        f"(seed {e.seeds[0]}); the method's own thresholds "
                                        "were tuned on validation runs."))
                else:
                    notes.append(f"{e.method}: predictions carry no varying score; no curves")
                if not diagnostics:
                    diagnostics = _diagnostics_from_predictions(e, sp, picks)
                    diag_source = f"predictions of seed {e.seeds[0]}"
            except CryobenchError as exc:
                notes.append(f"{e.method}: curves left out ({exc})")
    return {"e": e, "figures": figs, "diagnostics": diagnostics, "diag_source": diag_source,
            "exp_rows": _exp_rows(e), "config_text": config_json(e.config),
            "seed_rows": list(zip(e.records, e.seed_scores, strict=True))}


def build_context(results: Sequence[str | os.PathLike[str]], split: str | None = None,
                  n_flips: int = 9999, test_seed: int = 0,
                  expected_seeds: Sequence[int] | None = None, use_data: bool = True,
                  data_dir: str | None = None) -> dict[str, Any]:
    """Everything the report templates need (figures as PNG bytes)."""
    records, bad = load_records(results)
    split, chosen = one_split(records, split, str(results[0]))
    entries = summarise(chosen, expected_seeds, n_flips, test_seed)
    notes: list[str] = []
    sp = _open_split(split, data_dir, notes) if use_data else None
    if not use_data:
        notes.append("data not used (--no-data): no precision-recall curves or slice image")
    few = sorted({len(e.cube.experiments) for e in entries if len(e.cube.experiments) < 5})
    if few:
        notes.append(f"some entries were scored on only {', '.join(map(str, few))} test "
                     "experiment(s): their bootstrap intervals say little")
    blocks = [_entry_block(e, sp, notes) for e in entries]
    figures: list[_Figure] = [_Figure(
        "scores.png", F.score_forest([f"{e.method} ({e.config_hash[:6]})" for e in entries],
                                     [e.score for e in entries], [e.interval for e in entries],
                                     [e.flagged for e in entries],
                                     xlabel=f"{entries[0].metric} score",
                                     seed_points=[e.seed_scores for e in entries]),
        "Mean score over seeds with 95% bootstrap intervals (grey: flagged); open circles: "
        "each seed's score.")]
    if any(e.timing("total_s") is not None for e in entries):
        figures.append(_Figure("runtime.png", F.runtime_scatter(
            [e.method for e in entries], [e.timing("total_s") for e in entries],
            [e.peak_memory_mb for e in entries], [e.score for e in entries]),
            "Score against total time per run; marker size grows with peak memory."))
    slice_fig = None
    if sp is not None and entries:
        try:
            best = entries[0]
            slice_fig = _slice_figure(best, sp, _predictions(best.records[0])[0])
        except (CryobenchError, OSError, ValueError) as exc:
            notes.append(f"slice image left out ({exc})")
    return {
        "split": split, "entries": entries, "blocks": blocks, "figures": figures,
        "slice": slice_fig, "notes": notes, "bad_files": bad, "n_records": len(chosen),
        "classes": classes_of(entries), "metric": entries[0].metric,
        "beta": entries[0].cube.beta, "n_flips": n_flips, "version": __version__,
        "table_md": Markdown(split_markdown(split, entries)),
    }


def write_report(results: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
                 split: str | None = None, n_flips: int = 9999, test_seed: int = 0,
                 expected_seeds: Sequence[int] | None = None, use_data: bool = True,
                 data_dir: str | None = None) -> ReportResult:
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
    ctx = build_context(results, split, n_flips, test_seed, expected_seeds, use_data, data_dir)
    built_at = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    common = {"built_at": built_at, "short": short_name, "title": f"cryobench report: "
              f"{ctx['split']}", "root": "", "nav": []}
    if kind == ".md":
        fig_dir = out.with_name(f"{out.stem}_figures")
        all_figs = list(ctx["figures"]) + [f for b in ctx["blocks"] for f in b["figures"]]
        if ctx["slice"] is not None:
            all_figs.append(ctx["slice"])
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
