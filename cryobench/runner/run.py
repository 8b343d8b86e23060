"""Execute one run: fit on train (tuning on val inside ``fit``), predict test, score, record.

The record is written last and atomically, so a run directory holds ``record.json`` only when
everything before it succeeded; an interrupted run leaves no record, and running it again
resumes from its kept fit and test-run picks (:mod:`cryobench.runner.resume`).
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
from cryobench.coords import ROTATION_COLUMNS, has_rotations
from cryobench.errors import ConfigError, CryobenchError, MethodError, ResultsError
from cryobench.io.atomic import atomic_write_text
from cryobench.io.picks import PICKS_COLUMNS, validate_picks, write_picks_csv
from cryobench.methods.base import PickingMethod, RunContext, RunLike
from cryobench.methods.config import validate_overrides
from cryobench.particles import ParticleType
from cryobench.runner import env as _env
from cryobench.runner import record as _record
from cryobench.runner import store
from cryobench.runner.record import CountRow, RunRecord
from cryobench.runner.resume import Checkpoint
from cryobench.vocab import BUDGETS, check_choice

__all__ = ["SplitLike", "RunResult", "RunPlan", "Scoring", "run", "plan_run", "resolve_method",
           "resolve_split", "resolve_device", "default_budget", "predict_runs", "score_picks",
           "build_record", "copick_session", "check_seed", "PREDICTION_USER"]

PREDICTION_USER = "cryobench"
"""The copick user of the picks a run writes into its split's project."""


