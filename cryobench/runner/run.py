"""Execute one run: fit on train (tuning on val inside ``fit``), predict test, score, record.

The record is written last and atomically, so a run directory holds ``record.json`` only when
everything before it succeeded; an interrupted run leaves no record and is simply run again.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from cryobench import __version__
from cryobench.errors import ConfigError, CryobenchError, MethodError, ResultsError
from cryobench.io.atomic import atomic_write_text
from cryobench.io.picks import PICKS_COLUMNS, validate_picks, write_picks_csv
from cryobench.methods.base import BUDGETS, PickingMethod, RunContext, RunLike
from cryobench.particles import ParticleType
from cryobench.runner import env as _env
from cryobench.runner import record as _record
from cryobench.runner import store
from cryobench.runner.overrides import validate_overrides

__all__ = ["SplitLike", "RunResult", "run", "resolve_method", "resolve_split", "resolve_device",
           "default_budget", "predict_runs", "score_picks", "copick_session"]


class SplitLike(Protocol):
    """What the runner needs of a split (see :mod:`cryobench.data`)."""

    name: str
    task: str
    metric: str
    fingerprint: str
    particles: tuple[ParticleType, ...]

    def runs(self, role: str) -> Sequence[RunLike]: ...

    def solution(self, role: str) -> pd.DataFrame: ...


@dataclass
class RunResult:
    """The outcome of :func:`run`."""

    record: dict[str, Any]
    path: Path
    """The record file."""
    skipped: bool = False
    """True when an existing complete record was reused."""

    @property
    def directory(self) -> Path:
        return self.path.parent


# ----- resolution --------------------------------------------------------------------------------
def resolve_method(method: str | type[PickingMethod]) -> tuple[str, type[PickingMethod]]:
    """``(name, class)`` for a registry name or a method class."""
    if isinstance(method, str):
        from cryobench.methods.registry import get_method

        return method, get_method(method)
    if not (isinstance(method, type) and issubclass(method, PickingMethod)):
        raise MethodError(f"{method!r} is not a PickingMethod class")
    return (method.name or method.__name__), method


def resolve_split(split: str | SplitLike, data_dir: str | os.PathLike[str] | None = None
                  ) -> SplitLike:
    """A split object for a split name (through :func:`cryobench.data.load_split`) or as given."""
    if not isinstance(split, str):
        return split
    from cryobench.data import load_split

    if data_dir is None:
        return load_split(split)
    return load_split(split, data_dir=data_dir)


def resolve_device(device: str | None) -> str:
    """The device to use: ``device`` if given and usable, else CUDA when available, else CPU."""
    if device is None or device == "auto":
        from cryobench.methods.base import default_device

        return default_device()
    dev = device.strip().lower()
    if dev == "cpu":
        return dev
    if dev.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} requested but CUDA is not available")
        try:
            index = torch.device(dev).index
        except RuntimeError:
            raise ConfigError(f"invalid device {device!r}") from None
        if index is not None and index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: only {torch.cuda.device_count()} CUDA "
                              "device(s)")
        return dev
    if dev == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise ConfigError("device 'mps' requested but MPS is not available")
        return dev
    raise ConfigError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps")


def default_budget(device: str) -> str:
    """``full`` on a GPU, ``cpu`` otherwise."""
    return "full" if device.startswith("cuda") else "cpu"


def copick_session(method: str, config_hash: str, seed: int) -> str:
    """A copick session id for a run's picks (copick ids may not contain underscores)."""
    return f"{method.replace('_', '-')}-{config_hash[:8]}-s{seed}"


# ----- prediction and scoring --------------------------------------------------------------------
def predict_runs(method: PickingMethod, runs: Sequence[RunLike], ctx: RunContext,
                 known_types: Sequence[str], desc: str = "predict") -> pd.DataFrame:
    """Predict every run (with a progress bar when ``ctx.progress``) and check each table."""
    from tqdm.auto import tqdm

    frames = []
    for run in tqdm(runs, desc=desc, unit="run", disable=not ctx.progress, leave=False):
        picks = method.predict(run, ctx)
        frames.append(check_predictions(picks, run, known_types, method.name))
    if not frames:
        return _empty_picks()
    return pd.concat(frames, ignore_index=True)


