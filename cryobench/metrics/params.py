"""The parameter object of every score: what changes a number, with each default stated once.

:class:`MetricParams` holds the radii, weights, beta, CZII distance multiplier and matching rule,
and the BYU distance. ``None`` means "the metric's default": the six CZII classes for radii and
weights (1 for a class outside the catalogue), beta 4 for CZII and 2 for BYU. The score command,
the runner, the split report, the leaderboard and the engine's threshold tuning all build one of
these and hand it to :mod:`cryobench.metrics.registry` (or :mod:`cryobench.metrics.counts`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cryobench.errors import ConfigError
from cryobench.particles import ParticleType
from cryobench.vocab import MATCHINGS

__all__ = ["MetricParams", "DEFAULT_BETA", "DEFAULT_DISTANCE_MULTIPLIER",
           "DEFAULT_DISTANCE_ANGSTROM", "DEFAULT_MATCHING"]

DEFAULT_BETA: dict[str, float] = {"czii": 4.0, "byu": 2.0}
"""F-beta's beta per metric: 4 for CZII (recall weighs 16x precision), 2 for BYU."""
DEFAULT_DISTANCE_MULTIPLIER = 0.5
"""CZII: a candidate matches within ``0.5 x radius`` of a reference (inclusive)."""
DEFAULT_DISTANCE_ANGSTROM = 1000.0
"""BYU: a motor prediction matches within 1000 Å of the motor (inclusive)."""
DEFAULT_MATCHING = "kaggle"
"""CZII tp rule: ``kaggle`` (the official one) or ``one-to-one`` (Hungarian)."""


def _finite(name: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise ConfigError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, "
                          f"got {value!r}")
    return v


def _table(name: str, values: Mapping[str, Any] | None) -> dict[str, float] | None:
    if values is None:
        return None
    if not isinstance(values, Mapping):
        raise ConfigError(f"{name} must map particle types to numbers, got "
                          f"{type(values).__name__}")
    one = {"radii": "radius", "weights": "weight"}[name]
    return {str(k): _finite(f"{one} of {k!r}", v) for k, v in values.items()}


@dataclass(frozen=True)
class MetricParams:
    """Everything that changes a score (the defaults are the official values).

    Attributes:
        radii: particle radius in Å per class (CZII threshold = ``distance_multiplier x
            radius``); None: the six CZII classes.
        weights: score weight per class; None: the CZII weights (1 for other classes).
        beta: F-beta's beta; None: :data:`DEFAULT_BETA` of the metric.
        distance_multiplier: CZII match threshold as a fraction of the radius (inclusive).
        matching: CZII tp rule, ``kaggle`` or ``one-to-one``.
        distance_angstrom: BYU match threshold in Å (inclusive).
    """

    radii: dict[str, float] | None = None
    weights: dict[str, float] | None = None
    beta: float | None = None
    distance_multiplier: float = DEFAULT_DISTANCE_MULTIPLIER
    matching: str = DEFAULT_MATCHING
    distance_angstrom: float = DEFAULT_DISTANCE_ANGSTROM
    _checked: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "radii", _table("radii", self.radii))
        object.__setattr__(self, "weights", _table("weights", self.weights))
        if self.beta is not None:
            object.__setattr__(self, "beta", _finite("beta", self.beta, positive=True))
        object.__setattr__(self, "distance_multiplier",
                           _finite("distance multiplier", self.distance_multiplier))
        object.__setattr__(self, "distance_angstrom",
                           _finite("distance (Å)", self.distance_angstrom))
        if self.matching not in MATCHINGS:
            raise ConfigError(f"unknown matching {self.matching!r}; use "
                              f"{' or '.join(map(repr, MATCHINGS))}")

    @classmethod
    def from_particles(cls, particles: Iterable[ParticleType], **kwargs: Any) -> MetricParams:
        """Radii and weights of a project's or split's particle classes."""
        ps = list(particles)
        return cls(radii={p.name: float(p.radius) for p in ps},
                   weights={p.name: float(p.weight) for p in ps}, **kwargs)

    @classmethod
    def from_record(cls, params: Mapping[str, Any]) -> MetricParams:
        """The parameters a run record (its ``params`` block) was scored with (an empty radii
        or weights table means the default)."""
        known = {"radii", "weights", "beta", "distance_multiplier", "matching",
                 "distance_angstrom"}
        return cls(**{k: v for k, v in params.items()
                      if k in known and v is not None and v != {}})

    def replace(self, **changes: Any) -> MetricParams:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def beta_for(self, metric: str) -> float:
        """``beta``, or the metric's default."""
        if self.beta is not None:
            return float(self.beta)
        try:
            return DEFAULT_BETA[metric]
        except KeyError:
            raise ConfigError(f"metric {metric!r} has no F-beta") from None

    def to_dict(self, metric: str) -> dict[str, Any]:
        """The fields that apply to ``metric`` as JSON-ready data (a record's ``params``)."""
        if metric == "czii":
            return {"radii": self.radii, "weights": self.weights, "beta": self.beta_for(metric),
                    "distance_multiplier": self.distance_multiplier, "matching": self.matching}
        if metric == "byu":
            return {"beta": self.beta_for(metric), "distance_angstrom": self.distance_angstrom}
        return {}
