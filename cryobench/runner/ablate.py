"""Ablations: run a grid of config variations of one method, same seeds per cell, and compare
each cell with the base config (paired bootstrap over test experiments).

A spec is a TOML file (see ``leaderboards/ablations/``) or the equivalent command-line options::

    name = "augment"                 # also the manifest's folder name
    title = "Augmentations on/off"
    description = "..."
    method = "unet3d"
    split = "czii-synth"             # a split name or a split JSON file (relative to the spec)
    budget = "cpu"
    seeds = [0, 1, 2]
    [set]                            # overrides applied to every cell (optional)
    epochs = 10
    [vary]                           # the grid: every combination of these values
    augment = [true, false]
    [base]                           # the base cell (default: the first value of each key)
    augment = true

``split`` may also be a ``[vary]`` key, so a grid can run over split definitions (the SNR curve
and the training-set-size table do). Every other key must be a field of the method's config;
an unknown key is a one-line :class:`~cryobench.errors.ConfigError`.

Runs go into a results store (skipping cells whose record exists unless ``rerun``), and a
manifest ``<results>/ablations/<name>/ablation.json`` lists the cells, so reports and the
leaderboard site can show the ablation while or after it runs.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryobench.errors import ConfigError, InputError, ResultsError
from cryobench.runner.executors import Cell, CellFailure, CellResult, Executor, commit, run_cell
from cryobench.runner.manifest import check_ablation_name, manifest_path, write_manifest_data

__all__ = ["AblationSpec", "GridPoint", "Plan", "load_spec", "spec_from_options", "parse_vary",
           "parse_seeds", "make_plan", "cell_config", "split_name", "write_manifest",
           "run_ablation", "manifest_path", "SPLIT_KEY"]

SPLIT_KEY = "split"
_SPEC_KEYS = {"name", "title", "description", "method", "split", "budget", "seeds", "set",
              "vary", "base", "device", "labels"}


@dataclass
class AblationSpec:
    """What to ablate: a method, a split, seeds, fixed overrides and the varied keys."""

    name: str
    method: str
    split: str
    vary: dict[str, list[Any]]
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    budget: str | None = None
    fixed: dict[str, Any] = field(default_factory=dict)
    base: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    description: str = ""
    device: str | None = None
    source: Path | None = None
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    """Display names of values: ``{key: {value as written: label}}``."""


@dataclass
class GridPoint:
    """One cell of the grid (all its seeds share it)."""

    label: str
    split_arg: str
    """What :func:`cryobench.data.load_split` is given (a name or an absolute file path)."""
    split_name: str
    """The split's name as records carry it."""
    overrides: dict[str, Any]
    """Typed config overrides (fixed + varied, without ``split``)."""
    varied: dict[str, Any]
    config_hash: str
    is_base: bool


@dataclass
class Plan:
    spec: AblationSpec
    budget: str
    points: list[GridPoint]

    def cells(self, device: str | None = None, data_dir: str | None = None) -> list[Cell]:
        return [Cell.make(self.spec.method, p.split_arg, s, self.budget, p.overrides,
                          device or self.spec.device, data_dir)
                for p in self.points for s in self.spec.seeds]


# ----- parsing -------------------------------------------------------------------------------
def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside brackets or parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return [p for p in parts if p]


def parse_vary(items: Sequence[str]) -> dict[str, list[str]]:
    """``["key=v1,v2", ...]`` -> ``{"key": ["v1", "v2"]}`` (values stay strings)."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not _split_top(values):
            raise ConfigError(f"--vary expects key=value1,value2[,...], got {item!r}")
        if key in out:
            raise ConfigError(f"--vary {key} given twice")
        out[key] = _split_top(values)
    return out


MAX_SEEDS = 1000
"""The most seeds a sweep or a leaderboard may list (each seed is a training run)."""


def parse_seeds(text: str | Sequence[int]) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` -> a list of distinct seeds, each in ``[0, 2**32)``, at most
    :data:`MAX_SEEDS` of them."""
    if not isinstance(text, str):
        seeds = [int(s) for s in text]
    else:
        seeds = []
        for part in _split_top(text):
            m = re.fullmatch(r"(\d{1,10})-(\d{1,10})", part.strip())
            try:
                if m:
                    lo, hi = int(m[1]), int(m[2])
                    if hi - lo + 1 > MAX_SEEDS:
                        raise ConfigError(f"--seeds {part!r} names {hi - lo + 1} seeds; at most "
                                          f"{MAX_SEEDS}")
                    seeds += list(range(lo, hi + 1))
                else:
                    seeds.append(int(part))
            except ValueError:
                raise ConfigError(f"--seeds expects integers like 0,1,2 or 0-4, got {text!r}"
                                  ) from None
            if len(seeds) > MAX_SEEDS:
                raise ConfigError(f"--seeds names more than {MAX_SEEDS} seeds")
    bad = [s for s in seeds if not 0 <= s < 2**32]
    if bad:
        raise ConfigError(f"seeds must be integers from 0 to {2**32 - 1}, got {bad[0]}")
    if not seeds:
        raise ConfigError("no seeds given")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds repeat: {text!r}")
    return seeds