def _empty_picks() -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype=object if c in ("experiment", "particle_type")
                                    else np.float64) for c in PICKS_COLUMNS})
    df["score"] = pd.Series(dtype=np.float64)
    return df


def check_predictions(picks: Any, run: RunLike, known_types: Sequence[str],
                      method: str) -> pd.DataFrame:
    """Validate one run's picks (columns, finite numbers, known types, ``experiment``)."""
    where = f"method {method!r} predictions for run {run.name!r}"
    if not isinstance(picks, pd.DataFrame):
        raise MethodError(f"{where}: predict returned {type(picks).__name__}, not a DataFrame")
    try:
        out = validate_picks(picks, where, known_types)
    except CryobenchError as exc:
        raise MethodError(exc.message, where) from None
    if "score" not in out.columns:
        out["score"] = 1.0
    others = sorted(set(out["experiment"]) - {run.name})
    if others:
        raise MethodError(f"experiment should be {run.name!r}, got {', '.join(others)}", where)
    return out[[*PICKS_COLUMNS, "score"]]


def _counts_rows(per_experiment: pd.DataFrame | None) -> list[dict[str, Any]]:
    if per_experiment is None or len(per_experiment) == 0:
        return []
    rows = []
    for r in per_experiment.itertuples(index=False):
        rows.append({"experiment": str(r.experiment), "particle_type": str(r.particle_type),
                     "tp": int(r.tp), "fp": int(r.fp), "fn": int(r.fn)})
    return rows


def _byu_counts(per_tomo: pd.DataFrame, motor: str) -> list[dict[str, Any]]:
    """One counts row per tomogram from the BYU outcome table (``tn`` rows count nothing)."""
    return [{"experiment": str(t), "particle_type": motor, "tp": int(o == "tp"),
             "fp": int(o == "fp"), "fn": int(o == "fn")}
            for t, o in zip(per_tomo["tomo_id"], per_tomo["outcome"], strict=True)]


def _to_dict(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "to_dict"):
        return dict(obj.to_dict())
    if isinstance(obj, Mapping):
        return dict(obj)
    return {"value": float(obj)}


def picks_to_byu(picks: pd.DataFrame, runs: Sequence[RunLike]) -> pd.DataFrame:
    """A BYU submission: the highest-scoring pick of each run as voxel ``Motor axis 0/1/2``
    (z, y, x), or -1 when the method found no motor."""
    from cryobench.coords import angstrom_to_voxel

    rows = []
    for run in runs:
        mine = picks[picks["experiment"] == run.name]
        if len(mine):
            best = mine.sort_values("score", ascending=False, kind="stable").iloc[0]
            zyx = angstrom_to_voxel(best[["x", "y", "z"]].to_numpy(np.float64),
                                    run.voxel_spacing)[0]
        else:
            zyx = np.array([-1.0, -1.0, -1.0])
        rows.append({"tomo_id": run.name, "Motor axis 0": zyx[0], "Motor axis 1": zyx[1],
                     "Motor axis 2": zyx[2]})
    return pd.DataFrame(rows, columns=["tomo_id", "Motor axis 0", "Motor axis 1",
                                       "Motor axis 2"])


def score_picks(split: SplitLike, picks: pd.DataFrame, runs: Sequence[RunLike],
                role: str = "test") -> dict[str, Any]:
    """Score test picks with the split's metric (and mAP). Returns the record's scoring keys:
    ``metric, score, metrics, counts, params``."""
    from cryobench import metrics as M

    radii = {p.name: float(p.radius) for p in split.particles}
    weights = {p.name: float(p.weight) for p in split.particles}
    solution = split.solution(role)
    out: dict[str, Any] = {"metric": split.metric}
    if split.metric == "czii":
        report, diag = M.czii_score_with_diagnostics(picks, solution, radii=radii,
                                                     weights=weights, per_experiment=True)
        out["score"] = float(report.score)
        # metric-gaming diagnostics beside the score: was it bought with extra copies?
        out["metrics"] = {"czii": _to_dict(report), "diagnostics": _to_dict(diag)}
        out["counts"] = _counts_rows(getattr(report, "per_experiment", None))
        out["params"] = dict(getattr(report, "params", {}) or {})
    elif split.metric == "byu":
        submission = picks_to_byu(picks, runs)
        report = M.byu_score(submission, split.byu_solution(role))
        out["score"] = float(report.score)
        out["metrics"] = {"byu": _to_dict(report)}
        motor = split.particles[0].name if split.particles else "flagellar-motor"
        out["counts"] = _byu_counts(report.per_tomo, motor)
        out["params"] = dict(getattr(report, "params", {}) or {})
    else:
        raise ConfigError(f"split {split.name!r} has an unknown metric {split.metric!r}")
    out["params"].setdefault("radii", radii)
    out["params"].setdefault("weights", weights)
    if hasattr(M, "map_picks") and "score" in picks.columns:
        out["metrics"]["map"] = _to_dict(M.map_picks(picks, solution, radii=radii))
    return out


