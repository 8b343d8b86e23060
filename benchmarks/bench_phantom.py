"""Benchmark the synthetic phantom generator (speed target: czii <= 5 s on 2 cores, <= 2 GB).

Usage: python benchmarks/bench_phantom.py [--preset czii] [--repeats 3] [--workers 2]

Prints wall time, process CPU time and the peak of memory allocated during one
``generate_tomogram`` call (tracemalloc, which numpy reports to), plus the process's max RSS.
Run on an idle machine: wall times on a shared machine are inflated by other processes, the CPU
time much less so.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import tracemalloc

from cryobench.data.phantom import PRESETS, generate_tomogram


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", action="append", choices=sorted(PRESETS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    presets = args.preset or ["tiny", "byu", "czii"]
    generate_tomogram(PRESETS["tiny"], 0)  # warm up imports and FFT plans
    for name in presets:
        walls, cpus = [], []
        for seed in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            generate_tomogram(PRESETS[name], seed, workers=args.workers)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        tracemalloc.start()
        generate_tomogram(PRESETS[name], 0, workers=args.workers)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        shape = "x".join(map(str, PRESETS[name].shape))
        print(
            f"{name:5s} {shape:>12s}  wall median {statistics.median(walls):6.2f} s "
            f"(min {min(walls):.2f})  cpu median {statistics.median(cpus):6.2f} s  "
            f"peak alloc {peak / 2**30:5.2f} GiB"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"process max RSS {rss:.2f} GiB")


if __name__ == "__main__":
    main()
