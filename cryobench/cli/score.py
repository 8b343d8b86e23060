"""``cryobench score``: score a submission CSV against a solution CSV.

The command is three steps, each usable on its own:

1. :func:`load_tables` reads the two CSVs and picks the metric (from ``--metric`` or the
   columns);
2. :func:`score_tables` scores two DataFrames and returns a JSON-ready dict (a later
   ``--copick CONFIG`` option only has to build the solution DataFrame and call this);
3. :func:`render_text` / JSON output.

Every user error is an :class:`~cryobench.errors.InputError` naming the file; the top-level
group prints it as one line ``error: <file>: <problem>`` and exits with code 2.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from cryobench.cli._options import BOOTSTRAP, SEED
from cryobench.cli._tables import class_table, legend, printable
from cryobench.errors import InputError
from cryobench.metrics.params import MetricParams
from cryobench.metrics.registry import get_metric, infer_metric
from cryobench.vocab import MATCHINGS, METRICS

__all__ = ["score", "load_tables", "score_tables", "render_text", "ScoreOptions",
           "ReadOptions"]

@dataclass
class ScoreOptions:
    """What to score with (``params``: every number-changing parameter) and what to show."""

    metric: str = "czii"
    params: MetricParams = field(default_factory=MetricParams)
    per_experiment: bool = False
    bootstrap: int = 0
    seed: int = 0
    confidence: float = 0.95
    diagnostics: bool = True


@dataclass
class ReadOptions:
    """What a pick format may lack (see :func:`cryobench.io.formats.read_picks`)."""

    voxel_spacing: float | None = None
    tomogram_shape: str | None = None
    particle_type: str | None = None
    experiment: str | None = None
    tomo_map: str | None = None
    project: Any = None

    def read(self, path: str | os.PathLike[str], fmt: str):
        from cryobench.io.formats import read_picks

        return read_picks(path, format=fmt, voxel_spacing=self.voxel_spacing,
                          tomogram_shape=self.tomogram_shape, project=self.project,
                          particle_type=self.particle_type, experiment=self.experiment,
                          tomo_map=self.tomo_map)


def _read_table(path: str | os.PathLike[str], reader: ReadOptions | None):
    """A CSV as it is, or a pick file of another format (STAR, Dynamo, EM, copick CSV) as a
    picks table; returns ``(table, is_picks_format)``."""
    from cryobench.io.formats import foreign_format
    from cryobench.io.picks import read_csv_table

    fmt = foreign_format(path)
    if fmt is None:
        return read_csv_table(path), False
    return (reader or ReadOptions()).read(path, fmt), True


def load_tables(submission: str | os.PathLike[str], solution: str | os.PathLike[str],
                metric: str | None = None, reader: ReadOptions | None = None):
    """Read both files and keep the columns the metric uses; return ``(sub, sol, metric)``.

    CSVs are read as they are; pick files of the formats the field writes (RELION and pytom
    STAR, Dynamo tables, TOM motive lists, copick CSV) are read into picks tables with
    ``reader``'s options. Without ``metric`` it is inferred from the submission's columns. A
    raw BYU ``train_labels.csv`` (several rows per multi-motor tomogram) is accepted as the
    solution of the BYU metric (see :func:`cryobench.io.byu.byu_solution_from_labels`).
    """
    from cryobench._threads import submit

    # Whole files, then the metric's columns: pandas 3 parses a whole file on two threads but
    # a ``usecols`` read on one (0.087 s vs 0.144 s for the 1M-pick benchmark submission).
    # The solution is read beside the submission; errors still come in the order submission,
    # metric, solution.
    sol_future = submit(_read_table, solution, reader)
    try:
        sub, sub_is_picks = _read_table(submission, reader)
        if metric is None:
            metric = "czii" if sub_is_picks else infer_metric(sub.columns, str(submission))
    except InputError:
        sol_future.exception()  # wait for the reader; its own error (if any) comes second
        raise
    sol, _ = sol_future.result()
    if metric == "byu":
        from cryobench.io.byu import byu_solution_from_labels, is_byu_labels

        if is_byu_labels(sol):
            sol = byu_solution_from_labels(sol, str(solution), submission=sub)
    needed = set(get_metric(metric).used_columns)
    return (sub[[c for c in sub.columns if c in needed]],
            sol[[c for c in sol.columns if c in needed]], metric)


# what the metric functions call the two tables in their errors
_ROLES = {"submission": "submission", "solution": "solution",
          "detections": "submission", "ground_truth": "solution"}


def _rethrow(exc: InputError, names: dict[str, str]) -> InputError:
    """Replace the placeholders of library errors (``"submission"``, ``"ground_truth"``, ...)
    by the paths in ``names``."""
    role = _ROLES.get(str(exc.path)) if exc.path is not None else None
    if role in names:
        return type(exc)(exc.message, names[role])
    return exc


def score_tables(submission, solution, opts: ScoreOptions, *,
                 names: dict[str, str] | None = None) -> dict[str, Any]:
    """Score two DataFrames; return one JSON-ready dict (``score``, ``per_class``, ...).

    ``names`` maps ``"submission"``/``"solution"`` to what error messages should call them
    (file paths in the CLI).
    """
    names = names or {}
    try:
        if len(solution) == 0:
            raise InputError("no data rows: a solution needs at least one row", "solution")
        metric = get_metric(opts.metric)
        evaluation = metric.evaluate(submission, solution, opts.params,
                                     per_experiment=opts.per_experiment,
                                     diagnostics=opts.diagnostics)
        out = evaluation.to_dict(per_experiment=opts.per_experiment)
        if opts.bootstrap:
            out["bootstrap"] = metric.bootstrap(evaluation, submission, solution,
                                                n_resamples=opts.bootstrap, seed=opts.seed,
                                                confidence=opts.confidence).to_dict()
        return out
    except InputError as exc:
        raise _rethrow(exc, names) from None


# ---------------------------------------------------------------- text rendering


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return printable(str(v))


def _table(header: list[str], rows: list[list[Any]], right_from: int = 1) -> list[str]:
    cells = [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(header, *cells, strict=True)]

    def line(r):
        return "  ".join(c.ljust(w) if i < right_from else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()

    return [line(header)] + [line(r) for r in cells]


def render_text(result: dict[str, Any]) -> str:
    """A readable table: one row per class, footers (diagnostics, CI), the score last."""
    metric = result.get("metric")
    lines: list[str] = []
    params = result.get("params", {})
    if metric in ("czii", "byu"):
        if result.get("per_experiment"):
            rows = [[r["experiment"], r["particle_type"], r["tp"], r["fp"], r["fn"]]
                    for r in result["per_experiment"]]
            lines += _table(["experiment", "particle_type", "tp", "fp", "fn"], rows, 2)
            lines.append("")
        if result.get("per_tomo"):
            rows = [[r["tomo_id"], r["has_motor"], r["predicted"], r["distance_voxels"],
                     r["threshold_voxels"], r["outcome"]] for r in result["per_tomo"]]
            lines += _table(["tomo_id", "has_motor", "predicted", "distance_vox",
                             "threshold_vox", "outcome"], rows, 1)
            lines.append("")
        beta = float(params.get("beta", 4 if metric == "czii" else 2))
        lines += class_table(result["per_class"], beta)
        zero = [k for k, v in result["per_class"].items() if v.get("weight") == 0]
        lines.append(legend(metric, beta, zero_weight=zero,
                            distance_multiplier=float(params.get("distance_multiplier", 0.5)),
                            distance_angstrom=float(params.get("distance_angstrom", 1000))))
    else:
        header = ["class", "n_gt", "n_det", "AP", "AP50", "AP75"]
        rows = [[k, v["n_gt"], v["n_det"], v["ap"], v["ap50"], v["ap75"]]
                for k, v in result["per_class"].items()]
        lines += _table(header, rows)
    diag = result.get("diagnostics")
    if diag:
        lines.append(
            f"diagnostics: {diag['n_candidates']} scored candidates, "
            f"{100 * diag['duplicate_rate']:.1f}% duplicates, "
            f"{100 * diag['unmatched_rate']:.1f}% unmatched; "
            f"score without duplicates {_fmt(diag['score_deduplicated'])}")
    if metric == "czii":
        label = (f"score (weighted F{_fmt(params['beta'], 3).rstrip('0').rstrip('.')}, "
                 f"{'Kaggle CZII rule' if params['matching'] == 'kaggle' else 'one-to-one'}"
                 f", threshold {params['distance_multiplier']} x radius)")
    elif metric == "byu":
        label = (f"score (F{_fmt(params['beta'], 3).rstrip('0').rstrip('.')}, BYU rule, "
                 f"{params['distance_angstrom']} Å)")
    else:
        label = "score (mAP@[.5:.95])" + (f", mAP50 {_fmt(result['map50'])}, mAP75 "
                                         f"{_fmt(result['map75'])}")
    boot = result.get("bootstrap")
    if boot:
        lines.append(
            f"bootstrap: {100 * boot['confidence']:g}% CI [{_fmt(boot['low'])}, "
            f"{_fmt(boot['high'])}] over {boot['n_groups']} {boot['group_col']} groups "
            f"({boot['n_resamples']} resamples, seed {boot['seed']}"
            + (f"; {boot['n_nonfinite']} without a finite score left out"
               if boot.get("n_nonfinite") else "") + ")")
    lines.append(f"{label}: {_fmt(result['score'], 6)}")
    return "\n".join(lines)


# ---------------------------------------------------------------- command


@click.command("score", short_help="Score a submission (CZII, BYU, mAP) against a solution.")
@click.argument("submission", required=False, type=click.Path(dir_okay=True, path_type=Path))
@click.option("--solution", type=click.Path(dir_okay=True, path_type=Path),
              help="Solution (ground truth): a CSV (CZII, BYU solution or the raw BYU "
                   "train_labels.csv) or a pick file of the formats SUBMISSION may be.")
@click.option("--copick", "copick_config", type=click.Path(dir_okay=False, path_type=Path),
              help="A copick config: score against its ground truth (user curation, session "
                   "0); without SUBMISSION, the predictions are read from it too.")
@click.option("--user", default="cryobench", show_default=True,
              help="With --copick: the copick user of the predictions.")
@click.option("--session", default=None,
              help="With --copick: the copick session of the predictions; a run writes "
                   "METHOD-HASH8-sSEED (its record's copick.session, e.g. "
                   "unet3d-650780c4-s0). An unknown one lists those with picks.")
@click.option("--runs", "runs", multiple=True, metavar="RUN[,RUN...]",
              help="With --copick: score only these runs (repeatable).")
@click.option("--split", "split_name", default=None,
              help="With --copick: score only the runs of a split's --part (e.g. the test "
                   "runs of a split whose data this project is).")
@click.option("--part", default="test", show_default=True,
              help="With --split: train, val, test, all, or a named part.")
@click.option("--particles", "particles_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A catalogue of the classes (CSV or TOML: name, radius in Å, weight), for "
                   "solutions with classes outside the CZII six.")
@click.option("--voxel-spacing", type=float, default=None,
              help="Pick files in pixels (RELION 4, Dynamo, TOM): Å per pixel, when the file "
                   "does not say.")
@click.option("--tomogram-shape", default=None, metavar="Z,Y,X",
              help="RELION 5 (coordinates from the tomogram centre): the tomogram's size in "
                   "voxels.")
@click.option("--particle-type", default=None,
              help="Pick files without a particle type (Dynamo, TOM, STAR): the class of their "
                   "picks.")
@click.option("--experiment", default=None,
              help="Pick files without a tomogram name: the experiment of their picks.")
@click.option("--tomo-map", default=None, type=click.Path(dir_okay=False),
              help="Dynamo/TOM tomogram numbers -> names (lines 'index name'; default: "
                   "FILE.doc beside the pick file).")
@click.option("--metric", type=click.Choice(METRICS),
              help="Metric; inferred from the submission's columns when absent.")
@click.option("--beta", type=float, default=None,
              help="F-beta's beta (default: 4 for CZII, 2 for BYU).")
@click.option("--distance-multiplier", type=float, default=0.5, show_default=True,
              help="CZII match threshold as a fraction of the particle radius (inclusive).")
@click.option("--distance-angstrom", type=float, default=1000.0, show_default=True,
              help="BYU match threshold in Å.")
@click.option("--matching", type=click.Choice(MATCHINGS), default="kaggle",
              show_default=True,
              help="CZII tp rule: 'kaggle' (official) or 'one-to-one' (Hungarian; not Kaggle).")
@click.option("--per-experiment", is_flag=True,
              help="Also show counts per experiment (CZII) or outcomes per tomogram (BYU).")
@click.option("--bootstrap", "n_bootstrap", type=BOOTSTRAP, default=0,
              help="Add a percentile bootstrap CI over experiments with N resamples.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.95, show_default=True, help="Bootstrap confidence level.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
def score(submission: Path | None, solution: Path | None, copick_config: Path | None,
          user: str, session: str | None, runs: tuple[str, ...], split_name: str | None,
          part: str, particles_file: Path | None, voxel_spacing: float | None,
          tomogram_shape: str | None, particle_type: str | None, experiment: str | None,
          tomo_map: str | None, metric: str | None, beta: float | None,
          distance_multiplier: float, distance_angstrom: float, matching: str,
          per_experiment: bool, n_bootstrap: int, seed: int, confidence: float,
          as_json: bool) -> None:
    """Score SUBMISSION against --solution or a copick project's ground truth.

    CZII submissions have columns experiment, particle_type, x, y, z (Å); BYU submissions
    tomo_id, Motor axis 0/1/2 (voxels); pick files of RELION 4/5, pytom-match-pick (.star),
    Dynamo (.tbl), TOM (.em) and copick CSVs are read by their extension and columns. The
    default output is a table with the score last; --json prints one object with score,
    per_class, params, diagnostics (and bootstrap). With --copick CONFIG, picks stored in the
    project (--user, --session) are scored against its ground truth with the radii and weights
    of its pickable objects (the BYU rule for a motor project).
    """
    opts = ScoreOptions(params=MetricParams(beta=beta, distance_multiplier=distance_multiplier,
                                            distance_angstrom=distance_angstrom,
                                            matching=matching),
                        per_experiment=per_experiment, bootstrap=n_bootstrap, seed=seed,
                        confidence=confidence)
    reader = ReadOptions(voxel_spacing, tomogram_shape, particle_type, experiment, tomo_map)
    if copick_config is not None:
        if solution is not None:
            raise click.UsageError("give either --solution or --copick, not both")
        if particles_file is not None:
            raise click.UsageError("--copick takes the classes from the project; --particles "
                                   "is for CSV solutions")
        sub_df, sol_df, names = _load_copick(copick_config, submission, user, session, runs,
                                             split_name, part, opts, reader)
        if metric not in (None, opts.metric):
            raise click.UsageError(f"--copick: this project is scored with the {opts.metric} "
                                   f"metric (its task), not {metric}")
        metric = opts.metric
    else:
        if runs or split_name:
            raise click.UsageError("--runs and --split apply to --copick")
        if submission is None:
            raise click.UsageError("missing argument SUBMISSION (a CSV); or score a copick "
                                   "project's picks with --copick CONFIG")
        if solution is None:
            raise click.UsageError("missing option '--solution' (the ground-truth CSV), or "
                                   "--copick CONFIG for a copick project's ground truth")
        if particles_file is not None:
            from cryobench.io.particle_file import read_particles

            catalogue = read_particles(particles_file)
            opts.params = opts.params.replace(radii={p.name: p.radius for p in catalogue},
                                              weights={p.name: p.weight for p in catalogue})
        sub_df, sol_df, metric = load_tables(submission, solution, metric, reader)
        names = {"submission": str(submission), "solution": str(solution)}
    opts.metric = metric
    _reject_inapplicable(click.get_current_context(), metric)
    result = score_tables(sub_df, sol_df, opts, names=names)
    result["submission"] = names["submission"]
    result["solution"] = names["solution"]
    if as_json:
        click.echo(json.dumps(result, indent=2, allow_nan=False))
    else:
        click.echo(render_text(result))


# options that change only some metrics' numbers: anywhere else they are refused, not ignored
def _applies_to() -> dict[str, tuple[str, ...]]:
    from cryobench.metrics.registry import METRIC_REGISTRY

    out = {opt: tuple(n for n, m in METRIC_REGISTRY.items() if opt in m.options)
           for opt in ("beta", "distance_multiplier", "matching", "distance_angstrom")}
    out["per_experiment"] = tuple(n for n, m in METRIC_REGISTRY.items() if n != "map")
    out["particles_file"] = tuple(n for n, m in METRIC_REGISTRY.items() if "radii" in m.options)
    return out


def _reject_inapplicable(ctx: click.Context, metric: str) -> None:
    from click.core import ParameterSource

    for name, metrics in _applies_to().items():
        if metric not in metrics and ctx.get_parameter_source(name) in (
                ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            option = "--" + name.replace("_", "-")
            raise click.UsageError(f"{option} does not apply to the {metric} metric "
                                   f"(only to {' and '.join(metrics)})")


def _load_copick(config: Path, submission: Path | None, user: str, session: str | None,
                 runs: tuple[str, ...], split: str | None, part: str, opts: ScoreOptions,
                 reader: ReadOptions):
    """Predictions (a CSV, or the project's picks of user/session) and the project's truth,
    restricted to ``runs`` or to a split's part; a motor project gets the BYU tables."""
    from cryobench.data import open_project
    from cryobench.data.project import GROUND_TRUTH_SESSION, GROUND_TRUTH_USER, copick_name
    from cryobench.data.splits import byu_solution, split_part_runs
    from cryobench.io.byu import picks_to_byu
    from cryobench.io.picks import read_csv_table

    project = open_project(config)
    if runs and split:
        raise click.UsageError("give --runs or --split, not both")
    chosen = (project.select_runs(_split_list(runs)) if runs
              else split_part_runs(split, part, project) if split else None)
    opts.params = opts.params.replace(radii={p.name: p.radius for p in project.particles},
                                      weights={p.name: p.weight for p in project.particles})
    opts.metric = project.metric
    where = "" if chosen is None else f", {len(chosen)} run(s)"
    sol_name = f"{config} (ground truth{where})"
    if submission is not None:
        from cryobench.io.formats import foreign_format

        fmt = foreign_format(submission)
        reader.project = project
        sub_df = read_csv_table(submission) if fmt is None else reader.read(submission, fmt)
        sub_name = str(submission)
    else:
        project.require_picks(user, session, chosen)
        sub_df = project.read_picks(chosen, user=copick_name(user),
                                    session=None if session is None else copick_name(session),
                                    with_score=True)
        sub_name = f"{config} (user {user}" + (f", session {session}" if session else "") + ")"
    if project.metric == "byu":
        handles = [project.run(n) for n in (chosen or project.runs)]
        sol_df = byu_solution(handles)
        if submission is None or "tomo_id" not in sub_df.columns:
            sub_df = picks_to_byu(sub_df, handles)
    else:
        sol_df = project.read_picks(chosen, user=GROUND_TRUTH_USER, session=GROUND_TRUTH_SESSION)
        if chosen is not None and "experiment" in sub_df.columns:
            sub_df = sub_df[sub_df["experiment"].astype(str).isin(set(chosen))]
    return sub_df, sol_df, {"submission": sub_name, "solution": sol_name}


def _split_list(values: tuple[str, ...]) -> list[str]:
    """``--runs a,b --runs c`` -> ``[a, b, c]``."""
    return [v.strip() for item in values for v in item.split(",") if v.strip()]
