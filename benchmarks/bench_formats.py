"""Write and read time of each pick format for N random picks (with orientations and scores).

There is no target: the figures say what a conversion costs. Wall and process CPU time are both
printed; on a shared machine the CPU time is the steadier figure. STAR writing is dominated by
starfile quoting every cell in Python; CSV by pandas' float formatting.

    python benchmarks/bench_formats.py [--picks 100000] [--formats relion4,dynamo]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

from cryobench import coords
from cryobench.io.formats import FORMATS, read_picks, write_picks

EXT = {"kaggle": ".csv", "copick-csv": ".csv", "relion4": ".star", "relion5": ".star",
       "pytom": ".star", "dynamo": ".tbl", "tom": ".em"}


def picks(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "experiment": rng.choice([f"TS_{i}" for i in range(7)], n).astype(object),
        "particle_type": np.full(n, "ribosome", dtype=object),
        "x": rng.uniform(0, 6300, n), "y": rng.uniform(0, 6300, n), "z": rng.uniform(0, 1840, n),
        "score": rng.uniform(size=n)})
    return coords.with_rotations(df, Rotation.random(n, random_state=seed).as_matrix())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--picks", type=int, default=100_000)
    ap.add_argument("--formats", default=",".join(FORMATS))
    args = ap.parse_args()
    df = picks(args.picks)
    geometry = {"voxel_spacing": 10.0, "tomogram_shape": (184, 630, 630)}
    print(f"{args.picks} picks, load average {os.getloadavg()[0]:.1f}")
    print(f"{'format':<12}{'write s':>9}{'cpu s':>8}{'read s':>9}{'cpu s':>8}{'MB':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats.split(","):
            path = Path(tmp) / f"picks{EXT[fmt]}"
            t, c = time.perf_counter(), time.process_time()
            write_picks(df, path, fmt, **geometry)
            tw, cw = time.perf_counter() - t, time.process_time() - c
            t, c = time.perf_counter(), time.process_time()
            back = read_picks(path, format=fmt, particle_type="ribosome", **geometry)
            tr, cr = time.perf_counter() - t, time.process_time() - c
            assert len(back) == len(df)
            mb = path.stat().st_size / 1e6
            print(f"{fmt:<12}{tw:>9.2f}{cw:>8.2f}{tr:>9.2f}{cr:>8.2f}{mb:>8.1f}")


if __name__ == "__main__":
    main()
