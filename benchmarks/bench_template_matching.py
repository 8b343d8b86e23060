"""Template-matching speed and memory: one 184 x 630 x 630 tomogram at the ``cpu`` budget.

What is timed is the search of ``template_match`` (cryobench/template_matching/search.py) as the
cpu budget runs it: the tomogram binned by 2 (20 Å working voxels at 10 Å data) and, for the
classes whose radius still spans 3 voxels there, by 4 (40 Å: ribosome, thyroglobulin, VLP),
whitened, and each of the six CZII classes searched with a template of its size over the 30
degree grid reduced by the class's point group (ribosome C1, thyroglobulin C2,
beta-galactosidase and beta-amylase D2, apo-ferritin O, virus-like particle I: what real maps
need; on the synthetic phantoms apo-ferritin and the VLP are spheres and take one rotation
each; the method also keeps a class at the finer binning when its template would lose more than
30 % of its power there, which this script's smooth templates never do). Printed: the
rotations per class, the time of each step, rotations per second, the time per tomogram, the peak
memory (resident set; on CUDA also the peak allocated), and beside them the published
pytom-match-pick anchor: 193 s for one 462 x 478 x 250 tomogram at 12.85 degrees (7 112
rotations) on one GTX 1080 Ti, i.e. 2.0e9 voxel-rotations per second, compared per voxel and
rotation (FFT cost grows a little faster than the voxel count, so the comparison slightly flatters
the larger volume).

Only torch, numpy and scipy are imported (and cryobench.template_matching, which needs nothing
else), and the phantom is made in memory, so the script runs on a bare GPU machine::

    python benchmarks/bench_template_matching.py [--device cpu|cuda|auto] [--threads N]
        [--step 30] [--bin 2] [--max-rotations N] [--shape 184 630 630]

``--method`` instead times ``TemplateMatch.predict`` itself (read, bin, normalise, search, peaks,
cut-offs) on the same in-memory tomogram with the same templates and grids, and reports its peak
memory; it needs the full install (pandas, the data layer).

``--max-rotations N`` searches at most N rotations per class and extrapolates the rest from the
measured per-rotation rate (each class's local moments are measured, not extrapolated; the
printout says when it extrapolated).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryobench.symmetry import point_group  # noqa: E402
from cryobench.template_matching.angles import reduce_by_symmetry, so3_grid  # noqa: E402
from cryobench.template_matching.search import prepare_volume, search  # noqa: E402
from cryobench.template_matching.templates import box_size, sphere_mask  # noqa: E402

CLASSES = (  # name, radius (Å), point group: the CZII catalogue
    ("apo-ferritin", 60.0, "O"),
    ("beta-amylase", 65.0, "D2"),
    ("beta-galactosidase", 90.0, "D2"),
    ("ribosome", 150.0, "C1"),
    ("thyroglobulin", 130.0, "C2"),
    ("virus-like-particle", 135.0, "I"),
)
ANCHOR = {"tool": "pytom-match-pick", "seconds": 193.0, "shape": (462, 478, 250),
          "step_deg": 12.85, "rotations": 7112, "device": "one GTX 1080 Ti"}


def downsample(volume: np.ndarray, factor: int) -> np.ndarray:
    """The method's binning ([1, 2, 1] / 4 then every second voxel, per factor of 2)."""
    out = np.asarray(volume, dtype=np.float32)
    kernel = np.array([0.25, 0.5, 0.25], dtype=np.float32)
    while factor > 1:
        for axis in range(3):
            out = ndimage.correlate1d(out, kernel, axis=axis, mode="nearest")
            out = np.ascontiguousarray(np.take(out, np.arange(0, out.shape[axis], 2), axis=axis))
        factor //= 2
    return out


def phantom(shape: tuple[int, int, int], spacing: float, seed: int = 0) -> np.ndarray:
    """Blurred two-lobe bodies of every class in noise (level 0), float32."""
    rng = np.random.default_rng(seed)
    vol = np.zeros(shape, dtype=np.float32)
    for _, radius, _ in CLASSES:
        r = radius / spacing
        for _ in range(40):
            c = np.array([rng.uniform(r, s - 1 - r) for s in shape])
            d = rng.standard_normal(3)
            d *= 0.5 * r / np.linalg.norm(d)
            for centre, size in ((c + d, 0.6 * r), (c - d, 0.4 * r)):
                lo = np.maximum(np.floor(centre - size).astype(int), 0)
                hi = np.minimum(np.ceil(centre + size).astype(int) + 1, shape)
                zz, yy, xx = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
                inside = ((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2
                          + (xx - centre[2]) ** 2) <= size * size
                vol[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]][inside] += 1.0
    vol = ndimage.gaussian_filter(vol, 1.0)
    vol += 2.0 * rng.standard_normal(shape, dtype=np.float32)
    return vol


