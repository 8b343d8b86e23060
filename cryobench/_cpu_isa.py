"""One instruction set for CPU kernels by default, so records reproduce on any x86-64 CPU.

torch's convolutions (oneDNN), its ATen kernels, MKL (matrix products, FFTs) and numpy's
transcendental functions each pick AVX-512 code at run time where the CPU has it, and that code
rounds differently from the AVX2 code the same wheels run on other CPUs. Measured on an
AVX-512 machine: ``unet3d`` at the smoke budget on ``tiny`` gives other predictions with oneDNN
on AVX-512 than capped at AVX2, and numpy's float64 ``exp``/``log``/``power``/``arctan2`` (which
the phantom generator uses) give other bytes, so a synthetic split's volumes and fingerprint
differed between the machines that made the first records. Capping all four at AVX2 gives the
AVX2 machines' bytes (the pinned phantom volumes of ``tests/test_phantom_pins.py`` match on an
AVX-512 machine under the cap). The thread count does not change predictions (1, 2 and 3
threads measured).

The command line applies the cap before torch or numpy start (:func:`portable_cpu_kernels`);
``CRYOBENCH_CPU_KERNELS=native`` turns it off (faster on some AVX-512 CPUs, other bytes), and
any of the four variables set by the user wins. Records store what was in effect
(:func:`kernel_settings`).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Mapping, MutableMapping

__all__ = ["PORTABLE_ENV", "NATIVE_SWITCH", "numpy_features_above_avx2", "portable_cpu_kernels",
           "kernel_settings", "numpy_simd_level", "effective_kernels"]

NATIVE_SWITCH = "CRYOBENCH_CPU_KERNELS"
"""``native`` here turns the cap off."""

PORTABLE_ENV: dict[str, str] = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",    # torch's convolutions and pooling (oneDNN)
    "ATEN_CPU_CAPABILITY": "avx2",   # torch's own vectorised kernels
    "MKL_CBWR": "AVX2",              # MKL's matrix products and FFTs (conditional bitwise repro)
}
NUMPY_ENV = "NPY_DISABLE_CPU_FEATURES"

_PROBE = (
    "try:\n"
    "    from numpy._core._multiarray_umath import __cpu_features__ as f, __cpu_dispatch__ as d\n"
    "except ImportError:\n"
    "    from numpy.core._multiarray_umath import __cpu_features__ as f, __cpu_dispatch__ as d\n"
    "print(' '.join(n for n in d if f.get(n) and (n == 'X86_V4' or n.startswith('AVX512'))))\n"
)


def cpuinfo_field(name: str, cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """The value of the first ``name`` line of ``/proc/cpuinfo`` (None when there is none).

    Raises:
        OSError: the file cannot be read (not Linux, or no ``/proc``).
    """
    with open(cpuinfo, encoding="ascii", errors="replace") as fh:
        for line in fh:
            if line.startswith(name):
                return line.split(":", 1)[1].strip() if ":" in line else ""
    return None


def _has_avx512(cpuinfo: str = "/proc/cpuinfo") -> bool | None:
    """Whether the CPU reports AVX-512 (None where /proc/cpuinfo cannot be read)."""
    try:
        flags = cpuinfo_field("flags", cpuinfo)
    except OSError:
        return None
    return flags is not None and "avx512f" in flags.split()


def numpy_features_above_avx2() -> list[str]:
    """numpy's dispatched CPU features beyond AVX2 that this CPU has (e.g. ``X86_V4``).

    numpy reads its switch only when it is first imported, so this asks a fresh interpreter;
    on a CPU without AVX-512 it answers ``[]`` without starting one.
    """
    if platform.machine().lower() not in ("x86_64", "amd64") or _has_avx512() is False:
        return []
    try:
        env = {k: v for k, v in os.environ.items() if k != NUMPY_ENV}
        out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                             timeout=60, env=env, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return out.split()


def portable_cpu_kernels(env: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Cap torch, MKL and (when it is not imported yet) numpy at AVX2 in ``env`` (default:
    ``os.environ``), keeping any value the user set; returns what was added.

    Without effect on a library that has already started, and with none where
    ``CRYOBENCH_CPU_KERNELS=native``.
    """
    env = os.environ if env is None else env
    if env.get(NATIVE_SWITCH, "").strip().lower() == "native":
        return {}
    added = {k: v for k, v in PORTABLE_ENV.items() if k not in env}
    if NUMPY_ENV not in env and "numpy" not in sys.modules:
        features = numpy_features_above_avx2()
        if features:
            added[NUMPY_ENV] = " ".join(features)
    env.update(added)
    return added


def kernel_settings(env: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """The instruction-set switches in effect, for a run record (None: not set, native)."""
    env = os.environ if env is None else env
    keys = (*PORTABLE_ENV, NUMPY_ENV, NATIVE_SWITCH)
    return {k: env.get(k) for k in keys}


def numpy_simd_level() -> str:
    """The highest x86-64 level numpy's dispatched kernels use in this process (``X86_V4``,
    ``X86_V3``...; ``other`` off x86): the phantom volumes' bytes follow it."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core._multiarray_umath import __cpu_features__ as feats
    if feats.get("X86_V4") or feats.get("AVX512_SKX"):
        return "X86_V4"
    for level, legacy in (("X86_V3", "AVX2"), ("X86_V2", "SSE42")):
        if feats.get(level) or feats.get(legacy):
            return level
    return "other"


def effective_kernels(env: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """The kernels in effect, independent of which features had to be switched off to get
    them: the same on an AVX2 and an AVX-512 machine under the cap (what a resumed run and
    ``verify`` compare)."""
    env = os.environ if env is None else env
    out: dict[str, str | None] = {k: env.get(k) for k in (*PORTABLE_ENV, NATIVE_SWITCH)}
    out["numpy_simd"] = numpy_simd_level()
    return out
