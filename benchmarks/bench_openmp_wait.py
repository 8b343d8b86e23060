"""Training-step time of a unet3d-sized 3D U-Net under OpenMP's wait policies, with and without
other jobs on the cores.

Each cell runs in a fresh subprocess (the OpenMP runtime reads ``OMP_WAIT_POLICY`` once, at
start-up): batch 4 of 48^3 patches, channels 16-32-64, seven classes, AdamW, ``--steps`` steps
after one warm-up step. ``--busy N`` starts N busy-loop processes beside each cell, standing in
for other work on the machine. Prints the median seconds per step and the ratio to passive
waiting::

    python benchmarks/bench_openmp_wait.py --busy 0 1 2
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time

from _unet_step import TRAIN_STEPS

STEP = ("import sys\nthreads, steps = int(sys.argv[1]), int(sys.argv[2])\n" + TRAIN_STEPS
        + 'print(" ".join(f"{t:.4f}" for t in times[1:]))\n')


def _spin(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


def cell(policy: str | None, threads: int, steps: int, busy: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    spinners = [mp.Process(target=_spin, args=(time.time() + 3600,)) for _ in range(busy)]
    for p in spinners:
        p.start()
    try:
        out = subprocess.run([sys.executable, "-c", STEP, str(threads), str(steps)], env=env,
                             capture_output=True, text=True, check=True).stdout
    finally:
        for p in spinners:
            p.terminate()
            p.join()
    return statistics.median(float(t) for t in out.split())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--busy", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"cpus {os.cpu_count()}, load average before: {load}")
    print(f"{'busy':>4} {'threads':>7} {'policy':>14} {'s/step':>8} {'x passive':>9}")
    for busy in args.busy:
        for threads in args.threads:
            passive = cell("PASSIVE", threads, args.steps, busy)
            for policy in (None, "ACTIVE", "PASSIVE"):
                s = passive if policy == "PASSIVE" else cell(policy, threads, args.steps, busy)
                print(f"{busy:>4} {threads:>7} {policy or 'unset (default)':>14} {s:>8.2f} "
                      f"{s / passive:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
