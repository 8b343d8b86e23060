"""Fabricated ground truth, predictions and the records they score to (tests, benchmarks).

:func:`fabricate_solution` makes a ground-truth table, :func:`fabricate_picks` a method's picks
against it (found particles placed off-centre, missed ones, false positives, duplicates, all
with scores), and :func:`write_scored_results` writes run records whose counts and scores are
what the metric registry gives for those picks, with ``predictions.csv`` beside each, so the
leaderboard can verify them and draw their curves. :func:`write_solution` writes the solution
CSV and its sidecar (what ``cryobench data solution --fingerprint`` writes). Every record is
marked ``device = "synthetic"``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cryobench.particles import BYU_MOTOR, CZII_PARTICLES

__all__ = ["fabricate_solution", "fabricate_picks", "write_scored_results", "write_solution",
           "FINGERPRINT"]

FINGERPRINT = "f" * 64
"""The dataset fingerprint of fabricated records (as in :mod:`cryobench.testing.records`)."""

_BOX = np.array([6300.0, 6300.0, 1840.0])  # x, y, z extent in Å (a CZII-like tomogram)
_SPACING = 10.0


def fabricate_solution(experiments: Sequence[str], metric: str = "czii", per_class: int = 20,
                       seed: int = 0) -> pd.DataFrame:
    """A ground-truth table: CZII picks (Å) of the six classes, or a BYU solution (about half
    the tomograms with a motor)."""
    rng = np.random.default_rng([seed, 11])
    if metric == "byu":
        rows = []
        for exp in experiments:
            has = bool(rng.random() < 0.6)
            zyx = rng.uniform(20, 160, 3) if has else np.full(3, -1.0)
            rows.append((exp, *zyx, _SPACING, int(has)))
        from cryobench.io.byu import BYU_SOLUTION_COLUMNS

        return pd.DataFrame(rows, columns=list(BYU_SOLUTION_COLUMNS)).astype(
            {"tomo_id": object})
    frames = []
    for exp in experiments:
        for p in CZII_PARTICLES:
            n = int(rng.integers(per_class // 2, per_class + 1))
            xyz = rng.uniform(0, 1, (n, 3)) * _BOX
            frames.append(pd.DataFrame({"experiment": exp, "particle_type": p.name,
                                        "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]}))
    return pd.concat(frames, ignore_index=True).astype({"experiment": object,
                                                        "particle_type": object})


def fabricate_picks(solution: pd.DataFrame, skill: float, seed: int = 0,
                    metric: str = "czii") -> pd.DataFrame:
    """Picks of a method that finds about ``skill`` of the references: found ones off-centre
    by up to 0.6 x radius (so some fall outside the 0.5 x radius threshold), some
    duplicated, plus false positives; found picks score higher than false ones on average."""
    rng = np.random.default_rng([seed, int(skill * 1000), 7])
    if metric == "byu":
        rows = []
        for _, r in solution.iterrows():
            if r["Has motor"] and rng.random() < skill:
                zyx = np.array([r["Motor axis 0"], r["Motor axis 1"], r["Motor axis 2"]])
                zyx = zyx + rng.normal(0, 40 * (1 - skill) + 5, 3)
                score = rng.uniform(0.4, 1.0)
            elif rng.random() < 0.5 * (1.2 - skill):
                zyx, score = rng.uniform(20, 160, 3), rng.uniform(0.0, 0.7)
            else:
                continue
            x, y, z = zyx[::-1] * float(r["Voxel spacing"])
            rows.append((r["tomo_id"], BYU_MOTOR.name, x, y, z, score))
        return pd.DataFrame(rows, columns=["experiment", "particle_type", "x", "y", "z",
                                           "score"]).astype({"experiment": object,
                                                             "particle_type": object})
    radius = {p.name: p.radius for p in CZII_PARTICLES}
    r = solution["particle_type"].map(radius).to_numpy(np.float64)
    found = rng.random(len(solution)) < skill
    hit = solution[found].copy()
    rh = r[found]
    off = rng.normal(size=(len(hit), 3))
    off *= (rng.uniform(0, 0.6, len(hit)) * rh / np.linalg.norm(off, axis=1))[:, None]
    hit[["x", "y", "z"]] = hit[["x", "y", "z"]].to_numpy() + off
    hit["score"] = rng.uniform(0.3, 1.0, len(hit))
    dup = hit.sample(frac=0.05, random_state=int(rng.integers(1 << 30))).copy()
    dup[["x", "y", "z"]] += rng.normal(0, 0.05, (len(dup), 3)) * rh.mean()
    dup["score"] = rng.uniform(0.2, 0.6, len(dup))
    n_fp = int(len(solution) * 0.4 * (1.2 - skill))
    fp = solution.sample(n=n_fp, replace=True, random_state=int(rng.integers(1 << 30))).copy()
    fp[["x", "y", "z"]] = rng.uniform(0, 1, (n_fp, 3)) * _BOX
    fp["score"] = rng.uniform(0.0, 0.7, n_fp)
    out = pd.concat([hit, dup, fp], ignore_index=True)
    return out.sample(frac=1.0, random_state=int(rng.integers(1 << 30))).reset_index(drop=True)


def _runs(solution: pd.DataFrame) -> list:
    from types import SimpleNamespace

    return [SimpleNamespace(name=str(t), voxel_spacing=float(v))
            for t, v in zip(solution["tomo_id"], solution["Voxel spacing"], strict=True)]


def write_scored_results(results: str | os.PathLike[str], solution: pd.DataFrame,
                         methods: Sequence[tuple[str, float]] = (("unet3d", 0.8),),
                         seeds: Sequence[int] = (0, 1, 2), split: str = "czii-synth",
                         metric: str = "czii", fingerprint: str = FINGERPRINT,
                         config: dict | None = None, diagnostics: bool = True,
                         picks_fn=None) -> list[Path]:
    """Records scored from fabricated picks, with ``predictions.csv`` beside each.

    ``picks_fn(solution, skill, seed)`` replaces :func:`fabricate_picks` (a hand-made case);
    ``diagnostics=False`` leaves the diagnostics block out of the records.
    """
    from cryobench.io.picks import write_picks_csv
    from cryobench.metrics.params import MetricParams
    from cryobench.metrics.registry import get_metric
    from cryobench.runner.record import CountRow
    from cryobench.testing.records import fake_record, record_path

    m = get_metric(metric)
    params = (MetricParams.from_particles(CZII_PARTICLES) if metric == "czii"
              else MetricParams())
    exps = list(dict.fromkeys(solution["tomo_id" if metric == "byu" else "experiment"]
                              .astype(str)))
    paths = []
    for method, skill in methods:
        for seed in seeds:
            picks = (picks_fn or (lambda s, k, sd: fabricate_picks(s, k, sd, metric)))(
                solution, skill, seed)
            sub = m.submission_from_picks(picks, _runs(solution) if metric == "byu" else [])
            ev = m.evaluate(sub, solution, params, diagnostics=diagnostics)
            rec = fake_record(method, split, seed, skill, config=config, experiments=exps,
                              metric=metric)
            rec.counts = [CountRow(str(r.experiment), str(r.particle_type), int(r.tp),
                                   int(r.fp), int(r.fn)) for r in ev.counts.itertuples()]
            rec.score = float(ev.score)
            block = ev.to_dict()
            block.pop("diagnostics", None)
            rec.metrics = {metric: block}
            if ev.diagnostics is not None:
                rec.metrics["diagnostics"] = ev.diagnostics.to_dict()
            rec.params = params.to_dict(metric)
            rec.dataset_fingerprint = fingerprint
            rec.n_predictions = len(picks)
            path = record_path(results, rec)
            paths.append(rec.save(path))
            write_picks_csv(picks, path.parent / "predictions.csv")
    return paths


def write_solution(directory: str | os.PathLike[str], split: str, solution: pd.DataFrame,
                   metric: str = "czii", fingerprint: str = FINGERPRINT) -> Path:
    """``DIR/<split>.csv`` and its sidecar, as ``cryobench data solution --fingerprint``."""
    from cryobench.io.atomic import atomic_path
    from cryobench.io.picks import write_picks_csv
    from cryobench.report.verification import write_sidecar

    path = Path(directory) / f"{split.replace('/', '-')}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    if metric == "byu":
        with atomic_path(path, suffix=".csv") as tmp:
            solution.to_csv(tmp, index=False)
    else:
        write_picks_csv(solution, path)
    write_sidecar(path, split=split, part="test", metric=metric, fingerprint=fingerprint)
    return path
