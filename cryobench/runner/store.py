"""The results store: a directory laid out by split / method / config hash / seed.

::

    RESULTS/
      <split>/<method>/<config hash, 12 hex>/seed-<N>/
        config.json        the method config (written when the run starts)
        predictions.csv    test-run picks (CZII submission format, with score)
        model/             the trained method (method.save)
        work/              the method's scratch space (checkpoints)
        record.json        written last and atomically: its presence means "complete"

A run directory without ``record.json`` is an interrupted run; rerunning replaces it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryobench.errors import ResultsError
from cryobench.runner import record as _record

__all__ = [
    "compress_predictions",
    "read_predictions_bytes",
    "RECORD_NAME",
    "CONFIG_NAME",
    "PREDICTIONS_NAME",
    "run_dir",
    "read_complete",
    "read_config",
    "iter_records",
    "load_records",
]

RECORD_NAME = "record.json"
CONFIG_NAME = "config.json"
PREDICTIONS_NAME = "predictions.csv"
MODEL_DIR = "model"
WORK_DIR = "work"
RESUME_DIR = "resume"
"""What an interrupted run finished (:mod:`cryobench.runner.resume`)."""
_SKIP_DIRS = {MODEL_DIR, WORK_DIR, RESUME_DIR}
RECORD_SUFFIX = ".record.json"


def _safe(part: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.+" else "-" for c in part) or "-"


def run_dir(results_dir: str | os.PathLike[str], split: str, method: str, config_hash: str,
            seed: int) -> Path:
    """The directory of one run: ``RESULTS/<split>/<method>/<hash[:12]>/seed-<seed>``."""
    return (Path(results_dir) / _safe(split) / _safe(method) / config_hash[:12]
            / f"seed-{int(seed)}")


def read_complete(directory: str | os.PathLike[str]) -> _record.RunRecord | None:
    """The record of a complete run in ``directory``, or None when there is none yet.

    A record file that exists but is corrupt raises :class:`ResultsError`.
    """
    path = Path(directory) / RECORD_NAME
    if not path.exists():
        return None
    return _record.RunRecord.load(path)


def read_config(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``config.json`` of a run directory (None when absent or unreadable)."""
    path = Path(directory) / CONFIG_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _record_files(root: Path, errors: list[tuple[Path, str]] | None) -> Iterator[Path]:
    def unreadable(exc: OSError) -> None:
        if errors is not None:
            errors.append((Path(exc.filename or root),
                           f"unreadable directory ({exc.strerror or type(exc).__name__}): "
                           "its records, if any, are not included"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if not name.startswith(".") and (name == RECORD_NAME or name.endswith(RECORD_SUFFIX)):
                yield Path(dirpath) / name


def iter_records(results_dir: str | os.PathLike[str],
                 errors: list[tuple[Path, str]] | None = None
                 ) -> Iterator[tuple[Path, _record.RunRecord]]:
    """Yield ``(path, record)`` for every valid record under ``results_dir`` (sorted by path).

    Record files are those named ``record.json`` (the store's layout) or ``*.record.json``
    (flat collections, e.g. committed leaderboard records); other files, hidden files and the
    ``model/``/``work/`` folders of run directories are not looked at. A record file that is
    corrupt or foreign, and a directory that cannot be read, is never raised nor silently
    dropped: it is appended to ``errors`` as ``(path, message)`` (pass a list to collect them).
    A single file may be given instead of a directory.

    Raises:
        ResultsError: ``results_dir`` does not exist.
    """
    root = Path(results_dir)
    if not root.exists():
        raise ResultsError("results directory not found", root)
    files = [root] if root.is_file() else _record_files(root, errors)
    for path in files:
        try:
            rec = _record.RunRecord.load(path)
        except ResultsError as exc:
            if errors is not None:
                errors.append((path, exc.message))
            continue
        yield path, rec


def load_records(results_dir: str | os.PathLike[str]
                 ) -> tuple[list[tuple[Path, _record.RunRecord]], list[tuple[Path, str]]]:
    """All valid records and the list of bad files: ``(records, errors)``."""
    errors: list[tuple[Path, str]] = []
    records = list(iter_records(results_dir, errors))
    return records, errors


COMPRESSED_SUFFIX = ".gz"


def compress_predictions(directory: str | os.PathLike[str], min_bytes: int = 1 << 20
                         ) -> Path | None:
    """Store a run's ``predictions.csv`` as ``predictions.csv.gz`` when it is larger than
    ``min_bytes`` (official records in git: a 24-tomogram run of a recall-hungry picker writes
    over 10 MB). The gzip stream is deterministic (no name, mtime 0), so the same predictions
    always give the same file; readers take either (:attr:`RunRecord.predictions_path`,
    :func:`read_predictions_bytes`). Returns the compressed file, or None when left as it is."""
    import gzip

    from cryobench.io.atomic import atomic_path

    src = Path(directory) / PREDICTIONS_NAME
    if not src.is_file() or src.stat().st_size <= min_bytes:
        return None
    dest = src.with_name(src.name + COMPRESSED_SUFFIX)
    data = src.read_bytes()
    with atomic_path(dest) as tmp, open(tmp, "wb") as raw, gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    if gzip.decompress(dest.read_bytes()) != data:  # pragma: no cover - never expected
        dest.unlink()
        raise ResultsError("compressed predictions do not read back", dest)
    src.unlink()
    return dest


def read_predictions_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a predictions CSV, decompressed when stored as ``.csv.gz``."""
    import gzip

    from cryobench.io.picks import _max_csv_bytes

    p = Path(path)
    if not p.name.endswith(COMPRESSED_SUFFIX):
        return p.read_bytes()
    limit = _max_csv_bytes()
    try:
        with gzip.open(p, "rb") as fh:
            data = fh.read(limit + 1)
    except (OSError, EOFError, ValueError) as exc:  # gzip.BadGzipFile is an OSError
        raise ResultsError(f"compressed predictions are unreadable ({exc})", p) from None
    if len(data) > limit:
        raise ResultsError(f"compressed predictions hold more than {limit / 2**20:.0f} MiB", p)
    return data