def _toml():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    return tomllib


def load_spec(path: str | os.PathLike[str]) -> AblationSpec:
    """Read an ablation spec TOML file."""
    p = Path(path)
    if not p.is_file():
        raise InputError("ablation spec not found", p)
    tomllib = _toml()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"invalid TOML ({exc})", p) from None
    unknown = sorted(set(data) - _SPEC_KEYS)
    if unknown:
        raise InputError(f"unknown key(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(_SPEC_KEYS))}", p)
    for key in ("method", "vary"):
        if key not in data:
            raise InputError(f"ablation spec needs {key!r}", p)
    vary = data["vary"]
    if not isinstance(vary, dict) or not vary:
        raise InputError("[vary] must be a table with at least one key", p)
    for k, v in vary.items():
        if not isinstance(v, list) or not v:
            raise InputError(f"vary.{k} must be a non-empty list", p)
    split = data.get("split")
    if split is None and SPLIT_KEY not in vary:
        raise InputError("ablation spec needs a 'split' (or 'split' in [vary])", p)
    for table in ("set", "base"):
        if not isinstance(data.get(table, {}), dict):
            raise InputError(f"[{table}] must be a table", p)
    labels = data.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, dict) for v in labels.values()):
        raise InputError("[labels] must hold one table per varied key", p)
    seeds = data.get("seeds", [0, 1, 2])
    if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
        raise InputError("seeds must be a list of integers", p)
    return AblationSpec(
        name=check_ablation_name(str(data.get("name") or p.stem), p),
        method=str(data["method"]),
        split=str(split) if split is not None else "", vary={k: list(v) for k, v in vary.items()},
        seeds=parse_seeds(seeds), budget=data.get("budget"), fixed=dict(data.get("set", {})),
        base=dict(data.get("base", {})), title=str(data.get("title", "")),
        description=str(data.get("description", "")), device=data.get("device"), source=p,
        labels={k: {str(a): str(b) for a, b in v.items()} for k, v in labels.items()})


def spec_from_options(method: str, split: str, vary: Sequence[str], seeds: str = "0,1,2",
                      budget: str | None = None, fixed: Mapping[str, Any] | None = None,
                      name: str | None = None) -> AblationSpec:
    """A spec from ``cryobench ablate --method M --split S --vary k=a,b ...`` options."""
    if not vary:
        raise ConfigError("give at least one --vary key=value1,value2 (or a spec file)")
    v = parse_vary(vary)
    auto = f"{method}-" + "-".join(re.sub(r"[^A-Za-z0-9]+", "-", k) for k in v)
    return AblationSpec(name=check_ablation_name(name or auto), method=method, split=split,
                        vary=dict(v), seeds=parse_seeds(seeds), budget=budget,
                        fixed=dict(fixed or {}), title=name or f"{method}: " + ", ".join(v))


# ----- planning ------------------------------------------------------------------------------
def _split_arg(value: Any, spec: AblationSpec) -> str:
    """A split value: a built-in name, or a JSON path (relative to the spec) with /foldK."""
    text = str(value)
    base, sep, fold = text.rpartition("/fold") if "/fold" in text else (text, "", "")
    if base.endswith(".json"):
        path = Path(base)
        if not path.is_absolute() and spec.source is not None:
            path = spec.source.parent / path
        if not path.is_file():
            raise ConfigError(f"split definition not found: {path}", spec.source)
        return str(path.resolve()) + (f"/fold{fold}" if sep else "")
    return text


def split_name(split_arg: str) -> str:
    """The name a split gets in records (definition name, plus ``/foldK``), without data."""
    from cryobench.data.splits import split_definition

    base, sep, fold = split_arg.rpartition("/fold") if "/fold" in split_arg else (split_arg,
                                                                                 "", "")
    name = split_definition(base)["name"] if base.endswith(".json") else base
    if not base.endswith(".json"):
        split_definition(base)  # unknown names fail here, with close matches
    return name + (f"/fold{fold}" if sep else "")


