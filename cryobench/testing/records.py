"""Fabricated run records with realistic counts, for tests, benchmarks and docs examples.

The records are :class:`~cryobench.runner.record.RunRecord` objects of the current schema.
Scores are computed from the fabricated counts with the metrics' own counting core, so a record
is self-consistent. Nothing here is ever shown as a real result: every fabricated record has
``device = "synthetic"``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cryobench.metrics.counts import summarise_counts
from cryobench.particles import BYU_MOTOR, CZII_PARTICLES
from cryobench.runner.record import CountRow, RunRecord, config_hash

__all__ = ["fake_record", "write_fake_results", "record_path", "synthetic_cell"]


def record_path(results: str | os.PathLike[str], record: RunRecord) -> Path:
    """``<results>/<split>/<method>/<config_hash[:12]>/seed-<N>/record.json`` (the store layout)."""
    from cryobench.runner.store import RECORD_NAME, run_dir

    return run_dir(results, record.split, record.method, record.config_hash,
                   record.seed) / RECORD_NAME


def fake_record(method: str = "unet3d", split: str = "czii-synth", seed: int = 0,
                skill: float = 0.7, config: dict[str, Any] | None = None,
                experiments: Sequence[str] = ("TS_1", "TS_2", "TS_3", "TS_4", "TS_5"),
                metric: str = "czii", finished_at: str = "2026-11-20T12:00:00Z",
                rng_salt: int = 0) -> RunRecord:
    """A record whose counts come from a method that finds ``skill`` of the particles.

    ``skill`` in [0, 1] sets recall and (more loosely) precision; the same arguments always give
    the same record.
    """
    config = dict(config or {"lr": 1e-3, "epochs": 10})
    chash = config_hash(config)
    rng = np.random.default_rng([seed, rng_salt, int(chash[:8], 16)])
    if metric == "byu":
        classes, weights, beta = [BYU_MOTOR.name], {BYU_MOTOR.name: 1.0}, 2.0
    else:
        classes = [p.name for p in CZII_PARTICLES]
        weights, beta = {p.name: p.weight for p in CZII_PARTICLES}, 4.0
    counts = []
    for exp in experiments:
        for k, cls in enumerate(classes):
            n_ref = int(rng.integers(0, 2)) if metric == "byu" else int(rng.integers(5, 40))
            hard = 0.15 * (k % 3)
            p_hit = float(np.clip(skill - hard + rng.normal(0, 0.05), 0.0, 1.0))
            tp = int(rng.binomial(n_ref, p_hit))
            fp = int(rng.poisson(max(0.2, (1.2 - skill) * (3 if metric != "byu" else 0.3))))
            counts.append({"experiment": exp, "particle_type": cls, "tp": tp, "fp": fp,
                           "fn": n_ref - tp})
    score, per_class = summarise_counts(counts, weights, beta, classes=classes)
    fit_s = float(60 + 30 * rng.random())
    predict_s = float(5 + 3 * rng.random())
    return RunRecord(
        method=method, split=split, task="motor" if metric == "byu" else "particles",
        seed=int(seed), budget="cpu", device="synthetic", precision="fp32", config=config,
        config_hash=chash, dataset_fingerprint="f" * 64,
        environment={"python": "3.11", "platform": "synthetic", "torch": None, "cuda": None,
                     "device_name": "synthetic", "cpu_count": 2},
        timings={"fit_s": fit_s, "predict_s": predict_s, "score_s": 0.1,
                 "total_s": fit_s + predict_s + 0.1},
        peak_memory_mb=float(800 + 400 * rng.random()),
        started_at=finished_at, finished_at=finished_at, metric=metric, score=score,
        metrics={metric: {"score": score, "per_class": per_class,
                          "params": {"beta": beta, "weights": weights}}},
        counts=[CountRow(**c) for c in counts],
        params={"beta": beta, "distance_multiplier": 0.5, "matching": "kaggle",
                "radii": {}, "weights": weights},
        n_test_runs=len(experiments), n_predictions=0, cryobench_version="0.1.0",
        git_sha="0" * 40)


def write_fake_results(results: str | os.PathLike[str],
                       methods: Sequence[tuple[str, float]] = (("unet3d", 0.75),
                                                               ("deepfindet", 0.6),
                                                               ("faster_rcnn", 0.45)),
                       seeds: Sequence[int] = (0, 1, 2), split: str = "czii-synth",
                       metric: str = "czii", **kwargs: Any) -> list[Path]:
    """Write fabricated records for each (method, skill) and seed; returns the record paths."""
    paths = []
    for method, skill in methods:
        for seed in seeds:
            rec = fake_record(method, split, seed, skill, metric=metric, **kwargs)
            paths.append(rec.save(record_path(results, rec)))
    return paths


def synthetic_cell(cell: Any) -> Any:
    """A stand-in for :func:`cryobench.runner.executors.run_cell` that trains nothing.

    It returns a fabricated, self-consistent record for the cell (method config and hash as
    the runner would compute them; counts and timings derived from the cell only), so sweeps,
    executors and resumption can be exercised in seconds. Marked ``device = "synthetic"``.
    """
    from cryobench.runner import record as _record
    from cryobench.runner import store
    from cryobench.runner.ablate import cell_config, split_name
    from cryobench.runner.executors import CellResult

    name, config, chash = cell_config(cell.method, cell.budget, cell.overrides_dict)
    split = split_name(cell.split)
    skill = 0.4 + 0.4 * int(chash[:4], 16) / 0xFFFF
    rec = fake_record(name, split, cell.seed, skill, config=config)
    rec.budget = cell.budget
    rel = store.run_dir("", split, name, chash, cell.seed).as_posix()
    files = {"config.json": _record.dumps(config).encode(),
             "record.json": _record.dumps(rec.to_dict()).encode()}
    return CellResult(cell, rel, files)