def _method_metrics(method: Any, test_runs: Sequence[RunLike]) -> dict[str, float]:
    """Figures a method reports itself beside the split's scores (never the score itself):
    ``extra_metrics`` after ``fit`` (validation figures) and ``slice_metrics(test_runs)``
    (slice-level mAP of the slice detectors), as plain floats."""
    out: dict[str, Any] = dict(getattr(method, "extra_metrics", None) or {})
    slice_fn = getattr(method, "slice_metrics", None)
    if callable(slice_fn):
        out.update(slice_fn(test_runs))
    return {str(k): (float(v) if isinstance(v, (int, float)) else v) for k, v in out.items()}


# ----- the run ------------------------------------------------------------------------------------
def _prepare_dir(directory: Path, chash: str, budget: str, fingerprint: str, rerun: bool
                 ) -> dict[str, Any] | None:
    """Return the existing complete record to reuse, or None after clearing the directory."""
    if directory.exists() and not rerun:
        try:
            existing = store.read_complete(directory)
        except ResultsError as exc:
            raise ResultsError(f"{exc.message}; pass --rerun to replace it", exc.path) from None
        config = store.read_config(directory)
        other_hash = existing["config_hash"] if existing else (
            _record.config_hash(config) if config is not None else None)
        if other_hash is not None and other_hash != chash:
            raise ConfigError("run directory exists with a different config "
                              f"(hash {other_hash[:12]}); pass --rerun or use another --out",
                              directory)
        if existing is not None:
            if existing["budget"] != budget:
                raise ConfigError(f"run directory holds a complete {existing['budget']!r}-budget "
                                  "run with the same config; pass --rerun to replace it",
                                  directory)
            if existing["dataset_fingerprint"] != fingerprint:
                raise ResultsError("complete run was made on different data (dataset "
                                   "fingerprint changed); pass --rerun to replace it",
                                   directory)
            return existing
    if directory.exists():
        shutil.rmtree(directory)
    return None