def _method_class(method: str):
    from cryobench.runner.run import resolve_method

    return resolve_method(method)


def cell_config(method: str, budget: str, overrides: Mapping[str, Any]
                ) -> tuple[str, dict[str, Any], str]:
    """``(method name, config dict, config hash)`` of a cell, exactly as the runner computes
    them (so a cell's run directory is known before it runs)."""
    from cryobench.methods.config import validate_overrides
    from cryobench.runner import record as _record

    name, cls = _method_class(method)
    config = cls.default_config(budget, **validate_overrides(cls.Config, dict(overrides), name))
    config_dict = _record.jsonable(cls(config).config_dict())
    return name, config_dict, _record.config_hash(config_dict)


def _known_keys(cls: type) -> list[str]:
    import dataclasses

    return sorted(f.name for f in dataclasses.fields(cls.Config))


def make_plan(spec: AblationSpec, device: str | None = None) -> Plan:
    """Validate the spec against the method's config and compute every cell's config hash.

    Raises:
        ConfigError: unknown method, unknown varied/fixed key, a value of the wrong type, an
            unknown split, or a base cell that is not in the grid.
    """
    from cryobench.methods.config import validate_overrides
    from cryobench.runner import record as _record
    from cryobench.runner.run import default_budget, resolve_device

    name, cls = _method_class(spec.method)
    known = _known_keys(cls)
    for where, keys in (("--vary", spec.vary), ("--set", spec.fixed)):
        for key in keys:
            if key == SPLIT_KEY and where == "--vary":
                continue
            if key not in known:
                raise ConfigError(f"unknown {where} key {key!r} for method {name!r}; "
                                  f"known: {SPLIT_KEY}, {', '.join(known)}"
                                  if where == "--vary" else
                                  f"unknown {where} key {key!r} for method {name!r}; "
                                  f"known: {', '.join(known)}", spec.source)
    budget = spec.budget or default_budget(resolve_device(device or spec.device))
    fixed = validate_overrides(cls.Config, spec.fixed, name)
    typed: dict[str, list[Any]] = {}
    for key, values in spec.vary.items():
        if key == SPLIT_KEY:
            typed[key] = [_split_arg(v, spec) for v in values]
        else:
            typed[key] = [validate_overrides(cls.Config, {key: v}, name)[key] for v in values]
        if len({json.dumps(v, default=str) for v in typed[key]}) != len(typed[key]):
            raise ConfigError(f"--vary {key} lists a value twice")
    base_values = {k: v[0] for k, v in typed.items()}
    for key, value in spec.base.items():
        if key not in typed:
            raise ConfigError(f"[base] key {key!r} is not varied", spec.source)
        value = (_split_arg(value, spec) if key == SPLIT_KEY
                 else validate_overrides(cls.Config, {key: value}, name)[key])
        if value not in typed[key]:
            raise ConfigError(f"[base] {key} = {value!r} is not one of the varied values",
                              spec.source)
        base_values[key] = value
    keys = list(typed)
    names = {k: dict(zip([json.dumps(x, default=str) for x in typed[k]],
                         [_label_of(spec.labels.get(k, {}), raw) for raw in spec.vary[k]],
                         strict=True)) for k in keys}
    points: list[GridPoint] = []
    for combo in itertools.product(*(typed[k] for k in keys)):
        varied = dict(zip(keys, combo, strict=True))
        split_arg = varied.get(SPLIT_KEY, None)
        split_arg = split_arg if split_arg is not None else _split_arg(spec.split, spec)
        overrides = {**fixed, **{k: v for k, v in varied.items() if k != SPLIT_KEY}}
        chash = cell_config(name, budget, overrides)[2]
        shown = {k: (_short_split(v) if k == SPLIT_KEY else v) for k, v in varied.items()}
        label = ", ".join(names[k].get(json.dumps(varied[k], default=str)) or f"{k}={_fmt(v)}"
                          for k, v in shown.items())
        points.append(GridPoint(label, split_arg, split_name(split_arg), overrides,
                                _record.jsonable(shown), chash,
                                all(varied[k] == base_values[k] for k in keys)))
    return Plan(spec, budget, points)


def _label_of(labels: Mapping[str, str], raw: Any) -> str | None:
    """The display label of a value as written in the spec (TOML keys are strings)."""
    return labels.get(str(raw)) or labels.get(json.dumps(raw, default=str))


