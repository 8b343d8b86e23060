"""Benchmark the phantom generators (target: one czii-v2 tomogram <= 30 s and <= 3 GB on 2 cores).

Usage::

    python benchmarks/bench_phantom.py [--preset czii-v2] [--repeats 3] [--workers 2]
        [--no-stages] [--no-projectors]

For each preset (default: tiny, byu, czii, tiny-v2, byu-v2, czii-v2) one fresh subprocess per
preset generates ``--repeats`` tomograms (seeds 0, 1, ...) and prints the wall time, the process
CPU time, the peak of memory allocated during one call (tracemalloc, which numpy reports to) and
the subprocess's peak RSS; it also generates seed 0 twice and says whether the two are
bit-identical. ``czii`` is today's first-generation generator, printed beside its successor.

``--stages`` (on by default) splits one czii-v2 tomogram into the scene, the projection, the
back-projection and the rest (per-tilt imaging, the denoising filter, normalisation).
``--projectors`` (on by default) compares ways of projecting and back-projecting the 41-tilt
series of a 184 x 630 x 630 volume: the sparse system matrix used here (1 and 2 threads), and
scikit-image's ``radon``/``iradon`` per xz slice (timed on a few slices, scaled to 630).

Run on an idle machine: on a shared one the wall times are inflated by other processes, the CPU
time much less so. The figures are printed with the load average at the start.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import resource
import statistics
import time
import tracemalloc

import numpy as np

DEFAULT = ["tiny", "byu", "czii", "tiny-v2", "byu-v2", "czii-v2"]


def _digest(ph) -> str:
    h = hashlib.sha256()
    for name in sorted(ph.tomograms or {"denoised": ph.volume}):
        h.update(np.ascontiguousarray((ph.tomograms or {"denoised": ph.volume})[name]).tobytes())
    h.update(ph.picks.to_csv(index=False).encode())
    return h.hexdigest()


def _bench_preset(name: str, repeats: int, workers: int, queue) -> None:
    from cryobench.data.phantom import PRESETS, generate_tomogram

    spec = PRESETS[name]
    kwargs = {"has_motor": True} if spec.task == "motor" else {}
    generate_tomogram(PRESETS["tiny"], 0)  # warm up imports
    walls, cpus = [], []
    for seed in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        generate_tomogram(spec, seed, workers=workers, **kwargs)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    tracemalloc.start()
    first = generate_tomogram(spec, 0, workers=workers, **kwargs)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    same = _digest(first) == _digest(generate_tomogram(spec, 0, workers=workers, **kwargs))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    queue.put((name, "x".join(map(str, spec.shape)), statistics.median(walls), min(walls),
               statistics.median(cpus), peak / 2**30, rss, same))


def _timed(fn, *args, **kwargs):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0, time.process_time() - c0


def _stages(workers: int) -> None:
    from cryobench.data.phantom import PRESETS, generate_tomogram
    from cryobench.data.phantom.crowd import build_crowded_scene
    from cryobench.data.phantom.tilt import (
        _projector_cached,
        back_project,
        project,
        projector,
        tilt_angles,
    )

    spec = PRESETS["czii-v2"]
    angles = tilt_angles(spec.tilt.max_tilt_deg, spec.tilt.step_deg)
    _projector_cached.cache_clear()
    _, wall, cpu = _timed(projector, spec.shape[0], spec.shape[2], angles)
    print(f"  projector matrix (built once per shape, cached): {wall:5.2f} s wall, "
          f"{cpu:5.2f} s cpu")
    (density, _, _), wall, cpu = _timed(build_crowded_scene, spec, spec.voxel_spacing,
                                        np.random.default_rng(0))
    print(f"  scene (bodies painted)                         : {wall:5.2f} s wall, "
          f"{cpu:5.2f} s cpu")
    images, wall, cpu = _timed(project, density, angles, workers=workers)
    print(f"  projection, {len(angles)} tilts                          : {wall:5.2f} s wall, "
          f"{cpu:5.2f} s cpu")
    _, wall, cpu = _timed(back_project, images, spec.shape, angles, workers=workers)
    print(f"  back-projection                                : {wall:5.2f} s wall, "
          f"{cpu:5.2f} s cpu")
    del images, density
    _, wall, cpu = _timed(generate_tomogram, spec, 0, workers=workers)
    print(f"  whole tomogram (denoised + wbp)                : {wall:5.2f} s wall, "
          f"{cpu:5.2f} s cpu")


def _projectors(workers: int, n_slices: int = 6) -> None:
    from cryobench.data.phantom.tilt import back_project, project, tilt_angles

    nz, ny, nx = 184, 630, 630
    angles = tilt_angles(60.0, 3.0)
    rng = np.random.default_rng(0)
    vol = rng.standard_normal((nz, ny, nx), dtype=np.float32)
    for w in sorted({1, workers}):
        images, w1, c1 = _timed(project, vol, angles, workers=w)
        _, w2, c2 = _timed(back_project, images, vol.shape, angles, workers=w)
        print(f"  scipy.sparse system matrix, {w} thread(s)      : project {w1:5.2f} s, "
              f"back-project {w2:5.2f} s wall ({c1 + c2:5.2f} s cpu)")
    del vol
    try:
        from skimage.transform import iradon, radon
    except ImportError:
        print("  scikit-image not installed: radon/iradon not measured")
        return
    sl = rng.standard_normal((nx, nx)).astype(np.float64)  # radon wants a square image
    sl[: (nx - nz) // 2] = 0.0
    sl[(nx - nz) // 2 + nz:] = 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n_slices):
        sino = radon(sl, theta=angles, circle=False)
    w1 = (time.perf_counter() - t0) / n_slices * ny
    c1 = (time.process_time() - c0) / n_slices * ny
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n_slices):
        iradon(sino, theta=angles, output_size=nx, circle=False, filter_name="ramp")
    w2 = (time.perf_counter() - t0) / n_slices * ny
    c2 = (time.process_time() - c0) / n_slices * ny
    print(f"  skimage radon + iradon per xz slice (x{ny})    : project {w1:6.1f} s, "
          f"back-project {w2:6.1f} s wall ({c1 + c2:6.1f} s cpu), one thread, scaled from "
          f"{n_slices} slices")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", action="append")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-stages", dest="stages", action="store_false")
    ap.add_argument("--no-projectors", dest="projectors", action="store_false")
    args = ap.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{os.cpu_count()} cpus; workers {args.workers}")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    for name in args.preset or DEFAULT:
        proc = ctx.Process(target=_bench_preset, args=(name, args.repeats, args.workers, queue))
        proc.start()
        name, shape, med, lo, cpu, peak, rss, same = queue.get()
        proc.join()
        print(f"{name:8s} {shape:>12s}  wall median {med:6.2f} s (min {lo:.2f})  cpu median "
              f"{cpu:6.2f} s  peak alloc {peak:5.2f} GiB  peak RSS {rss:5.2f} GiB  "
              f"bit-identical {'yes' if same else 'NO'}")
    if args.stages:
        print("czii-v2 stages (seed 0):")
        _stages(args.workers)
    if args.projectors:
        print("projectors (41 tilts, 184 x 630 x 630):")
        _projectors(args.workers)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