def run(
    method: str | type[PickingMethod],
    split: str | SplitLike,
    *,
    seed: int = 0,
    budget: str | None = None,
    device: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    out: str | os.PathLike[str] = "runs",
    rerun: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    save_model: bool = True,
    write_copick: bool = True,
    log: Callable[[str], None] | None = None,
) -> RunResult:
    """Run ``method`` on ``split`` once and write its record under ``out``.

    Args:
        method: a registry name or a :class:`PickingMethod` subclass.
        split: a split name (``tiny``, ``czii-synth``...) or a split object.
        seed: random seed (methods must be deterministic for a seed on CPU).
        budget: ``smoke``, ``cpu`` or ``full``; default ``full`` on a GPU, else ``cpu``.
        device: ``cpu``, ``cuda``, ``cuda:N``; default CUDA when available.
        overrides: config values (strings are parsed with the field's type).
        out: the results directory (see :mod:`cryobench.runner.store`).
        rerun: run again even when a complete record exists.
        data_dir: passed to :func:`cryobench.data.load_split`.
        progress: show tqdm progress bars (fit, predict).
        save_model: keep the trained method in ``<run dir>/model``.
        write_copick: also write the test picks into the split's copick project.
        log: called with short status lines (the CLI prints them to stderr).

    Returns:
        :class:`RunResult` with the record, its path, and whether it was reused.
    """
    say = log or (lambda _msg: None)
    started_at = _record.utc_now()
    name, cls = resolve_method(method)
    dev = resolve_device(device)
    budget = budget or default_budget(dev)
    if budget not in BUDGETS:
        raise ConfigError(f"unknown budget {budget!r}; choose one of {', '.join(BUDGETS)}")
    typed = validate_overrides(cls.Config, dict(overrides or {}), name)
    config = cls.default_config(budget, **typed)
    sp = resolve_split(split, data_dir)
    if hasattr(sp, "project"):  # synthetic splits generate their data on first use
        sp.project(progress=progress)
    if sp.task not in cls.tasks:
        raise MethodError(f"method {name!r} supports task(s) {', '.join(cls.tasks)}, but split "
                          f"{sp.name!r} is a {sp.task!r} task")
    method_obj = cls(config)
    config_dict = _record.jsonable(method_obj.config_dict())
    chash = _record.config_hash(config_dict)
    directory = store.run_dir(out, sp.name, name, chash, seed)
    existing = _prepare_dir(directory, chash, budget, sp.fingerprint, rerun)
    if existing is not None:
        return RunResult(existing, directory / store.RECORD_NAME, skipped=True)

    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(directory / store.CONFIG_NAME, _record.dumps(config_dict))
    ctx = RunContext(work_dir=directory / store.WORK_DIR, device=dev, seed=seed, budget=budget,
                     task=sp.task, amp=dev.startswith("cuda"), progress=progress,
                     particles=tuple(sp.particles))
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    _env.reset_peak_memory(dev)
    ctx.seed_everything()

    say(f"fitting {name} on {sp.name} (budget {budget}, seed {seed}, device {dev})")
    t_start = t0 = time.perf_counter()
    method_obj.fit(sp.runs("train"), sp.runs("val"), ctx)
    fit_s = time.perf_counter() - t0

    test_runs = list(sp.runs("test"))
    say(f"predicting {len(test_runs)} test run(s)")
    t0 = time.perf_counter()
    known = [p.name for p in sp.particles]
    picks = predict_runs(method_obj, test_runs, ctx, known)
    predict_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    scoring = score_picks(sp, picks, test_runs)
    method_metrics = _method_metrics(method_obj, test_runs)
    if method_metrics:
        scoring["metrics"]["method"] = method_metrics
    score_s = time.perf_counter() - t0

    write_picks_csv(picks, directory / store.PREDICTIONS_NAME)
    session = copick_session(name, chash, seed)
    if write_copick and hasattr(sp, "project"):
        project = sp.project()
        for run_ in test_runs:
            project.write_picks(run_.name, picks[picks["experiment"] == run_.name],
                                user="cryobench", session=session)
    if save_model:
        method_obj.save(directory / store.MODEL_DIR)
    shutil.rmtree(ctx.work_dir, ignore_errors=True)

    rec: dict[str, Any] = {
        "schema_version": _record.SCHEMA_VERSION,
        "cryobench_version": __version__,
        "git_sha": _env.git_sha(),
        "method": name,
        "split": sp.name,
        "task": sp.task,
        "seed": int(seed),
        "budget": budget,
        "device": dev,
        "config": config_dict,
        "config_hash": chash,
        "dataset_fingerprint": str(sp.fingerprint),
        "environment": _env.capture_environment(dev),
        "timings": {"fit_s": round(fit_s, 3), "predict_s": round(predict_s, 3),
                    "score_s": round(score_s, 3),
                    "total_s": round(time.perf_counter() - t_start, 3)},
        "peak_memory_mb": _env.peak_memory_mb(),
        "peak_gpu_memory_mb": _env.peak_gpu_memory_mb(dev),
        "started_at": started_at,
        "finished_at": _record.utc_now(),
        **scoring,
        "n_test_runs": len(test_runs),
        "n_predictions": int(len(picks)),
        "predictions": store.PREDICTIONS_NAME,
        "copick": {"user": "cryobench", "session": session} if write_copick else None,
        "status": "complete",
    }
    path = _record.write(directory / store.RECORD_NAME, rec)
    return RunResult(_record.load(path), path, skipped=False)
