"""Cost of the damaged-store checks beside the reads they protect, measured side by side.

Writes one 184 x 630 x 630 float32 tomogram (a CZII-sized run) with a 3-level pyramid, once
with cryobench's (64, 128, 128) chunks and once with 32^3 chunks (2400 chunks at level 0, the
many-small-chunks case), then times, per layout:

* ``check``: the chunk scan a ``RunHandle`` runs when it opens level 0
  (``cryobench.data.project._check_level``);
* ``listing``: the integrity listing of the whole store (``array_listings``), what a cached
  synthetic split compares on every reuse;
* ``read``: reading level 0 in full (``RunHandle.tomogram()``), what a method does next.

and prints the medians and the ratios check/read and listing/read.

    python benchmarks/bench_store_checks.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPE = (184, 630, 630)


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from cryobench.data.integrity import array_listings
    from cryobench.data.project import _check_level, create_project, open_project
    from cryobench.particles import CZII_PARTICLES

    vol = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    print(f"tomogram {SHAPE}, float32, 3 levels; medians of {args.repeat}")
    print(f"{'chunks':>14} {'files':>6} {'check ms':>9} {'listing ms':>11} {'read ms':>8} "
          f"{'check/read':>11} {'listing/read':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for chunks in ((64, 128, 128), (32, 32, 32)):
            root = Path(tmp) / "x".join(map(str, chunks))
            w = create_project(root / "copick.json", root / "overlay", CZII_PARTICLES,
                               defaults={"tomo_type": "denoised"})
            w.add_run("TS_1", vol, 10.0, None, chunks=chunks)
            run = open_project(root / "copick.json").run("TS_1")
            arr = run._array(0)
            check = _median_ms(lambda arr=arr: _check_level(arr, 0, "bench"), args.repeat)
            listing = _median_ms(lambda root=root: array_listings(root), args.repeat)
            read = _median_ms(run.tomogram, args.repeat)
            files = sum(v["files"] for v in array_listings(root).values())
            print(f"{'x'.join(map(str, chunks)):>14} {files:>6} {check:>9.1f} {listing:>11.1f} "
                  f"{read:>8.1f} {check / read:>11.4f} {listing / read:>13.4f}")


if __name__ == "__main__":
    main()
