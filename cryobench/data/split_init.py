"""Split definitions for a user's own copick project (``cryobench data init-split``).

A definition names the project (``source: {"kind": "copick", "config": PATH}``), the task and
metric, the tomogram type and voxel spacing, and the train / val / test runs, given by name, drawn
by fractions with a seed, or (for a Croissant manifest) taken from the manifest's split column.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cryobench.data.project import Project
from cryobench.data.splits import ROLES, _validate_definition, check_split_name
from cryobench.errors import ConfigError

__all__ = ["assign_by_fractions", "make_split_definition"]

METRIC_TASK = {"czii": "particles", "byu": "motor"}


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def assign_by_fractions(runs: Sequence[str], fractions: Sequence[float], seed: int
                        ) -> dict[str, list[str]]:
    """Shuffle the sorted ``runs`` with ``numpy.random.default_rng(seed)`` and cut them into
    train / val / test by ``fractions`` (three numbers >= 0 summing to 1).

    Counts are ``round(f * n)`` (halves up) for val and test, the rest train; a role with a
    positive fraction gets at least one run, taken from val before test, as long as train keeps
    one when its fraction is positive. Each role's runs are returned sorted.

    Raises:
        ConfigError: bad fractions, or too few runs for them.
    """
    if len(fractions) != 3 or any(not math.isfinite(f) or f < 0 for f in fractions):
        raise ConfigError(f"--fractions needs three numbers >= 0 (train,val,test), got "
                          f"{','.join(map(str, fractions))}")
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ConfigError(f"--fractions must sum to 1, got {sum(fractions):g}")
    if fractions[2] <= 0:
        raise ConfigError("--fractions: the test fraction must be > 0")
    n = len(runs)
    f_train, f_val, f_test = fractions
    n_test = max(int(f_test > 0), _round_half_up(f_test * n))
    n_val = max(int(f_val > 0), _round_half_up(f_val * n))
    need_train = int(f_train > 0)
    while n_val + n_test + need_train > n and n_val > int(f_val > 0 and n >= 3):
        n_val -= 1
    while n_val + n_test + need_train > n and n_test > 1:
        n_test -= 1
    if n_val + n_test + need_train > n or (f_test > 0 and n_test == 0):
        raise ConfigError(f"{n} run(s) are too few for fractions "
                          f"{f_train:g},{f_val:g},{f_test:g}")
    order = [runs[i] for i in np.random.default_rng(seed).permutation(n)]
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    if f_train == 0 and train:
        raise ConfigError(f"fractions {f_train:g},{f_val:g},{f_test:g} leave {len(train)} "
                          "run(s) without a role")
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


def _config_reference(config: Path, out: Path | None) -> str:
    """The config path as the split file stores it: relative to the split file's folder when
    one lies inside the other's folder (the split travels with the project), else absolute."""
    config = config.expanduser().resolve()
    if out is not None:
        split_dir = out.expanduser().resolve().parent
        rel = os.path.relpath(config, split_dir)
        if not rel.startswith("..") or split_dir.is_relative_to(config.parent):
            return rel
    return str(config)


def make_split_definition(project: Project, name: str, *,
                          roles: dict[str, Iterable[str]] | None = None,
                          fractions: Sequence[float] | None = None, seed: int = 0,
                          metric: str | None = None, tomo_type: str | None = None,
                          voxel_spacing: float | None = None,
                          out: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """A split definition over ``project`` (validated; nothing is written).

    Roles come from ``roles`` (run names; roles not given stay empty), else from ``fractions``
    and ``seed``, else from a Croissant manifest's split column (other split names become
    ``parts``). Every run must exist and carry a tomogram of ``tomo_type`` at
    ``voxel_spacing`` (defaults: the project's); roles are disjoint and ``test`` is not empty.

    Raises:
        ConfigError: bad name, fractions, roles or metric.
        DataError: an unknown run, or a run without the tomogram.
    """
    from cryobench.data.croissant import roles_from_croissant

    check_split_name(name)
    metric = metric or project.metric
    if metric not in METRIC_TASK:
        raise ConfigError(f"unknown metric {metric!r} (czii or byu)")
    if roles is not None and fractions is not None:
        raise ConfigError("give the runs of each role or --fractions, not both")
    parts: dict[str, list[str]] = {}
    how: dict[str, Any]
    if roles is not None:
        chosen = {r: list(roles.get(r, [])) for r in ROLES}
        how = {"method": "listed"}
    elif fractions is not None:
        chosen = assign_by_fractions(project.runs, list(fractions), seed)
        how = {"method": "fractions", "fractions": list(fractions), "seed": int(seed),
               "rng": "numpy.random.default_rng(seed).permutation(sorted runs)"}
    else:
        chosen, parts = roles_from_croissant(project)
        how = {"method": "croissant"}
        if not any(chosen.values()):
            raise ConfigError("give the runs of each role (--train/--val/--test) or "
                              "--fractions; the project has no split column to take them from")
    for role in ROLES:
        chosen[role] = project.select_runs(chosen[role])
    seen: dict[str, str] = {}
    for role, runs in [*chosen.items(), *parts.items()]:
        for run in runs:
            if run in seen:
                raise ConfigError(f"run {run!r} is in both {seen[run]} and {role}")
            seen[run] = role
    if not chosen["test"]:
        raise ConfigError("the test role is empty: give at least one test run")
    tomo_type = tomo_type or project.defaults.get("tomo_type")
    if voxel_spacing is None:
        voxel_spacing = project.defaults.get("voxel_spacing")
    for run in seen:
        project.run(run, tomo_type, voxel_spacing)
    definition: dict[str, Any] = {
        "name": name,
        "description": f"A split of the copick project {project.config_path.name} "
                       f"({project.name}), written by `cryobench data init-split`.",
        "task": METRIC_TASK[metric],
        "metric": metric,
        "source": {"kind": "copick",
                   "config": _config_reference(project.config_path,
                                               None if out is None else Path(out))},
        "tomo_type": tomo_type,
        "voxel_spacing": None if voxel_spacing is None else float(voxel_spacing),
        "train": chosen["train"], "val": chosen["val"], "test": chosen["test"],
        "folds": None,
        "created": how,
    }
    if parts:
        definition["parts"] = parts
    return _validate_definition(definition, name)