def check_seed(seed: Any) -> int:
    """A seed usable by Python, NumPy and torch alike: an integer in ``[0, 2**32)``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not (
            0 <= int(seed) < 2**32):
        raise ConfigError(f"seed must be an integer from 0 to {2**32 - 1}, got {seed!r}")
    return int(seed)


class SplitLike(Protocol):
    """What the runner needs of a split (see :class:`cryobench.data.Split`)."""

    name: str
    task: str
    metric: str
    fingerprint: str
    particles: tuple[ParticleType, ...]
    writes_predictions: bool
    """Whether :meth:`write_predictions` stores picks (False: it is never called)."""

    def prepare(self, progress: bool = True) -> None:
        """Make the data available (synthetic splits generate it on first use)."""

    def runs(self, role: str) -> Sequence[RunLike]: ...

    def solution(self, role: str) -> pd.DataFrame: ...

    def write_predictions(self, run: str, picks: pd.DataFrame, *, user: str,
                          session: str) -> None:
        """Store one run's picks beside the split's data (copick user/session)."""


@dataclass
class RunResult:
    """The outcome of :func:`run`."""

    record: RunRecord
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
                 known_types: Sequence[str], desc: str = "predict",
                 checkpoint: Checkpoint | None = None) -> pd.DataFrame:
    """Predict every run (with a progress bar when ``ctx.progress``) and check each table.

    With a ``checkpoint`` (and a method with :attr:`~PickingMethod.resumable_predictions`),
    each run's checked picks are kept as they come and reused when already kept.
    """
    from tqdm.auto import tqdm

    keep = checkpoint if checkpoint is not None and method.resumable_predictions else None
    frames = []
    for run in tqdm(runs, desc=desc, unit="run", disable=not ctx.progress, leave=False):
        kept = keep.load_picks(run.name) if keep is not None else None
        if kept is not None:
            frames.append(check_predictions(kept[0], run, known_types, method.name))
            keep.reused_runs += 1
            keep.reused_seconds += kept[1]
            continue
        t0 = time.perf_counter()
        picks = check_predictions(method.predict(run, ctx), run, known_types, method.name)
        if keep is not None:
            keep.save_picks(run.name, picks, time.perf_counter() - t0)
        frames.append(picks)
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
    if not has_rotations(out):
        return out[[*PICKS_COLUMNS, "score"]]
    # orientations (template_match): kept for the orientation error, checked as rotations
    from cryobench.metrics.orientation import check_rotations

    try:
        rot = out[list(ROTATION_COLUMNS)].apply(pd.to_numeric, errors="coerce")
        out[list(ROTATION_COLUMNS)] = check_rotations(rot.to_numpy(np.float64)).reshape(-1, 9)
    except CryobenchError as exc:
        raise MethodError(exc.message, where) from None
    return out[[*PICKS_COLUMNS, "score", *ROTATION_COLUMNS]]


@dataclass
class Scoring:
    """The scoring keys of a record: ``metric, score, metrics, counts, params``."""

    metric: str
    score: float
    metrics: dict[str, Any]
    counts: list[CountRow]
    params: dict[str, Any]


def score_picks(split: SplitLike, picks: pd.DataFrame, runs: Sequence[RunLike],
                role: str = "test") -> Scoring:
    """Score a role's picks with the split's metric (through the metric registry), plus the
    3D mAP of the picks and the CZII metric-gaming diagnostics."""
    from cryobench.metrics.map import map_picks
    from cryobench.metrics.params import MetricParams
    from cryobench.metrics.registry import get_metric

    metric = get_metric(split.metric)
    params = MetricParams.from_particles(split.particles)
    evaluation = metric.evaluate(metric.submission_from_picks(picks, runs),
                                 metric.solution_from_split(split, role), params,
                                 per_experiment=True, diagnostics=True, localization=True)
    blocks: dict[str, Any] = {metric.name: evaluation.result.to_dict()}
    if evaluation.diagnostics is not None:
        # metric-gaming diagnostics beside the score: was it bought with extra copies?
        blocks["diagnostics"] = evaluation.diagnostics.to_dict()
    if evaluation.localization is not None:
        # how close (and how well oriented) the matched picks are; changes no score
        blocks["localization"] = evaluation.localization.to_dict()
    if "score" in picks.columns:
        blocks["map"] = map_picks(picks, split.solution(role), radii=params.radii).to_dict()
    counts = [CountRow(str(r.experiment), str(r.particle_type), int(r.tp), int(r.fp), int(r.fn))
              for r in evaluation.counts.itertuples(index=False)]
    record_params = {**evaluation.result.params, "radii": params.radii,
                     "weights": params.weights}
    return Scoring(metric.name, evaluation.score, blocks, counts, record_params)


def _method_metrics(method: PickingMethod, test_runs: Sequence[RunLike]) -> dict[str, Any]:
    """Figures a method reports itself beside the split's scores (never the score itself):
    :attr:`~PickingMethod.extra_metrics` after ``fit`` (validation figures) and
    :meth:`~PickingMethod.slice_metrics` (slice-level mAP of the slice detectors)."""
    out: dict[str, Any] = dict(method.extra_metrics or {})
    out.update(method.slice_metrics(test_runs) or {})
    return {str(k): (float(v) if isinstance(v, (int, float)) else v) for k, v in out.items()}


# ----- the run, step by step ----------------------------------------------------------------------
@dataclass
class RunPlan:
    """Everything decided before anything is written: method, config, split, device, where."""

    name: str
    cls: type[PickingMethod]
    method: PickingMethod
    config: dict[str, Any]
    config_hash: str
    split: SplitLike
    seed: int
    budget: str
    device: str
    directory: Path


def plan_run(method: str | type[PickingMethod], split: str | SplitLike, *, seed: int = 0,
             budget: str | None = None, device: str | None = None,
             overrides: Mapping[str, Any] | None = None,
             out: str | os.PathLike[str] = "runs",
             data_dir: str | os.PathLike[str] | None = None, progress: bool = True,
             config: Mapping[str, Any] | None = None) -> RunPlan:
    """Resolve method, device, budget, config (overrides validated) and split; make the split's
    data available. Nothing is written into ``out``.

    ``config`` (instead of ``overrides``): a complete config to use exactly as given (checked,
    not converted), e.g. a record's, so that its hash is reproduced.
    """
    name, cls = resolve_method(method)
    dev = resolve_device(device)
    budget = check_choice("budget", budget or default_budget(dev), BUDGETS)
    check_seed(seed)
    if config is not None:
        if overrides:
            raise ConfigError("give overrides or a complete config, not both")
        config = cls.make_config(dict(config))
    else:
        typed = validate_overrides(cls.Config, dict(overrides or {}), name)
        config = cls.default_config(budget, **typed)
    sp = resolve_split(split, data_dir)
    if sp.task not in cls.tasks:
        raise MethodError(f"method {name!r} supports task(s) {', '.join(cls.tasks)}, but split "
                          f"{sp.name!r} is a {sp.task!r} task")
    sp.prepare(progress=progress)
    method_obj = cls(config)
    config_dict = _record.jsonable(method_obj.config_dict())
    chash = _record.config_hash(config_dict)
    directory = store.run_dir(out, sp.name, name, chash, seed)
    return RunPlan(name, cls, method_obj, config_dict, chash, sp, int(seed), budget, dev,
                   directory)


def _prepare_dir(plan: RunPlan, rerun: bool) -> RunRecord | None:
    """Return the existing complete record to reuse, or None after clearing the directory."""
    directory = plan.directory
    if directory.exists() and not rerun:
        try:
            existing = store.read_complete(directory)
        except ResultsError as exc:
            raise ResultsError(f"{exc.message}; pass --rerun to replace it", exc.path) from None
        config = store.read_config(directory)
        other_hash = existing.config_hash if existing else (
            _record.config_hash(config) if config is not None else None)
        if other_hash is not None and other_hash != plan.config_hash:
            raise ConfigError("run directory exists with a different config "
                              f"(hash {other_hash[:12]}); pass --rerun or use another --out",
                              directory)
        if existing is not None:
            if existing.budget != plan.budget:
                raise ConfigError(f"run directory holds a complete {existing.budget!r}-budget "
                                  "run with the same config; pass --rerun to replace it",
                                  directory)
            if existing.dataset_fingerprint != plan.split.fingerprint:
                raise ResultsError("complete run was made on different data (dataset "
                                   "fingerprint changed); pass --rerun to replace it",
                                   directory)
            return existing
    if directory.exists():
        for p in directory.iterdir():  # what an interrupted run finished may be resumed
            if rerun or p.name != store.RESUME_DIR:
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    return None


def _context(plan: RunPlan, progress: bool, log: Callable[[str], None] | None) -> RunContext:
    return RunContext(work_dir=plan.directory / store.WORK_DIR, device=plan.device,
                      seed=plan.seed, budget=plan.budget, task=plan.split.task,
                      amp=plan.device.startswith("cuda"), progress=progress,
                      particles=tuple(plan.split.particles), log=log)


def _write_outputs(plan: RunPlan, picks: pd.DataFrame, test_runs: Sequence[RunLike],
                   ctx: RunContext, *, save_model: bool, write_copick: bool
                   ) -> tuple[dict[str, str] | None, str | None]:
    """Predictions CSV, the picks in the split's project, the saved model; returns the copick
    reference and the model folder (relative to the run directory) for the record."""
    write_picks_csv(picks, plan.directory / store.PREDICTIONS_NAME)
    copick = None
    if write_copick and plan.split.writes_predictions:
        copick = {"user": PREDICTION_USER,
                  "session": copick_session(plan.name, plan.config_hash, plan.seed)}
        for run_ in test_runs:
            plan.split.write_predictions(run_.name, picks[picks["experiment"] == run_.name],
                                         **copick)
    model = None
    if save_model:
        plan.method.save(plan.directory / store.MODEL_DIR)
        model = store.MODEL_DIR
    shutil.rmtree(ctx.work_dir, ignore_errors=True)
    return copick, model


def _resolved_precision(plan: RunPlan) -> str | None:
    """What the built-in networks computed in (None for a method without a precision field)."""
    asked = plan.config.get("precision")
    if not isinstance(asked, str):
        return None
    from cryobench.methods.engine.training import resolve_precision

    return resolve_precision(asked, plan.device, plan.device.startswith("cuda"))


def build_record(plan: RunPlan, scoring: Scoring, *, timings: dict[str, float],
                 started_at: str, git_sha: str | None, n_test_runs: int, n_predictions: int,
                 copick: dict[str, str] | None, model: str | None) -> RunRecord:
    """The run record (the one place where the runner builds one); ``git_sha`` is the commit
    the run started from (the code this process loaded, whatever is committed while it runs)."""
    return RunRecord(
        method=plan.name, split=plan.split.name, task=plan.split.task, seed=plan.seed,
        budget=plan.budget, device=plan.device, precision=_resolved_precision(plan),
        config=plan.config, config_hash=plan.config_hash,
        dataset_fingerprint=str(plan.split.fingerprint),
        environment=_env.capture_environment(plan.device),
        timings={k: round(v, 3) for k, v in timings.items()},
        peak_memory_mb=_env.peak_memory_mb(), peak_gpu_memory_mb=_env.peak_gpu_memory_mb(
            plan.device),
        started_at=started_at, finished_at=_record.utc_now(), metric=scoring.metric,
        score=scoring.score, metrics=scoring.metrics, counts=scoring.counts,
        params=scoring.params, n_test_runs=n_test_runs, n_predictions=n_predictions,
        predictions=store.PREDICTIONS_NAME, model=model, copick=copick,
        seeded=bool(getattr(plan.cls, "seeded", True)),
        cryobench_version=__version__, git_sha=git_sha)


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
    config: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run ``method`` on ``split`` once and write its record under ``out``.

    The steps: :func:`plan_run` (resolve and validate everything, nothing written), reuse a
    complete record or clear the run directory, fit (tuning on the validation runs inside
    ``fit``), :func:`predict_runs` on the test runs, :func:`score_picks`, write the outputs
    (predictions, copick picks, model), and last :func:`build_record` and its atomic write.

    Args:
        method: a registry name or a :class:`PickingMethod` subclass.
        split: a split name (``tiny``, ``czii-synth``...) or a split object.
        seed: random seed (methods must be deterministic for a seed on CPU).
        budget: ``smoke``, ``cpu`` or ``full``; default ``full`` on a GPU, else ``cpu``.
        device: ``cpu``, ``cuda``, ``cuda:N``; default CUDA when available.
        overrides: config values (strings are parsed with the field's type).
        out: the results directory (see :mod:`cryobench.runner.store`).
        rerun: run again even when a complete record exists.
        data_dir: where an imported split's data lives (see :func:`cryobench.data.load_split`).
        progress: show tqdm progress bars (fit, predict).
        save_model: keep the trained method in ``<run dir>/model`` (reload it with
            ``cryobench predict --model <run dir>``).
        write_copick: also write the test picks into the split's copick project.
        log: called with short status lines (the CLI prints them to stderr).
        config: a complete config to use as given instead of budget defaults + ``overrides``
            (``cryobench verify`` passes a record's).

    Returns:
        :class:`RunResult` with the record, its path, and whether it was reused.
    """
    say = log or (lambda _msg: None)
    started_at = _record.utc_now()
    plan = plan_run(method, split, seed=seed, budget=budget, device=device,
                    overrides=overrides, out=out, data_dir=data_dir, progress=progress,
                    config=config)
    existing = _prepare_dir(plan, rerun)
    if existing is not None:
        return RunResult(existing, plan.directory / store.RECORD_NAME, skipped=True)
    started_sha = _env.git_sha()  # the code this run runs, before anything is committed meanwhile

    plan.directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(plan.directory / store.CONFIG_NAME, _record.dumps(plan.config))
    ctx = _context(plan, progress, log)
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    _env.reset_peak_memory(plan.device)
    ctx.seed_everything()

    sp = plan.split
    ckpt = Checkpoint(plan.directory, _resume_stamp(plan))
    kept = ckpt.load_fit()
    t_start = time.perf_counter()
    if kept is not None:
        say(f"resuming {plan.name} on {sp.name}: the fit of an interrupted run is kept "
            f"({store.RESUME_DIR}/ in {plan.directory})")
        plan.method.load_state(ckpt.model_dir)
        plan.method.extra_metrics = kept["extra_metrics"]
        fit_s = kept["fit_s"]
    else:
        say(f"fitting {plan.name} on {sp.name} (budget {plan.budget}, seed {plan.seed}, "
            f"device {plan.device})")
        t0 = time.perf_counter()
        plan.method.fit(sp.runs("train"), sp.runs("val"), ctx)
        fit_s = time.perf_counter() - t0
        ckpt.save_fit(plan.method, fit_s)

    test_runs = list(sp.runs("test"))
    say(f"predicting {len(test_runs)} test run(s)")
    t0 = time.perf_counter()
    picks = predict_runs(plan.method, test_runs, ctx, [p.name for p in sp.particles],
                         checkpoint=ckpt)
    predict_s = time.perf_counter() - t0 + ckpt.reused_seconds

    t0 = time.perf_counter()
    scoring = score_picks(sp, picks, test_runs)
    method_metrics = _method_metrics(plan.method, test_runs)
    if method_metrics:
        scoring.metrics["method"] = method_metrics
    score_s = time.perf_counter() - t0

    copick, model = _write_outputs(plan, picks, test_runs, ctx, save_model=save_model,
                                   write_copick=write_copick)
    timings = {"fit_s": fit_s, "predict_s": predict_s, "score_s": score_s,
               "total_s": time.perf_counter() - t_start}
    if kept is not None or ckpt.reused_runs:
        # a resumed run: the times of the interrupted part are added, and the record says so
        timings["total_s"] += (fit_s if kept is not None else 0.0) + ckpt.reused_seconds
        timings["resumed_fit"] = 1.0 if kept is not None else 0.0
        timings["resumed_test_runs"] = float(ckpt.reused_runs)
    rec = build_record(plan, scoring, timings=timings,
                       started_at=started_at, git_sha=started_sha,
                       n_test_runs=len(test_runs),
                       n_predictions=len(picks), copick=copick, model=model)
    path = rec.save(plan.directory / store.RECORD_NAME)
    ckpt.discard()
    return RunResult(RunRecord.load(path), path, skipped=False)


def _resume_stamp(plan: RunPlan) -> dict[str, Any]:
    """What must match for an interrupted run's fit and picks to be reused."""
    from cryobench._cpu_isa import effective_kernels

    return {"method": plan.name, "config_hash": plan.config_hash, "seed": plan.seed,
            "budget": plan.budget, "device": plan.device,
            "precision": _resolved_precision(plan),
            "dataset_fingerprint": str(plan.split.fingerprint),
            "cpu_kernels": effective_kernels(), "cryobench": __version__}
