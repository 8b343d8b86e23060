"""Whole-tomogram inference time and peak memory of ``unet3d`` (cpu budget) on the CPU.

Target: a 184 x 630 x 630 tomogram in <= 30 s with a peak of <= 4 GB.

The script trains a ``unet3d`` briefly on small in-memory runs (the network's size, not its
quality, sets the time; a briefly trained model gives realistic candidate counts), saves it,
then times ``predict`` on one 184 x 630 x 630 tomogram in a fresh process whose peak resident
memory (ru_maxrss) is the reported figure. MONAI is imported before timing (a one-off ~3 s per
process). Wall and process CPU time are both printed: on a shared machine the CPU time is the
steadier figure. ``--state DIR`` times a saved method instead
(e.g. one from ``cryobench run``).

    python benchmarks/bench_inference.py [--repeat 2] [--threads 2] [--state DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHAPE = (184, 630, 630)


def worker(state: str, repeat: int, threads: int) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)
    from baselines.unet3d import UNet3D
    from cryobench.methods.base import RunContext
    from cryobench.testing.fakes import make_fake_runs

    method = UNet3D.load(state)
    run = make_fake_runs(1, SHAPE, per_class=30, noise=0.5, seed=123, prefix="bench")[0]
    rss_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ctx = RunContext(work_dir=tempfile.mkdtemp(), budget="cpu", progress=False)
    from cryobench.methods.engine.inference import sliding_window_predict  # noqa: F401 (MONAI)

    times, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        picks = method.predict(run, ctx)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(json.dumps({
        "shape": list(SHAPE), "seconds": times, "cpu_seconds": cpu, "picks": len(picks),
        "precision": method.precision_used,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_rss_before_predict_mb": rss_base, "threads": torch.get_num_threads(),
        "config": {k: getattr(method.config, k) for k in
                   ("bin", "channels", "roi_size", "overlap", "sw_batch_size")},
    }))


def train_state(directory: Path) -> None:
    import torch

    torch.set_num_threads(2)
    from baselines.unet3d import UNet3D
    from cryobench.methods.base import RunContext
    from cryobench.particles import CZII_PARTICLES
    from cryobench.testing.fakes import make_fake_runs

    runs = make_fake_runs(3, (48, 96, 96), particles=CZII_PARTICLES, per_class=2, seed=5)
    method = UNet3D(UNet3D.default_config("cpu", epochs=2, steps_per_epoch=10))
    method.fit(runs[:2], runs[2:], RunContext(work_dir=directory, budget="cpu", progress=False))
    method.save(directory / "method")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--state", help="a saved unet3d method directory to time")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.repeat, args.threads)
        return
    with tempfile.TemporaryDirectory() as tmp:
        state = args.state
        if state is None:
            t0 = time.perf_counter()
            train_state(Path(tmp))
            state = str(Path(tmp) / "method")
            print(f"trained a cpu-budget unet3d briefly in {time.perf_counter() - t0:.1f} s")
        out = subprocess.run([sys.executable, __file__, "--worker", state, "--repeat",
                              str(args.repeat), "--threads", str(args.threads)],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            sys.exit(out.stderr)
        res = json.loads(out.stdout.strip().splitlines()[-1])
    secs = res["seconds"]
    print(f"unet3d predict on {'x'.join(map(str, res['shape']))} (config {res['config']}, "
          f"{res['precision']}, {res['threads']} threads): wall "
          + ", ".join(f"{s:.1f} s" for s in secs) + f" (best {min(secs):.1f} s), process CPU "
          + ", ".join(f"{s:.1f} s" for s in res["cpu_seconds"]) + f"; {res['picks']} picks")
    print(f"peak resident memory of the predicting process: {res['peak_rss_mb']:.0f} MB "
          f"(after making the tomogram, before predict: "
          f"{res['peak_rss_before_predict_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
