"""``cryobench predict``: a trained method's picks for tomograms it has not seen.

The model is a folder written by :meth:`PickingMethod.save` (``method.json`` + its state), or a
run directory, whose ``model/`` folder and record say which method, budget and seed made it. The
tomograms are a split's part or any copick project's runs; they need no ground truth. The picks
come back as one table (Å); :func:`submission_table` shapes them into the Kaggle submission of
the task (CZII: ``id, experiment, particle_type, x, y, z``; BYU: ``tomo_id, Motor axis 0/1/2``
in voxels, -1 for no motor).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cryobench.errors import ConfigError, MethodError, ResultsError
from cryobench.methods.base import PickingMethod, RunContext, RunLike
from cryobench.particles import ParticleType
from cryobench.runner import store
from cryobench.runner.record import RunRecord

__all__ = ["LoadedModel", "load_model", "Target", "resolve_target", "predict_picks",
           "submission_table"]


@dataclass
class LoadedModel:
    """A trained method and what is known of how it was trained."""

    method: PickingMethod
    directory: Path
    record: RunRecord | None = None


def load_model(path: str | os.PathLike[str]) -> LoadedModel:
    """A trained method from a model folder or a run directory (no code from the folder runs:
    ``method.json`` is JSON, and the methods load their weights without unpickling).

    Raises:
        ResultsError: no model there (with what was looked for).
        MethodError: the method that made it is not installed.
    """
    from cryobench.methods.registry import get_method

    p = Path(path)
    record = None
    if (p / store.RECORD_NAME).is_file():
        record = RunRecord.load(p / store.RECORD_NAME)
        model_dir = p / (record.model or store.MODEL_DIR)
    else:
        model_dir = p
    meta_path = model_dir / "method.json"
    if not meta_path.is_file():
        hint = (" (the run was made with save_model=False)" if record is not None
                and record.model is None else "")
        raise ResultsError(f"no saved model: expected {meta_path.name} in a model folder or a "
                           f"run directory with a {store.MODEL_DIR}/ folder{hint}", p)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ResultsError(f"unreadable method.json ({type(exc).__name__})", meta_path) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not isinstance(
            meta.get("config"), dict):
        raise ResultsError("method.json needs a method name and a config object", meta_path)
    cls = get_method(meta["name"])
    try:
        method = cls.load(model_dir)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ResultsError(f"cannot load the {meta['name']} model ({type(exc).__name__}: "
                           f"{str(exc)[:120]})", model_dir) from None
    return LoadedModel(method, model_dir, record)


@dataclass
class Target:
    """The tomograms to predict: run handles, their project (for writing picks back), the task
    and the particle classes."""

    runs: list[RunLike]
    project: Any
    task: str
    particles: tuple[ParticleType, ...]
    name: str


def resolve_target(data: str, *, part: str = "test", runs: Sequence[str] | None = None,
                   data_dir: str | os.PathLike[str] | None = None) -> Target:
    """The runs to predict: a copick config (its runs, or ``runs``), or a split's ``part``.

    Raises:
        ConfigError / DataError: unknown split, part or run; an unreadable project.
    """
    from cryobench.data import load_split, open_project

    p = Path(data)
    if p.suffix == ".json" and p.is_file() and _is_copick_config(p):
        project = open_project(p)
        names = project.select_runs(list(runs) if runs else None)
        handles = [project.run(n) for n in names]
        return Target(handles, project, project.task, tuple(project.particles), str(p))
    split = load_split(data, data_dir)
    split.prepare(progress=False)
    names = split.role_runs(part)
    if runs:
        unknown = sorted(set(runs) - set(names))
        if unknown:
            raise ConfigError(f"run(s) {', '.join(unknown)} are not in part {part!r} of split "
                              f"{split.name!r}")
        names = [n for n in names if n in set(runs)]
    project = split.project()
    handles = [project.run(n, split.tomo_type, split.voxel_spacing) for n in names]
    return Target(handles, project, split.task, tuple(split.particles), f"{split.name}/{part}")


def _is_copick_config(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and "pickable_objects" in data


def predict_picks(model: LoadedModel, target: Target, *, device: str = "cpu",
                  progress: bool = True) -> pd.DataFrame:
    """Run the model on every target run (progress bar when ``progress``) and check the picks."""
    from cryobench.runner.run import predict_runs

    method = model.method
    if target.task not in method.tasks:
        raise MethodError(f"method {method.name!r} picks {', '.join(method.tasks)}, but "
                          f"{target.name} is a {target.task!r} task")
    rec = model.record
    known = [p.name for p in target.particles]
    with tempfile.TemporaryDirectory(prefix="cryobench-predict-") as tmp:
        ctx = RunContext(work_dir=Path(tmp), device=device, seed=rec.seed if rec else 0,
                         budget=rec.budget if rec else "cpu", task=target.task,
                         amp=device.startswith("cuda"), progress=progress,
                         particles=target.particles)
        return predict_runs(method, target.runs, ctx, known, desc="predict")


def submission_table(picks: pd.DataFrame, target: Target, *, with_score: bool = False
                     ) -> pd.DataFrame:
    """The Kaggle submission of the target's task: CZII ``id, experiment, particle_type, x, y,
    z`` (Å; ``score`` too with ``with_score``), or BYU ``tomo_id, Motor axis 0/1/2`` (voxels,
    the top pick per tomogram, -1 when there is none)."""
    from cryobench.io.byu import picks_to_byu
    from cryobench.io.picks import PICKS_COLUMNS

    if target.task == "motor":
        return picks_to_byu(picks, target.runs)
    cols = list(PICKS_COLUMNS) + (["score"] if with_score else [])
    out = picks[cols].reset_index(drop=True)
    out.insert(0, "id", range(len(out)))
    return out
