"""``cryobench verify``: rerun a record and check that it reproduces, byte for byte.

A record holds the method, its full config (and hash), the seed, the budget and the dataset
fingerprint. :func:`verify_record` runs the same cell again into a scratch directory and compares
the new ``predictions.csv`` with the recorded one: identical bytes, or the first line that
differs. Records made on a GPU or with ``precision="bf16"`` are not expected to reproduce on
another machine; the result says what it compared.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryobench.errors import ResultsError
from cryobench.runner import store
from cryobench.runner.record import RunRecord

__all__ = ["Verification", "verify_record", "first_difference"]


@dataclass
class Verification:
    """The outcome of :func:`verify_record`."""

    record: Path
    identical: bool
    rerun_score: float
    recorded_score: float
    line: int | None = None
    """1-based line of the first difference in ``predictions.csv`` (None when identical)."""
    recorded_line: str | None = None
    rerun_line: str | None = None
    note: str = ""


def first_difference(a: bytes, b: bytes) -> tuple[int, str, str] | None:
    """``(line, line of a, line of b)`` of the first differing line, or None when equal."""
    if a == b:
        return None
    la, lb = a.decode("utf-8", "replace").splitlines(), b.decode("utf-8", "replace").splitlines()
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else "<end of file>"
        y = lb[i] if i < len(lb) else "<end of file>"
        if x != y:
            return i + 1, x, y
    return len(la) + 1, "<end of file>", "<end of file>"  # pragma: no cover - line endings only


def _locate(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p / store.RECORD_NAME if p.is_dir() else p


def verify_record(path: str | os.PathLike[str], *, data_dir: str | os.PathLike[str] | None = None,
                  device: str | None = None, progress: bool = False) -> Verification:
    """Rerun the record at ``path`` (a run directory or its ``record.json``) and compare.

    Raises:
        ResultsError: no readable record, no recorded predictions, or a rerun whose config hash
            or dataset fingerprint differs from the record's (then nothing comparable was run).
    """
    from cryobench.runner.run import run

    file = _locate(path)
    rec = RunRecord.load(file)
    recorded = rec.predictions_path
    if recorded is None or not recorded.is_file():
        raise ResultsError("the record's predictions.csv is missing: nothing to compare", file)
    from cryobench.runner.store import read_predictions_bytes

    recorded_bytes = read_predictions_bytes(recorded)  # unreadable: fail before the rerun
    with tempfile.TemporaryDirectory(prefix="cryobench-verify-") as tmp:
        result = run(rec.method, rec.split, seed=rec.seed, budget=rec.budget,
                     device=device or ("cpu" if rec.device == "synthetic" else rec.device),
                     config=rec.config, out=tmp, data_dir=data_dir, progress=progress,
                     save_model=False, write_copick=False)
        new = result.record
        if new.config_hash != rec.config_hash:
            raise ResultsError(f"the rerun's config hash {new.config_hash[:12]} differs from the "
                               f"record's {rec.config_hash[:12]} (method defaults changed?)",
                               file)
        if new.dataset_fingerprint != rec.dataset_fingerprint:
            raise ResultsError("the split's data differ from the record's (dataset fingerprint "
                               "changed): regenerate or import the same data first", file)
        diff = first_difference(recorded_bytes, new.predictions_path.read_bytes())
    note = ""
    if rec.device != "cpu" or rec.precision not in (None, "fp32"):
        note = (f"the record was made on {rec.device} in {rec.precision or 'an unknown precision'}"
                "; only CPU float32 runs are expected to reproduce byte for byte")
    elif _effective(rec.environment) != _effective(new.environment):
        note = ("the record's CPU kernel settings "
                f"({_kernels_text(rec.environment.get('cpu_kernels'))}) differ from this "
                f"rerun's ({_kernels_text(new.environment.get('cpu_kernels'))}): AVX-512 and "
                "AVX2 kernels give other bytes (see cryobench/_cpu_isa.py)")
    if diff is not None and not note:
        note = _package_note(rec.environment, new.environment)
    v = Verification(file, diff is None, new.score, rec.score, note=note)
    if diff is not None:
        v.line, v.recorded_line, v.rerun_line = diff
    return v


def _package_note(recorded: dict | None, rerun: dict | None) -> str:
    """What differs between the two runs' package versions and CPU model, as a note ('' if
    nothing recorded differs)."""
    rec_pk = (recorded or {}).get("packages")
    new_pk = (rerun or {}).get("packages") or {}
    if not isinstance(rec_pk, dict):
        return ("the record lists no package versions (made before cryobench recorded them): "
                "another numpy, scipy, opencv or ultralytics release cannot be ruled out")
    changed = [f"{k} {rec_pk.get(k)} -> {new_pk.get(k)}"
               for k in sorted(set(rec_pk) | set(new_pk)) if rec_pk.get(k) != new_pk.get(k)]
    rec_cpu, new_cpu = (recorded or {}).get("cpu_model"), (rerun or {}).get("cpu_model")
    if rec_cpu != new_cpu:
        changed.append(f"CPU {rec_cpu} -> {new_cpu}")
    return ("the rerun differs from the record in: " + ", ".join(changed)) if changed else ""


def _kernels_text(settings: object) -> str:
    if not isinstance(settings, dict):
        return "not recorded"
    set_ = [f"{k}={v}" for k, v in settings.items() if v]
    return ", ".join(set_) or "native"


def _effective(environment: dict | None) -> tuple | None:
    """What decides the kernels' bytes: the switches other than numpy's feature list (which
    names what a given CPU had to switch off) and numpy's level in effect."""
    env = environment or {}
    kernels = env.get("cpu_kernels")
    if not isinstance(kernels, dict):
        return None
    return (tuple(sorted((k, v) for k, v in kernels.items() if k != "NPY_DISABLE_CPU_FEATURES")),
            env.get("numpy_simd"))
