"""Print the per-class calibration table of docs/phantoms.md from run records.

Usage: python benchmarks/calibration_table.py --new RESULTS_DIR
           [--old leaderboards/archive/v1/results] [--seed 0]

For every volumetric baseline: its per-class F4 and weighted score on ``czii-synth`` (first
generation, the official records of ``--old``: seed ``--seed`` and the mean over the seeds
there) and on ``czii-synth-v2`` (the calibration records of ``--new``, a results folder that is
not the leaderboard's); then the motor F2 of ``cnn_regressor`` on ``byu-synth`` and
``byu-synth-v2``. Markdown on stdout.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cryobench.runner.record import RunRecord
from cryobench.runner.store import iter_records

METHODS = ("unet3d", "unet_per_particle", "vnet_per_particle", "deepfindet")
CLASSES = ("apo-ferritin", "beta-amylase", "beta-galactosidase", "ribosome", "thyroglobulin",
           "virus-like-particle")
SHORT = {"apo-ferritin": "apo", "beta-amylase": "b-amy (w 0)", "beta-galactosidase": "b-gal",
         "ribosome": "ribo", "thyroglobulin": "thyro", "virus-like-particle": "VLP"}


def _records(root: Path, split: str, method: str) -> list[RunRecord]:
    """The complete cpu-budget records of ``method`` on ``split`` under ``root``."""
    if not root.exists():
        return []
    return [rec for _, rec in iter_records(root)
            if rec.split == split and rec.method == method and rec.budget == "cpu"]


def _official(recs: list[RunRecord]) -> list[RunRecord]:
    """The records of the configuration with the most seeds (the official one)."""
    by_cfg: dict[str, list[RunRecord]] = {}
    for r in recs:
        by_cfg.setdefault(r.config_hash, []).append(r)
    return max(by_cfg.values(), key=len) if by_cfg else []


def _row(label: str, recs: list[RunRecord]) -> str:
    if not recs:
        return f"| {label} | " + " | ".join(["-"] * (len(CLASSES) + 1)) + " |"
    cells = []
    for c in CLASSES:
        vals = [r.metrics["czii"]["per_class"][c]["fbeta"] for r in recs]
        cells.append(f"{sum(vals) / len(vals):.3f}")
    score = sum(r.score for r in recs) / len(recs)
    return f"| {label} | " + " | ".join(cells) + f" | **{score:.3f}** |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, default=Path("leaderboards/archive/v1/results"))
    ap.add_argument("--new", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    head = " | ".join(SHORT[c] for c in CLASSES)
    print(f"| method, split | {head} | weighted F4 |")
    print("|---|" + "---:|" * (len(CLASSES) + 1))
    for m in METHODS:
        old = _official(_records(args.old, "czii-synth", m))
        print(_row(f"`{m}`, czii-synth, seed {args.seed}",
                   [r for r in old if r.seed == args.seed]))
        seeds = ", ".join(str(r.seed) for r in sorted(old, key=lambda r: r.seed))
        print(_row(f"`{m}`, czii-synth, mean of seeds {seeds}", old))
        new = _records(args.new, "czii-synth-v2", m)
        print(_row(f"`{m}`, **czii-synth-v2**, seed {args.seed}",
                   [r for r in new if r.seed == args.seed]))
    print()
    print(f"| method, split | seeds | F2 per seed | tp / fp / fn (seed {args.seed}) |")
    print("|---|---|---|---|")
    for split, root in (("byu-synth", args.old), ("byu-synth-v2", args.new)):
        recs = _records(root, split, "cnn_regressor")
        recs = _official(recs) if root == args.old else recs
        if not recs:
            print(f"| `cnn_regressor`, {split} | - | - | - |")
            continue
        recs = sorted(recs, key=lambda r: r.seed)
        first = next((r for r in recs if r.seed == args.seed), recs[0])
        c = first.metrics["byu"]["per_class"]["flagellar-motor"]
        counts = f"{c['tp']} / {c['fp']} / {c['fn']}"
        seeds = ", ".join(str(r.seed) for r in recs)
        scores = " / ".join(f"{r.score:.3f}" for r in recs)
        print(f"| `cnn_regressor`, {split} | {seeds} | {scores} | {counts} |")


if __name__ == "__main__":
    main()
