"""The interface every picking method implements (built-in baselines and plugins alike).

A method is a class with a ``name``, a config dataclass with defaults per budget,
``fit(train_runs, val_runs, ctx)``, ``predict(run, ctx) -> picks`` and ``save``/``load``.
Methods read data only through :class:`RunLike` handles from :mod:`cryobench.data` and never
score themselves.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import os
import random
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from cryobench.errors import ConfigError
from cryobench.particles import ParticleType

__all__ = ["BUDGETS", "TASKS", "RunLike", "RunContext", "PickingMethod"]

BUDGETS: tuple[str, ...] = ("smoke", "cpu", "full")
"""``smoke``: seconds, for tests; ``cpu``: minutes on 2 cores; ``full``: the seed recipes (GPU)."""

TASKS: tuple[str, ...] = ("particles", "motor")
"""``particles``: multi-class picking (CZII); ``motor``: zero or one motor per tomogram (BYU)."""


@runtime_checkable
class RunLike(Protocol):
    """What a method may see of one tomogram (a copick run); see :mod:`cryobench.data`."""

    name: str
    """Run name, used as ``experiment`` in picks."""
    voxel_spacing: float
    """Voxel spacing in Å of level 0 of :meth:`tomogram`."""
    particles: tuple[ParticleType, ...]
    """The pickable objects of the project."""

    def tomogram(self, level: int = 0, crop: tuple[slice, slice, slice] | None = None
                 ) -> np.ndarray:
        """The tomogram as a float32 ``(z, y, x)`` array (a crop if given)."""

    def picks(self) -> pd.DataFrame:
        """Ground-truth picks (``experiment, particle_type, x, y, z`` in Å)."""


@dataclass
class RunContext:
    """Everything a method needs to know about how it is run."""

    work_dir: Path
    device: str = "cpu"
    seed: int = 0
    budget: str = "cpu"
    task: str = "particles"
    amp: bool = False
    progress: bool = True
    particles: tuple[ParticleType, ...] = ()
    log: Callable[[str], None] | None = field(default=None, repr=False, compare=False)
    """Where short status lines go (the CLI prints them on stderr); None: nowhere."""

    def __post_init__(self) -> None:
        self.work_dir = Path(self.work_dir)
        if self.budget not in BUDGETS:
            raise ConfigError(f"unknown budget {self.budget!r}; choose one of {', '.join(BUDGETS)}")
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        # AMP only ever on CUDA.
        self.amp = bool(self.amp and self.device.startswith("cuda"))

    def say(self, message: str) -> None:
        """Report a short status line (e.g. a time estimate) through :attr:`log`."""
        if self.log is not None:
            self.log(message)

    def seed_everything(self) -> None:
        """Seed Python, NumPy and torch (deterministic algorithms on CPU)."""
        random.seed(self.seed)
        np.random.seed(self.seed % 2**32)
        try:
            import torch
        except ImportError:  # pragma: no cover - torch is a core dependency
            return
        torch.manual_seed(self.seed)
        if self.device.startswith("cuda"):
            torch.cuda.manual_seed_all(self.seed)

    def rng(self, salt: int | str = 0) -> np.random.Generator:
        """A NumPy generator derived from the seed and a salt that separates streams: a
        non-negative integer, or a string such as a run name (hashed with sha256, so the
        stream is the same in every process)."""
        if isinstance(salt, str):
            import hashlib

            salt = int.from_bytes(hashlib.sha256(salt.encode("utf-8")).digest()[:8], "big")
        elif isinstance(salt, bool) or not isinstance(salt, (int, np.integer)) or salt < 0:
            raise ConfigError(f"rng salt must be a non-negative integer or a string, got {salt!r}")
        return np.random.default_rng([self.seed, int(salt)])


def default_device() -> str:
    """``cuda`` when a CUDA device is available, else ``cpu``."""
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover
        return "cpu"


class PickingMethod(abc.ABC):
    """Base class of every picking method.

    Subclasses set the class attributes and implement :meth:`fit`, :meth:`predict`,
    :meth:`save_state` and :meth:`load_state`.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    tasks: ClassVar[tuple[str, ...]] = ("particles",)
    extra: ClassVar[str | None] = None
    """Optional extra (``pip install 'cryobench[EXTRA]'``) the method needs, or None."""
    Config: ClassVar[type]
    """A dataclass whose field defaults are the ``cpu`` budget."""
    budgets: ClassVar[dict[str, dict[str, Any]]] = {}
    """Per-budget overrides of the config defaults, e.g. ``{"smoke": {"epochs": 1}}``."""
    seeded: ClassVar[bool] = True
    """False for a deterministic method that ignores the seed (recorded, so boards do not ask
    for the seeds it would repeat)."""
    resumable_predictions: ClassVar[bool] = True
    """Whether a test run's picks depend only on the fitted state and that run, so that an
    interrupted run may keep the picks it finished (:mod:`cryobench.runner.resume`). False for
    a method that keeps per-run state for :meth:`slice_metrics`."""
    extra_metrics: Mapping[str, float] = types.MappingProxyType({})
    """Figures the method reports itself after ``fit`` (validation scores); the runner stores
    them in the record's ``metrics.method`` block, never as the score. ``__init__`` gives each
    instance its own dict."""

    def __init__(self, config: Any | None = None) -> None:
        self.config = config if config is not None else self.default_config()
        self.extra_metrics = {}

    # ----- optional hooks (the runner calls them; the defaults report nothing) ----------------
    def slice_metrics(self, runs: Sequence[RunLike]) -> dict[str, float]:
        """Extra figures on ``runs`` (the test runs), e.g. the slice detectors' 2D-box mAP;
        stored beside :attr:`extra_metrics` in the record. Default: none."""
        return {}

    # ----- configuration -------------------------------------------------------------------
    @classmethod
    def default_config(cls, budget: str = "cpu", **overrides: Any) -> Any:
        """The config for a budget, with ``overrides`` applied (validated)."""
        if budget not in BUDGETS:
            raise ConfigError(f"unknown budget {budget!r}; choose one of {', '.join(BUDGETS)}")
        values = dict(cls.budgets.get(budget, {}))
        values.update(overrides)
        return cls.make_config(values)

    @classmethod
    def config_fields(cls) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(cls.Config)}

    @classmethod
    def make_config(cls, values: dict[str, Any]) -> Any:
        """A config from ``values`` (checked by :func:`cryobench.methods.config.check_values`:
        known keys, types, ``Literal`` choices and ranges), then the config's own ``check()``
        (cross-field rules such as a memory bound), when it defines one."""
        from cryobench.methods.config import check_values

        config = cls.Config(**check_values(cls.Config, dict(values), cls.name or cls.__name__))
        check = getattr(config, "check", None)
        if callable(check):
            check()
        return config

    def config_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    # ----- the interface ---------------------------------------------------------------------
    @abc.abstractmethod
    def fit(self, train_runs: Sequence[RunLike], val_runs: Sequence[RunLike],
            ctx: RunContext) -> None:
        """Train on ``train_runs``; tune thresholds on ``val_runs`` only."""

    @abc.abstractmethod
    def predict(self, run: RunLike, ctx: RunContext) -> pd.DataFrame:
        """Picks for one run: ``experiment, particle_type, x, y, z`` (Å) and ``score``."""

    @abc.abstractmethod
    def save_state(self, directory: Path) -> None:
        """Write the trained state (weights, tuned thresholds) into ``directory``."""

    @abc.abstractmethod
    def load_state(self, directory: Path) -> None:
        """Read what :meth:`save_state` wrote."""

    # ----- persistence -------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> None:
        """Save config and state into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "method.json").write_text(
            json.dumps({"name": self.name, "config": self.config_dict()}, indent=2, default=str)
        )
        self.save_state(d)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> PickingMethod:
        """Load a method saved with :meth:`save`."""
        d = Path(directory)
        meta = json.loads((d / "method.json").read_text())
        method = cls(cls.make_config(meta["config"]))
        method.load_state(d)
        return method
