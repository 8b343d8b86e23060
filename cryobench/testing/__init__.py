"""The conformance suite every picking method must pass (built-in baselines and plugins alike).

:func:`check_method` runs all checks and raises :class:`AssertionError` with a clear message at
the first failure. :func:`method_checks` yields the same checks one by one (named), and
:func:`parametrize_with_checks` turns them into a pytest parametrisation, in the manner of
scikit-learn's ``parametrize_with_checks``::

    from cryobench.testing import parametrize_with_checks
    from my_package import MyMethod

    @parametrize_with_checks([MyMethod])
    def test_conformance(check):
        check()

The checks fit on the ``tiny`` split at the ``smoke`` budget (the two fits are shared by all
checks of one class) and verify that the method

* declares valid metadata (name, tasks, extra, a config dataclass with defaults for every budget);
* supports the split's task;
* predicts valid picks for every test run: the picks columns, finite numbers, known particle
  types, a finite ``score`` column, ``experiment`` equal to the run name, coordinates inside the
  tomogram, and never reads the test runs' ground truth;
* is deterministic for a fixed seed on CPU (two fresh fits give identical picks);
* saves and loads: a reloaded method predicts exactly the same picks.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryobench.methods.base import BUDGETS, TASKS, PickingMethod, RunContext, RunLike

__all__ = ["check_method", "method_checks", "parametrize_with_checks", "TINY_SPLITS"]

TINY_SPLITS: dict[str, str] = {"particles": "tiny", "motor": "tiny-motor"}
"""The conformance split for a method whose first task is the key (when ``split`` is not given):
``tiny`` for particle pickers, ``tiny-motor`` (a few small bacterial-cell volumes) for
motor-only methods."""


class _NoLabels:
    """A run handle whose ground truth is off limits (predict must not read it)."""

    def __init__(self, run: RunLike) -> None:
        self._run = run

    def picks(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        raise AssertionError(f"predict() read the ground-truth picks of test run "
                             f"{self._run.name!r}; methods may only read tomograms at "
                             "prediction time")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._run, name)

    def __repr__(self) -> str:
        return f"<test run {self._run.name!r}>"


class _State:
    """Shared, lazily computed fits of one method class (so every check fits at most twice)."""

    def __init__(self, cls: type[PickingMethod], split: Any, budget: str, seed: int,
                 work_dir: Path, device: str, data_dir: str | os.PathLike[str] | None) -> None:
        self.cls, self.split_arg, self.budget, self.seed = cls, split, budget, seed
        self.work_dir, self.device, self.data_dir = Path(work_dir), device, data_dir
        self._split: Any = None
        self._fits: dict[str, tuple[PickingMethod, dict[str, pd.DataFrame]]] = {}

    @property
    def split(self) -> Any:
        if self._split is None:
            from cryobench.runner.run import resolve_split

            arg = self.split_arg
            if arg is None:
                tasks = tuple(getattr(self.cls, "tasks", ("particles",)))
                arg = TINY_SPLITS.get(tasks[0] if tasks else "particles", "tiny")
            self._split = resolve_split(arg, self.data_dir)
        return self._split

    def context(self, tag: str) -> RunContext:
        sp = self.split
        return RunContext(work_dir=self.work_dir / tag, device=self.device, seed=self.seed,
                          budget=self.budget, task=sp.task, progress=False,
                          particles=tuple(sp.particles))

    def predict(self, method: PickingMethod, ctx: RunContext) -> dict[str, pd.DataFrame]:
        return {run.name: method.predict(_NoLabels(run), ctx) for run in self.split.runs("test")}

    def fitted(self, tag: str) -> tuple[PickingMethod, dict[str, pd.DataFrame]]:
        if tag not in self._fits:
            sp = self.split
            ctx = self.context(tag)
            ctx.work_dir.mkdir(parents=True, exist_ok=True)
            ctx.seed_everything()
            method = self.cls(self.cls.default_config(self.budget))
            method.fit(sp.runs("train"), sp.runs("val"), ctx)
            self._fits[tag] = (method, self.predict(method, ctx))
        return self._fits[tag]


# ----- the checks ---------------------------------------------------------------------------------
def check_attributes(state: _State) -> None:
    """Name, description, tasks, extra, and a config dataclass with defaults for every budget."""
    from cryobench.runner.record import config_hash

    cls = state.cls
    assert isinstance(cls, type) and issubclass(cls, PickingMethod), \
        f"{cls!r} is not a subclass of cryobench.methods.PickingMethod"
    assert isinstance(cls.name, str) and cls.name and not any(c.isspace() for c in cls.name), \
        f"{cls.__name__}.name must be a non-empty string without spaces, got {cls.name!r}"
    assert isinstance(cls.description, str) and cls.description.strip(), \
        f"{cls.__name__}.description must be a non-empty string"
    tasks = tuple(cls.tasks)
    assert tasks and set(tasks) <= set(TASKS), \
        f"{cls.__name__}.tasks must be a non-empty subset of {TASKS}, got {cls.tasks!r}"
    assert cls.extra is None or isinstance(cls.extra, str), \
        f"{cls.__name__}.extra must be None or an extra's name, got {cls.extra!r}"
    assert dataclasses.is_dataclass(getattr(cls, "Config", None)), \
        f"{cls.__name__}.Config must be a dataclass"
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    for budget, values in cls.budgets.items():
        assert budget in BUDGETS, f"{cls.__name__}.budgets has unknown budget {budget!r}"
        unknown = set(values) - fields
        assert not unknown, f"{cls.__name__}.budgets[{budget!r}] sets unknown field(s) {unknown}"
    for budget in BUDGETS:
        try:
            config = cls.default_config(budget)
            config_hash(dataclasses.asdict(config))
        except Exception as exc:
            raise AssertionError(f"{cls.__name__}.default_config({budget!r}) failed or is not "
                                 f"JSON-serialisable: {type(exc).__name__}: {exc}") from exc


def check_supports_split(state: _State) -> None:
    """The method supports the task of the conformance split."""
    sp = state.split
    assert sp.task in tuple(state.cls.tasks), \
        f"{state.cls.__name__} does not support task {sp.task!r} of split {sp.name!r}"


def _extent(run: RunLike) -> tuple[float, float, float]:
    """Largest valid x, y, z in Å (voxel centres: index * spacing)."""
    shape = getattr(run, "shape", None)
    if shape is None:
        shape = run.tomogram().shape
    z, y, x = (int(s) for s in tuple(shape)[-3:])
    sp = float(run.voxel_spacing)
    return (x - 1) * sp, (y - 1) * sp, (z - 1) * sp


def _check_picks(picks: Any, run: RunLike, known: Iterable[str], who: str) -> None:
    from cryobench.errors import CryobenchError
    from cryobench.io.picks import validate_picks

    where = f"{who}.predict(run {run.name!r})"
    assert isinstance(picks, pd.DataFrame), \
        f"{where} returned {type(picks).__name__}, expected a pandas DataFrame"
    try:
        clean = validate_picks(picks, where, known_types=known)
    except CryobenchError as exc:
        raise AssertionError(str(exc)) from None
    assert "score" in picks.columns, f"{where}: picks need a 'score' column (for ranking, mAP)"
    assert np.isfinite(clean["score"].to_numpy()).all(), f"{where}: non-finite score"
    others = sorted(set(clean["experiment"]) - {run.name})
    assert not others, f"{where}: experiment should be {run.name!r}, got {others}"
    if len(clean):
        spacing = float(run.voxel_spacing)
        for axis, hi in zip("xyz", _extent(run), strict=True):
            v = clean[axis].to_numpy()
            lo_bad, hi_bad = v < -0.5 * spacing, v > hi + 0.5 * spacing
            if lo_bad.any() or hi_bad.any():
                i = int(np.flatnonzero(lo_bad | hi_bad)[0])
                raise AssertionError(
                    f"{where}: {axis}={v[i]:.1f} Å is outside the tomogram (0..{hi:.1f} Å); "
                    "picks are x, y, z in Å (see cryobench.coords)")


def check_predicts_valid_picks(state: _State) -> None:
    """Fit on the split's train runs, predict valid picks for every test run."""
    method, preds = state.fitted("fit-a")
    known = [p.name for p in state.split.particles]
    runs = list(state.split.runs("test"))
    assert runs, f"split {state.split.name!r} has no test runs"
    for run in runs:
        _check_picks(preds[run.name], run, known, state.cls.__name__)