def template(radius_vox: float, box: int) -> np.ndarray:
    """A two-lobe template of the class's size (asymmetric, so nothing is skipped)."""
    c = (box - 1) / 2
    g = np.stack(np.meshgrid(*[np.arange(box) - c] * 3, indexing="ij"))
    t = np.exp(-((g[0] - 0.3 * radius_vox) ** 2 + g[1] ** 2 + g[2] ** 2) / (0.3 * radius_vox) ** 2)
    t += 0.6 * np.exp(-((g[0] + 0.4 * radius_vox) ** 2 + (g[1] - 0.2 * radius_vox) ** 2
                        + g[2] ** 2) / (0.2 * radius_vox) ** 2)
    return t.astype(np.float32)


def normalise(volume: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance, clipped to +-5 (as the method's engine does)."""
    v = np.asarray(volume, dtype=np.float32)
    out = (v - float(v.mean())) / (float(v.std()) or 1.0)
    return np.clip(out, -5.0, 5.0).astype(np.float32)


def class_bin(radius: float, spacing: float, args: argparse.Namespace) -> int:
    """The method's choice: the coarsest power-of-two binning from ``--bin`` to ``--max-bin``
    at which the radius spans ``--min-radius-voxels``."""
    b = args.bin
    while 2 * b <= args.max_bin and radius / (spacing * 2 * b) >= args.min_radius_voxels:
        b *= 2
    return b


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def method_predict(level0: np.ndarray, args: argparse.Namespace, device: str,
                   load: tuple[float, ...]) -> None:
    """``TemplateMatch.predict`` on the phantom, templates and grids as in the search mode."""
    import tempfile

    import pandas as pd

    from baselines.template_match import TemplateMatch
    from cryobench.methods.base import RunContext
    from cryobench.particles import CZII_PARTICLES
    from cryobench.testing.fakes import FakeRun

    over = {"bin": args.bin, "max_bin": args.max_bin, "angular_step": args.step,
            "batch_size": args.batch, "grid_slack": args.slack,
            "min_radius_voxels": args.min_radius_voxels}
    method = TemplateMatch(TemplateMatch.default_config("cpu", **over))
    method.class_names = [p.name for p in CZII_PARTICLES]
    method.radii = {p.name: p.radius for p in CZII_PARTICLES}
    method.voxel_spacing = args.spacing
    grid = so3_grid(args.step)
    for name, radius, sym in CLASSES:
        method.class_bin[name] = class_bin(radius, args.spacing, args)
        spacing = args.spacing * method.class_bin[name]
        box = box_size(radius, spacing, 1.25)
        method.templates[name] = template(radius / spacing, box)
        rots = reduce_by_symmetry(grid, point_group(sym), args.slack * args.step)
        method.rotations[name] = rots if not args.max_rotations else rots[: args.max_rotations]
        method.thresholds[name] = 0.2
    run = FakeRun("bench", level0, args.spacing, CZII_PARTICLES,
                  pd.DataFrame(columns=["experiment", "particle_type", "x", "y", "z"]))
    ctx = RunContext(work_dir=tempfile.mkdtemp(), device=device, budget="cpu", progress=False)
    rss_before = rss_mb()
    t0 = time.perf_counter()
    picks = method.predict(run, ctx)
    dt = time.perf_counter() - t0
    n_rot = sum(len(r) for r in method.rotations.values())
    out = {"mode": "TemplateMatch.predict", "device": device, "threads": torch.get_num_threads(),
           "load_average": [round(v, 2) for v in load], "shape_level0": list(level0.shape),
           "rotations_total": n_rot, "seconds": dt, "picks": len(picks),
           "peak_rss_mb": rss_mb(), "peak_rss_before_predict_mb": rss_before,
           "truncated_grids": bool(args.max_rotations)}
    print(f"TemplateMatch.predict on {tuple(level0.shape)}: {dt:.1f} s for {n_rot} rotations"
          f"{' (grids truncated)' if args.max_rotations else ''}; peak resident memory "
          f"{out['peak_rss_mb']:.0f} MB ({rss_before:.0f} MB before predict); load average "
          f"{' '.join(f'{v:.2f}' for v in load)}")
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--step", type=float, default=30.0, help="angular step (degrees)")
    ap.add_argument("--bin", type=int, default=2, help="finest binning of the 10 Å tomogram")
    ap.add_argument("--max-bin", type=int, default=4, help="coarsest binning of a class")
    ap.add_argument("--min-radius-voxels", type=float, default=3.0,
                    help="a class's radius in voxels at its binning, at least")
    ap.add_argument("--slack", type=float, default=0.25, help="symmetry slack (x step)")
    ap.add_argument("--batch", type=int, default=4, help="rotations per FFT batch")
    ap.add_argument("--max-rotations", type=int, default=0,
                    help="search at most this many rotations per class and extrapolate")
    ap.add_argument("--shape", type=int, nargs=3, default=(184, 630, 630))
    ap.add_argument("--spacing", type=float, default=10.0)
    ap.add_argument("--method", action="store_true",
                    help="time TemplateMatch.predict end to end (needs the full install)")
    args = ap.parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" \
        else args.device
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3

    t0 = time.perf_counter()
    level0 = phantom(tuple(args.shape), args.spacing)
    t_phantom = time.perf_counter() - t0
    if args.method:
        method_predict(level0, args, device, load)
        return
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    work = normalise(downsample(level0, args.bin))
    del level0
    bins = {name: class_bin(radius, args.spacing, args) for name, radius, _ in CLASSES}
    volumes = {args.bin: work}
    for b in sorted(set(bins.values())):
        if b not in volumes:
            volumes[b] = normalise(downsample(work, b // args.bin))
    t_bin = time.perf_counter() - t0
    grid = so3_grid(args.step)
    jobs = []
    for name, radius, sym in CLASSES:
        spacing = args.spacing * bins[name]
        box = box_size(radius, spacing, 1.25)
        rots = reduce_by_symmetry(grid, point_group(sym), args.slack * args.step)
        jobs.append((name, sym, bins[name], spacing, box, radius / spacing, rots))

    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t_prep = 0.0
    per_class = []
    padded = {}
    for b in sorted(volumes):
        group = [j for j in jobs if j[2] == b]
        if not group:
            continue
        t0 = time.perf_counter()
        half = max((j[4] - 1) // 2 for j in group)
        prep = prepare_volume(volumes[b], half, whiten=True, device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        t_prep += time.perf_counter() - t0
        padded[b] = list(prep.padded)
        for name, sym, _, spacing, box, r_vox, rots in group:
            use = rots if not args.max_rotations else rots[: args.max_rotations]
            laps: dict[str, float] = {}
            res = search(prep, template(r_vox, box), sphere_mask(box, r_vox), use,
                         spacing=spacing, lowpass_angstrom=2.5 * spacing, max_tilt_deg=60.0,
                         batch_size=args.batch, timings=laps)
            fixed = laps["moments"] + laps["finish"]
            rate = len(use) / laps["rotations"]
            t1 = time.perf_counter()
            ndimage.maximum_filter(res.score, size=2 * max(1, round(0.5 * r_vox)) + 1)
            t_peaks = time.perf_counter() - t1
            per_class.append({"class": name, "symmetry": sym, "bin": b, "box": box,
                              "working_shape": list(volumes[b].shape),
                              "rotations": len(rots), "rotations_searched": len(use),
                              "moments_seconds": fixed, "rotation_seconds": laps["rotations"],
                              "rotations_per_s": rate,
                              "seconds_full_class": fixed + len(rots) / rate,
                              "peak_filter_seconds": t_peaks})
            del res
        del prep

    cpu_s = time.process_time() - cpu0
    wall_s = sum(c["moments_seconds"] + c["rotation_seconds"] + c["peak_filter_seconds"]
                 for c in per_class) + t_bin + t_prep
    total_rot = sum(c["rotations"] for c in per_class)
    search_s = sum(c["seconds_full_class"] for c in per_class)
    rotation_s = sum(c["rotations"] / c["rotations_per_s"] for c in per_class)
    peaks_s = sum(c["peak_filter_seconds"] for c in per_class)
    per_tomo = t_bin + t_prep + search_s + peaks_s
    vox_rot = sum(math.prod(c["working_shape"]) * c["rotations"] for c in per_class)
    ours_vr = vox_rot / search_s  # the moments included, as in a real search
    anchor_vr = math.prod(ANCHOR["shape"]) * ANCHOR["rotations"] / ANCHOR["seconds"]
    out = {
        "device": device if device == "cpu" else torch.cuda.get_device_name(0),
        "threads": torch.get_num_threads(), "load_average": [round(v, 2) for v in load],
        "shape_level0": list(args.shape),
        "shapes_working": {str(b): list(v.shape) for b, v in volumes.items()},
        "padded": {str(b): p for b, p in padded.items()}, "step_deg": args.step,
        "rotations_total": total_rot, "extrapolated": bool(args.max_rotations),
        "seconds": {"phantom (not counted)": t_phantom, "bin + normalise": t_bin,
                    "prepare (whiten, FFTs)": t_prep, "search": search_s,
                    "peak filter": peaks_s, "per tomogram": per_tomo},
        "measured_wall_seconds": wall_s, "measured_process_cpu_seconds": cpu_s,
        "rotations_per_s": total_rot / search_s,
        "rotations_per_s_excluding_moments": total_rot / rotation_s,
        "voxel_rotations_per_s": ours_vr,
        "anchor": {**ANCHOR, "voxel_rotations_per_s": anchor_vr},
        "throughput_vs_anchor": ours_vr / anchor_vr,
        "peak_rss_mb": rss_mb(),
        "per_class": per_class,
    }
    if device == "cuda":
        out["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    out["imported_pandas"] = "pandas" in sys.modules
    print(f"template matching, {out['device']} ({out['threads']} threads), load average "
          f"{' '.join(f'{v:.2f}' for v in load)}")
    shapes = ", ".join(f"bin {b}: {tuple(v.shape)} padded {tuple(padded[b])}"
                       for b, v in volumes.items() if b in padded)
    print(f"tomogram {tuple(args.shape)} at {args.spacing} Å -> {shapes}; {args.step} degree "
          "grid")
    print(f"{'class':20s} {'group':5s} {'bin':>3s} {'box':>4s} {'rot':>5s} {'searched':>8s} "
          f"{'moments s':>9s} {'rot/s':>7s} {'class s':>8s}")
    for c in per_class:
        print(f"{c['class']:20s} {c['symmetry']:5s} {c['bin']:3d} {c['box']:4d} "
              f"{c['rotations']:5d} {c['rotations_searched']:8d} {c['moments_seconds']:9.1f} "
              f"{c['rotations_per_s']:7.2f} {c['seconds_full_class']:8.1f}")
    ext = " (extrapolated)" if args.max_rotations else ""
    print(f"per tomogram{ext}: {per_tomo:.1f} s = bin {t_bin:.1f} + prepare {t_prep:.1f} + "
          f"search {search_s:.1f} + peak filter {peaks_s:.1f}; {total_rot} rotations, "
          f"{total_rot / search_s:.2f} rotations/s ({total_rot / rotation_s:.2f} without the "
          "per-class local moments)")
    print(f"measured part: {wall_s:.1f} s wall, {cpu_s:.1f} s process CPU time "
          f"({cpu_s / max(wall_s, 1e-9):.2f} cores busy on average)")
    print(f"throughput {ours_vr:.3g} voxel-rotations/s; anchor ({ANCHOR['tool']}, "
          f"{ANCHOR['seconds']:.0f} s for {'x'.join(map(str, ANCHOR['shape']))} at "
          f"{ANCHOR['step_deg']} degrees, {ANCHOR['rotations']} rotations, {ANCHOR['device']}) "
          f"{anchor_vr:.3g}: ratio {ours_vr / anchor_vr:.3f}")
    mem = f"peak resident memory {out['peak_rss_mb']:.0f} MB"
    if device == "cuda":
        mem += f", CUDA peak allocated {out['cuda_peak_allocated_mb']:.0f} MB"
    print(mem)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
