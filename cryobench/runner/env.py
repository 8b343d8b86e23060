"""Environment capture for run records: versions, device, git sha and peak memory."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from cryobench import __version__

__all__ = ["capture_environment", "git_sha", "package_versions", "peak_memory_mb",
           "peak_gpu_memory_mb", "reset_peak_memory", "NUMERIC_PACKAGES"]

#: The tracked paths whose changes make :func:`git_sha` report ``+dirty`` (the code a run runs).
SOURCE_PATHS = ("cryobench", "baselines", "pyproject.toml")

#: Distributions whose version can change a method's numbers (kernels, augmentation, resampling);
#: records list the installed version of each (None when not installed).
NUMERIC_PACKAGES = ("numpy", "scipy", "pandas", "torchvision", "monai", "scikit-image",
                    "opencv-python", "opencv-python-headless", "ultralytics")


def _torch():
    return sys.modules.get("torch")


def _cuda_device(device: str) -> bool:
    return device.startswith("cuda")


def capture_environment(device: str = "cpu") -> dict[str, Any]:
    """Python, platform, torch and CUDA versions, the device's name and the CPU count.

    torch is not imported here: when a run did not import it, ``torch`` is the installed version
    read from package metadata.
    """
    torch = _torch()
    torch_version: str | None
    if torch is not None:
        torch_version = str(torch.__version__)
    else:
        try:
            from importlib.metadata import version

            torch_version = version("torch")
        except Exception:  # pragma: no cover
            torch_version = None
    cuda = None
    device_name = platform.processor() or platform.machine() or "cpu"
    if torch is not None and _cuda_device(device) and torch.cuda.is_available():
        cuda = torch.version.cuda
        idx = torch.device(device).index
        device_name = torch.cuda.get_device_name(idx if idx is not None else 0)
    # whether the CPU has bfloat16 units: precision="auto" computes in float32 on every CPU, but
    # an explicit precision="bf16" is fast (and gives other numbers) only where it has them
    native_bf16 = None
    if torch is not None:
        from cryobench.methods.engine.training import native_bf16 as _native_bf16

        native_bf16 = _native_bf16()
    return {
        **_kernels(torch),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch_version,
        "cuda": cuda,
        "device_name": device_name,
        "cpu_count": os.cpu_count(),
        "cpu_native_bf16": native_bf16,
        "cpu_model": _cpu_model(),
        "packages": package_versions(),
        "cryobench": __version__,
    }


def package_versions(names: tuple[str, ...] = NUMERIC_PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution in ``names`` (None when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _cpu_model() -> str | None:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    from cryobench._cpu_isa import cpuinfo_field

    with contextlib.suppress(OSError):
        if model := cpuinfo_field("model name"):
            return model
    return platform.processor() or None


def _kernels(torch: Any) -> dict[str, Any]:
    """The CPU instruction set the kernels ran with (see :mod:`cryobench._cpu_isa`)."""
    from cryobench._cpu_isa import kernel_settings, numpy_simd_level

    capability = None
    if torch is not None:
        with contextlib.suppress(Exception):
            capability = str(torch.backends.cpu.get_cpu_capability())
    return {"cpu_kernels": kernel_settings(), "numpy_simd": numpy_simd_level(),
            "torch_cpu_capability": capability}


def git_sha(path: str | os.PathLike[str] | None = None) -> str | None:
    """The git commit of the cryobench source tree, or None.

    ``+dirty`` is added when tracked files of the code (:data:`SOURCE_PATHS`) are modified; the
    records and documents in the tree are not code, and a run that rewrites its own record in
    ``leaderboards/results`` must not mark itself dirty.
    """
    where = Path(path) if path is not None else Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                *SOURCE_PATHS], cwd=where, capture_output=True, text=True,
                               timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}+dirty" if dirty else (sha or None)


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MiB (``getrusage`` ``ru_maxrss``)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return round(rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024, 1)


def reset_peak_memory(device: str) -> None:
    """Reset torch's CUDA peak-memory counter (host peak RSS cannot be reset)."""
    torch = _torch()
    if torch is not None and _cuda_device(device) and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_gpu_memory_mb(device: str) -> float | None:
    """Peak CUDA memory allocated by torch since the last reset, in MiB (None on CPU)."""
    torch = _torch()
    if torch is None or not _cuda_device(device) or not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)