def _assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame], what: str) -> None:
    assert a.keys() == b.keys(), f"{what}: different runs predicted"
    for name in a:
        left = a[name].reset_index(drop=True)
        right = b[name].reset_index(drop=True)
        try:
            pd.testing.assert_frame_equal(left, right, check_exact=True)
        except AssertionError as exc:
            first = str(exc).strip().splitlines()[0]
            raise AssertionError(f"{what}: picks for run {name!r} differ "
                                 f"({len(left)} vs {len(right)} rows; {first})") from None


def check_deterministic(state: _State) -> None:
    """Two fresh fits with the same seed give identical picks (CPU)."""
    if not state.device.startswith("cpu"):
        return  # GPU kernels need not be bitwise reproducible
    _, a = state.fitted("fit-a")
    _, b = state.fitted("fit-b")
    _assert_same(a, b, f"{state.cls.__name__} is not deterministic for seed {state.seed}")


def check_save_load(state: _State) -> None:
    """``save`` then ``load`` gives a method that predicts exactly the same picks."""
    method, before = state.fitted("fit-a")
    directory = state.work_dir / "saved"
    if directory.exists():
        shutil.rmtree(directory)
    method.save(directory)
    loaded = type(method).load(directory)
    assert isinstance(loaded, state.cls), \
        f"{state.cls.__name__}.load returned {type(loaded).__name__}"
    from cryobench.runner.record import jsonable

    assert jsonable(loaded.config_dict()) == jsonable(method.config_dict()), \
        "config changed in the save/load round trip"
    ctx = state.context("loaded")
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    ctx.seed_everything()
    after = state.predict(loaded, ctx)
    _assert_same(before, after, f"{state.cls.__name__} save/load round trip")


