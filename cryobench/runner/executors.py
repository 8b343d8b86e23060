"""Executors: run many (method, split, seed, config) cells, in-process or as Ray tasks.

Both executors call the same cell function (by default :func:`run_cell`), which runs one cell
into a private temporary directory and returns the small files of its run directory (record,
config, predictions). The driver then commits them into the results store, record last, as
each cell finishes; so Ray workers need no shared filesystem, an interrupted sweep keeps every
finished cell, and the local and Ray executors produce identical records for the same cells
(apart from timings and timestamps).
"""

from __future__ import annotations

import abc
import os
import tempfile
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryobench.errors import ConfigError, CryobenchError, MethodError

__all__ = ["Cell", "CellResult", "CellFailure", "Executor", "LocalExecutor", "RayExecutor",
           "make_executor", "run_cell", "commit", "EXECUTORS"]

EXECUTORS = ("local", "ray")
RUN_FILES = ("config.json", "predictions.csv", "record.json")
"""Files of a run directory that travel back to the driver (the record last)."""


@dataclass(frozen=True)
class Cell:
    """One unit of work: a method, a split (name or definition path), a seed and overrides."""

    method: str
    split: str
    seed: int
    budget: str
    overrides: tuple[tuple[str, Any], ...] = ()
    device: str | None = None
    data_dir: str | None = None
    progress: bool = False
    """Show the run's own progress bars (fit, predict) inside the sweep's bar."""

    @classmethod
    def make(cls, method: str, split: str, seed: int, budget: str,
             overrides: Mapping[str, Any] | None = None, device: str | None = None,
             data_dir: str | None = None) -> Cell:
        items = tuple(sorted((str(k), _freeze(v)) for k, v in dict(overrides or {}).items()))
        return cls(method, split, int(seed), budget, items, device, data_dir)

    @property
    def overrides_dict(self) -> dict[str, Any]:
        return {k: _thaw(v) for k, v in self.overrides}

    def label(self) -> str:
        extra = ", ".join(f"{k}={_thaw(v)}" for k, v in self.overrides)
        return f"{self.method} on {self.split} seed {self.seed}" + (f" ({extra})" if extra else "")


def _freeze(v: Any) -> Any:
    return tuple(_freeze(x) for x in v) if isinstance(v, (list, tuple)) else v


def _thaw(v: Any) -> Any:
    return list(_thaw(x) for x in v) if isinstance(v, tuple) else v


@dataclass
class CellResult:
    """What a finished cell sends back: its run directory (relative to the results root)
    and the bytes of its files."""

    cell: Cell
    rel_dir: str
    files: dict[str, bytes]
    skipped: bool = False


@dataclass
class CellFailure:
    """A cell that raised: the error message and, for bugs, the traceback."""

    cell: Cell
    message: str
    user_error: bool
    traceback: str = ""


def run_cell(cell: Cell) -> CellResult:
    """Run one cell with :func:`cryobench.runner.run.run` in a temporary results directory."""
    from cryobench.runner.run import run

    with tempfile.TemporaryDirectory(prefix="cryobench-cell-") as tmp:
        res = run(cell.method, cell.split, seed=cell.seed, budget=cell.budget,
                  device=cell.device, overrides=cell.overrides_dict, out=tmp, rerun=True,
                  data_dir=cell.data_dir, progress=cell.progress, save_model=False,
                  write_copick=False)
        d = res.directory
        files = {n: (d / n).read_bytes() for n in RUN_FILES if (d / n).is_file()}
        return CellResult(cell, d.relative_to(tmp).as_posix(), files)


def commit(result: CellResult, results_dir: str | os.PathLike[str]) -> Path:
    """Write a cell's files into ``results_dir`` atomically, the record last; returns its dir."""
    from cryobench.io.atomic import atomic_path

    dest = Path(results_dir) / result.rel_dir
    dest.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        if name in result.files:
            with atomic_path(dest / name) as tmp:
                tmp.write_bytes(result.files[name])
    return dest