def _short_split(arg: str) -> str:
    return split_name(arg)


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (list, tuple)):
        return "(" + ",".join(map(_fmt, v)) + ")"
    return str(v)


# ----- manifest and running -------------------------------------------------------------------
def write_manifest(results_dir: str | os.PathLike[str], plan: Plan) -> Path:
    """Write the ablation manifest (atomically, :mod:`cryobench.runner.manifest`)."""
    from cryobench.runner.record import utc_now

    spec = plan.spec
    return write_manifest_data(results_dir, {
        "name": spec.name,
        "title": spec.title or spec.name, "description": spec.description,
        "method": _method_class(spec.method)[0], "budget": plan.budget, "seeds": spec.seeds,
        "vary": {k: [(_short_split(_split_arg(x, spec)) if k == SPLIT_KEY else x) for x in v]
                 for k, v in spec.vary.items()},
        "set": spec.fixed,
        "spec": None if spec.source is None else str(spec.source),
        "cells": [{"label": p.label, "split": p.split_name, "overrides": p.overrides,
                   "varied": p.varied, "config_hash": p.config_hash, "base": p.is_base}
                  for p in plan.points],
        "created_at": utc_now(),
    })


@dataclass
class PlanSummary:
    """What an ablation is about to do: its size, what is done, and a time estimate."""

    n_cells: int
    n_seeds: int
    todo: int
    done: int
    seconds_per_run: float | None
    basis: str

    @property
    def estimate_s(self) -> float | None:
        return None if self.seconds_per_run is None else self.seconds_per_run * self.todo


def summarise_plan(plan: Plan, results_dir: str | os.PathLike[str], rerun: bool = False
                   ) -> PlanSummary:
    """Count the runs to do and estimate their time from earlier records of the same method and
    budget in ``results_dir`` (the median ``total_s``); no records, no estimate."""
    import statistics

    from cryobench.runner import store

    results = Path(results_dir)
    done = 0 if rerun else sum(_existing(results, plan, p, s) for p in plan.points
                               for s in plan.spec.seeds)
    total = len(plan.points) * len(plan.spec.seeds)
    method = _method_class(plan.spec.method)[0]
    times: list[float] = []
    if results.is_dir():
        for _, rec in store.iter_records(results):
            if rec.method == method and rec.budget == plan.budget and rec.device != "synthetic":
                times.append(float(rec.timings.get("total_s", 0.0)))
    if times:
        per = statistics.median(times)
        basis = (f"median of {len(times)} earlier {method} {plan.budget}-budget run(s) in "
                 f"{results}")
    else:
        per, basis = None, f"no earlier {method} {plan.budget}-budget run in {results}"
    return PlanSummary(len(plan.points), len(plan.spec.seeds), total - done, done, per, basis)


@dataclass
class AblationRun:
    """The outcome of :func:`run_ablation`."""

    manifest: Path
    plan: Plan
    ran: int = 0
    skipped: int = 0
    failures: list[CellFailure] = field(default_factory=list)


def _existing(results_dir: Path, plan: Plan, point: GridPoint, seed: int) -> bool:
    from cryobench.runner import store

    d = store.run_dir(results_dir, point.split_name, _method_class(plan.spec.method)[0],
                      point.config_hash, seed)
    try:
        rec = store.read_complete(d)
    except ResultsError:
        return False  # corrupt: run it again
    return rec is not None and rec.budget == plan.budget


def run_ablation(plan: Plan, results_dir: str | os.PathLike[str], executor: Executor, *,
                 rerun: bool = False, device: str | None = None, data_dir: str | None = None,
                 fn: Callable[[Cell], CellResult] = run_cell,
                 on_commit: Callable[[CellResult, Path], None] | None = None) -> AblationRun:
    """Run every cell of ``plan`` that has no complete record yet; write the manifest first."""
    results = Path(results_dir)
    out = AblationRun(write_manifest(results, plan), plan)
    todo: list[Cell] = []
    for p in plan.points:
        for s in plan.spec.seeds:
            if not rerun and _existing(results, plan, p, s):
                out.skipped += 1
                continue
            todo.append(Cell.make(plan.spec.method, p.split_arg, s, plan.budget, p.overrides,
                                  device or plan.spec.device, data_dir))

    def done(result: CellResult) -> None:
        d = commit(result, results)
        out.ran += 1
        if on_commit is not None:
            on_commit(result, d)

    out.failures = executor.run(todo, done, fn) if todo else []
    return out