CHECKS: tuple[Callable[[_State], None], ...] = (
    check_attributes,
    check_supports_split,
    check_predicts_valid_picks,
    check_deterministic,
    check_save_load,
)


# ----- public API ---------------------------------------------------------------------------------
def _run_check(check: Callable[[_State], None], state: _State) -> None:
    try:
        check(state)
    except AssertionError as exc:
        raise AssertionError(f"{state.cls.__name__} failed {check.__name__}: {exc}") from exc
    except Exception as exc:
        raise AssertionError(f"{state.cls.__name__} failed {check.__name__}: "
                             f"{type(exc).__name__}: {exc}") from exc


_STATES: dict[tuple, _State] = {}


def _shared_state(cls: type, split: Any, budget: str, seed: int, work_dir: Any, device: str,
                  data_dir: Any) -> _State:
    key = (cls, split if isinstance(split, (str, type(None))) else id(split), budget, seed,
           str(work_dir), device, str(data_dir))
    if key not in _STATES:
        if work_dir is None:
            work_dir = tempfile.mkdtemp(prefix=f"cryobench-check-{cls.__name__}-")
            atexit.register(shutil.rmtree, work_dir, True)
        _STATES[key] = _State(cls, split, budget, seed, Path(work_dir), device, data_dir)
    return _STATES[key]


def method_checks(cls: type[PickingMethod], *, split: Any = None, budget: str = "smoke",
                  seed: int = 0, work_dir: str | os.PathLike[str] | None = None,
                  device: str = "cpu", data_dir: str | os.PathLike[str] | None = None
                  ) -> Iterator[tuple[str, Callable[[], None]]]:
    """Yield ``(check name, check)``; calling a check raises :class:`AssertionError` on failure.

    The checks of one class share their fits (computed lazily, at most two).
    """
    state = _shared_state(cls, split, budget, seed, work_dir, device, data_dir)
    for check in CHECKS:
        fn = functools.partial(_run_check, check, state)
        functools.update_wrapper(fn, check)
        yield check.__name__, fn


def check_method(cls: type[PickingMethod], *, split: Any = None, budget: str = "smoke",
                 seed: int = 0, work_dir: str | os.PathLike[str] | None = None,
                 device: str = "cpu", data_dir: str | os.PathLike[str] | None = None
                 ) -> list[str]:
    """Run the whole conformance suite on ``cls``; return the names of the checks passed.

    Args:
        cls: the method class.
        split: a split name or object; default ``tiny`` (``tiny-motor`` for motor-only methods).
        budget: config budget used for the fits (``smoke`` keeps it to seconds).
        seed: the seed of both fits.
        work_dir: scratch directory (default: a temporary directory, removed afterwards).
        device: ``cpu`` (determinism is only required on CPU).
        data_dir: passed to :func:`cryobench.data.load_split`.

    Raises:
        AssertionError: naming the failed check and what is wrong.
    """
    tmp = None
    if work_dir is None:
        tmp = tempfile.mkdtemp(prefix=f"cryobench-check-{cls.__name__}-")
    state = _State(cls, split, budget, seed, Path(work_dir or tmp), device, data_dir)
    try:
        for check in CHECKS:
            _run_check(check, state)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return [c.__name__ for c in CHECKS]


def parametrize_with_checks(classes: Iterable[type[PickingMethod]], **kwargs: Any):
    """A ``pytest.mark.parametrize("check", ...)`` over every check of every class.

    Test ids are ``<Class>-<check name>``; keyword arguments go to :func:`method_checks`.
    """
    import pytest

    params, ids = [], []
    for cls in classes:
        for name, fn in method_checks(cls, **kwargs):
            params.append(fn)
            ids.append(f"{cls.__name__}-{name}")
    return pytest.mark.parametrize("check", params, ids=ids)