@dataclass
class Executor(abc.ABC):
    """Runs cells and hands each result to ``on_result`` as soon as it is available."""

    progress: bool = True
    failures: list[CellFailure] = field(default_factory=list)

    @abc.abstractmethod
    def run(self, cells: Sequence[Cell], on_result: Callable[[CellResult], None],
            fn: Callable[[Cell], CellResult] = run_cell) -> list[CellFailure]:
        """Run every cell; return the failures (also kept in :attr:`failures`)."""

    def _fail(self, cell: Cell, exc: BaseException) -> CellFailure:
        user = isinstance(exc, CryobenchError)
        f = CellFailure(cell, str(exc) if user else f"{type(exc).__name__}: {exc}", user,
                        "" if user else "".join(traceback.format_exception(exc)))
        self.failures.append(f)
        return f


def _bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="cell", disable=not enabled)


@dataclass
class LocalExecutor(Executor):
    """In-process, one cell after the other, with a progress bar."""

    def run(self, cells: Sequence[Cell], on_result: Callable[[CellResult], None],
            fn: Callable[[Cell], CellResult] = run_cell) -> list[CellFailure]:
        import dataclasses

        failures: list[CellFailure] = []
        with _bar(len(cells), "cells", self.progress) as bar:
            for cell in cells:
                bar.set_postfix_str(cell.label(), refresh=False)
                try:  # the cell's own fit/predict bars show under the sweep's bar
                    result = fn(dataclasses.replace(cell, progress=self.progress))
                except KeyboardInterrupt:
                    raise
                except Exception as exc:  # one failing cell must not stop the sweep
                    failures.append(self._fail(cell, exc))
                else:
                    on_result(result)
                bar.update(1)
        return failures


@dataclass
class RayExecutor(Executor):
    """Each cell is a Ray task (``pip install 'cryobench[ray]'``).

    Attributes:
        address: a running cluster (``ray://host:10001`` or ``auto``); None starts a local
            Ray instance for the duration of :meth:`run`.
        num_cpus: CPUs requested per task.
        num_gpus: GPUs requested per task (fractions share a GPU); Ray sets
            ``CUDA_VISIBLE_DEVICES`` so each task sees only its own.
        runtime_env: passed to ``ray.init`` (e.g. ``{"pip": ["cryobench[ray]"]}``).
        init_kwargs: extra ``ray.init`` arguments when a local instance is started.
    """

    address: str | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    runtime_env: dict[str, Any] | None = None
    init_kwargs: dict[str, Any] = field(default_factory=dict)

    def _ray(self):
        try:
            import ray
        except ImportError:
            raise MethodError("the ray executor needs Ray: pip install 'cryobench[ray]'") from None
        return ray

    def run(self, cells: Sequence[Cell], on_result: Callable[[CellResult], None],
            fn: Callable[[Cell], CellResult] = run_cell) -> list[CellFailure]:
        if self.num_cpus < 0 or self.num_gpus < 0:
            raise ConfigError("CPUs and GPUs per task must be non-negative")
        ray = self._ray()
        started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"log_to_driver": False, **self.init_kwargs}
            if self.address:
                kwargs["address"] = self.address
            else:
                kwargs.setdefault("include_dashboard", False)
            if self.runtime_env:
                kwargs["runtime_env"] = self.runtime_env
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = self.address or "a local instance"
                raise ConfigError(f"cannot start or reach Ray at {where}: {exc}") from None
            started = True
        failures: list[CellFailure] = []
        try:
            task = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus,
                              max_retries=0)(fn)
            pending = {task.remote(c): c for c in cells}
            with _bar(len(cells), "cells (ray)", self.progress) as bar:
                while pending:
                    done, _ = ray.wait(list(pending), num_returns=1)
                    for ref in done:
                        cell = pending.pop(ref)
                        try:
                            result = ray.get(ref)
                        except KeyboardInterrupt:
                            raise
                        except Exception as exc:
                            failures.append(self._fail(cell, _unwrap(exc)))
                        else:
                            on_result(result)
                        bar.update(1)
        finally:
            if started:
                ray.shutdown()
        return failures


def _unwrap(exc: BaseException) -> BaseException:
    """The user's exception inside a Ray task error (``RayTaskError.cause``), if any."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def make_executor(name: str, *, progress: bool = True, address: str | None = None,
                  num_cpus: float = 1.0, num_gpus: float = 0.0) -> Executor:
    """An executor by name (``local`` or ``ray``)."""
    if name == "local":
        if address:
            raise ConfigError("--address is only used with --executor ray")
        return LocalExecutor(progress=progress)
    if name == "ray":
        return RayExecutor(progress=progress, address=address, num_cpus=num_cpus,
                           num_gpus=num_gpus)
    raise ConfigError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")

