"""Resuming an interrupted run: the fitted method and each test run's picks, kept as they come.

A run that is killed (a session ending, Ctrl-C) leaves no record. What it had finished is kept in
``<run dir>/resume/``: after ``fit``, the method's saved state with the fit's time and its
validation figures; after each test run's ``predict`` (for methods whose predictions depend on
nothing but the fitted state and that run, :attr:`PickingMethod.resumable_predictions`), that
run's picks. Running the same command again reuses both when the stamp matches (method, config
hash, seed, budget, device, precision, dataset fingerprint and CPU kernel settings), so the record
and ``predictions.csv`` are byte for byte what an uninterrupted run writes (checked for every
built-in method in the conformance tests). Anything that does not match is discarded; the folder
goes once the record is written. Nothing in it is unpickled: picks are CSV, the state is what
:meth:`PickingMethod.save` writes, and the stamp is JSON.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from cryobench.io.atomic import atomic_dir, atomic_write_text
from cryobench.runner.store import RESUME_DIR
from cryobench.runner.store import _safe as _safe_name

__all__ = ["RESUME_DIR", "Checkpoint"]

_STAMP = "stamp.json"
# pandas 3 parses floats exactly by default (and deprecates the switch); older pandas need it
_ROUND_TRIP = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
_MODEL = "model"
_PICKS = "picks"


class Checkpoint:
    """The resume folder of one run directory, for one stamp (see the module docstring)."""

    def __init__(self, run_dir: Path, stamp: dict[str, Any]) -> None:
        self.root = Path(run_dir) / RESUME_DIR
        self.stamp = json.loads(json.dumps(stamp, sort_keys=True, default=str))
        self.reused_runs = 0
        self.reused_seconds = 0.0

    # ----- the stamp and the fitted state ------------------------------------------------------
    def load_fit(self) -> dict[str, Any] | None:
        """What the fit left (``fit_s``, ``extra_metrics``) when a matching fit is kept; a stale
        or unreadable folder is removed and None returned."""
        f = self.root / _STAMP
        if not f.is_file():
            self.discard()
            return None
        try:
            saved = json.loads(f.read_text())
            ok = isinstance(saved, dict) and saved.get("stamp") == self.stamp and (
                self.root / _MODEL).is_dir()
        except (OSError, ValueError):
            ok = False
        if not ok:
            self.discard()
            return None
        return {"fit_s": float(saved.get("fit_s", 0.0)),
                "extra_metrics": dict(saved.get("extra_metrics") or {})}

    @property
    def model_dir(self) -> Path:
        return self.root / _MODEL

    def save_fit(self, method: Any, fit_s: float) -> None:
        """Keep the fitted ``method`` (its :meth:`save`) and the stamp, atomically."""
        self.discard()
        self.root.mkdir(parents=True, exist_ok=True)
        with atomic_dir(self.model_dir) as tmp:
            method.save(tmp)
        extra = {str(k): v for k, v in dict(method.extra_metrics or {}).items()}
        atomic_write_text(self.root / _STAMP, json.dumps(
            {"stamp": self.stamp, "fit_s": fit_s, "extra_metrics": extra}, sort_keys=True,
            default=float))

    # ----- per-run picks -----------------------------------------------------------------------
    def _picks_path(self, run: str) -> Path:
        return self.root / _PICKS / f"{_safe_name(run)}.csv"

    def load_picks(self, run: str) -> tuple[pd.DataFrame, float] | None:
        """A test run's kept picks and the seconds its prediction took, or None."""
        p = self._picks_path(run)
        meta = p.with_suffix(".json")
        if not (p.is_file() and meta.is_file()):
            return None
        try:
            info = json.loads(meta.read_text())
            if info.get("run") != run:
                return None
            df = pd.read_csv(p, keep_default_na=False, **_ROUND_TRIP,
                             dtype={"experiment": str, "particle_type": str})
        except (OSError, ValueError):
            return None
        return df, float(info.get("seconds", 0.0))

    def save_picks(self, run: str, picks: pd.DataFrame, seconds: float) -> None:
        """Keep one test run's checked picks (float64 written losslessly)."""
        p = self._picks_path(run)
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(p, picks.to_csv(index=False))
        atomic_write_text(p.with_suffix(".json"), json.dumps({"run": run, "seconds": seconds}))

    def discard(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
