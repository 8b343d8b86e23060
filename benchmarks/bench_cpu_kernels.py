"""What the AVX2 cap on CPU kernels (cryobench/_cpu_isa.py) costs, and whether it changes bytes.

Each setting runs in a fresh subprocess (the libraries read their switches once, at start-up):
``native`` (``CRYOBENCH_CPU_KERNELS=native``: AVX-512 where the CPU has it) and ``avx2`` (the
default cap). Measured, one thread: a unet3d-sized training step (batch 4 of 48^3 patches, a
16-32-64 MONAI U-Net, seven classes, AdamW; median of ``--steps`` after a warm-up), a float32
3D FFT of 128^3 (template matching's kernel), numpy float64 ``exp`` of 2^24 values (the phantom
generator's), and a sha256 of each output, so the table says which kernels give other bytes::

    python benchmarks/bench_cpu_kernels.py --steps 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from cryobench import _cpu_isa

WORK = r"""
import hashlib, json, statistics, sys, time
import numpy as np
import torch
from monai.networks.nets import UNet
torch.set_num_threads(1)
out = {"capability": str(torch.backends.cpu.get_cpu_capability())}
digest = lambda a: hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:12]
torch.manual_seed(0)
net = UNet(spatial_dims=3, in_channels=1, out_channels=7, channels=(16, 32, 64),
           strides=(2, 2), num_res_units=1)
opt = torch.optim.AdamW(net.parameters(), 1e-3)
x = torch.randn(4, 1, 48, 48, 48)
y = torch.randint(0, 7, (4, 48, 48, 48))
times = []
for _ in range(int(sys.argv[1]) + 1):
    t = time.perf_counter()
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    opt.step()
    times.append(time.perf_counter() - t)
out["step_s"] = statistics.median(times[1:])
out["step_bytes"] = digest(torch.cat([p.detach().flatten() for p in net.parameters()]).numpy())
v = torch.randn(128, 128, 128, generator=torch.Generator().manual_seed(1))
t = time.perf_counter()
for _ in range(5):
    f = torch.fft.rfftn(v)
out["fft_s"] = (time.perf_counter() - t) / 5
out["fft_bytes"] = digest(torch.view_as_real(f).numpy())
a = np.random.default_rng(0).standard_normal(1 << 24) * 3
t = time.perf_counter()
e = np.exp(a)
out["exp_s"] = time.perf_counter() - t
out["exp_bytes"] = digest(e)
print(json.dumps(out))
"""


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
