"""What the AVX2 cap on CPU kernels (cryobench/_cpu_isa.py) costs, and whether it changes bytes.

Each setting runs in a fresh subprocess (the libraries read their switches once, at start-up):
``native`` (``CRYOBENCH_CPU_KERNELS=native``: AVX-512 where the CPU has it) and ``avx2`` (the
default cap). Measured, one thread: a unet3d-sized training step (batch 4 of 48^3 patches, a
16-32-64 MONAI U-Net, seven classes, AdamW; median of ``--steps`` after a warm-up), a float32
3D FFT of 128^3 (template matching's kernel) and numpy float64 ``exp`` of 2^24 values (the
phantom generator's), these two the best of repeated calls after a warm-up, and a sha256 of
each output, so the table says which kernels give other bytes::

    python benchmarks/bench_cpu_kernels.py --steps 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from _unet_step import TRAIN_STEPS

from cryobench import _cpu_isa

WORK = ("import hashlib, json, statistics, sys\nimport numpy as np\n"
        "threads, steps = 1, int(sys.argv[1])\n" + TRAIN_STEPS + r"""
out = {"capability": str(torch.backends.cpu.get_cpu_capability())}
digest = lambda a: hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:12]
out["step_s"] = statistics.median(times[1:])
out["step_bytes"] = digest(torch.cat([p.detach().flatten() for p in net.parameters()]).numpy())
v = torch.randn(128, 128, 128, generator=torch.Generator().manual_seed(1))
f = torch.fft.rfftn(v)
runs = []
for _ in range(5):
    t = time.perf_counter()
    f = torch.fft.rfftn(v)
    runs.append(time.perf_counter() - t)
out["fft_s"] = min(runs)
out["fft_bytes"] = digest(torch.view_as_real(f).numpy())
a = np.random.default_rng(0).standard_normal(1 << 24) * 3
e = np.empty_like(a)
runs = []
for _ in range(4):  # the output pages are touched by the first call: keep the best of the rest
    t = time.perf_counter()
    np.exp(a, out=e)
    runs.append(time.perf_counter() - t)
out["exp_s"] = min(runs[1:])
out["exp_bytes"] = digest(e)
print(json.dumps(out))
""")


def measure(setting: str, steps: int) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in (*_cpu_isa.PORTABLE_ENV, _cpu_isa.NUMPY_ENV, _cpu_isa.NATIVE_SWITCH)}
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    if setting == "native":
        env[_cpu_isa.NATIVE_SWITCH] = "native"
    else:
        _cpu_isa.portable_cpu_kernels(env)
        feats = _cpu_isa.numpy_features_above_avx2()
        if feats:  # numpy is loaded here, so the cap above left it to us
            env[_cpu_isa.NUMPY_ENV] = " ".join(feats)
    res = subprocess.run([sys.executable, "-c", WORK, str(steps)], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(res.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args()
    print(f"cpus {os.cpu_count()}, AVX-512 features numpy would use: "
          f"{' '.join(_cpu_isa.numpy_features_above_avx2()) or 'none'}; load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    res = {s: measure(s, args.steps) for s in ("native", "avx2")}
    print(f"{'':<28} {'native':>14} {'avx2 (default)':>14} {'avx2/native':>11} {'same bytes':>10}")
    print(f"{'torch CPU capability':<28} {res['native']['capability']:>14} "
          f"{res['avx2']['capability']:>14}")
    for key, label in (("step", "unet3d-sized training step"), ("fft", "rfftn 128^3 float32"),
                       ("exp", "numpy exp, 2^24 float64")):
        n, c = res["native"][f"{key}_s"], res["avx2"][f"{key}_s"]
        same = res["native"][f"{key}_bytes"] == res["avx2"][f"{key}_bytes"]
        print(f"{label:<28} {n:>13.3f}s {c:>13.3f}s {c / n:>11.2f} {'yes' if same else 'no':>10}")


if __name__ == "__main__":
    main()
