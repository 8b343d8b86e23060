"""Integrity listings of the zarr arrays in a project directory.

zarr reads a missing chunk as its fill value, so a damaged store (a deleted, truncated or
replaced chunk) reads as zeros without an error. When cryobench writes a project (a synthetic
split's cache, ``data synth``, ``data import-byu``) it records, per zarr array, the number of
files, their total size and a sha256 over the sorted ``(relative path, size)`` pairs; a later
:func:`check_integrity` compares the store with that record. It reads no chunk data (a listing
of ~100 files per tomogram), so it is cheap enough to run every time a cache is reused.

These records are separate from :func:`cryobench.data.splits.data_fingerprint`, whose values
are in committed run records and must not change.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

__all__ = ["array_listings", "check_integrity"]


def _array_dirs(root: Path) -> list[str]:
    out: list[str] = []

    def visit(path: str) -> None:
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
        if any(e.name == ".zarray" for e in entries):
            out.append(path)
            return  # chunks only below an array
        for e in entries:
            if not e.name.startswith(".") and e.is_dir(follow_symlinks=False):
                visit(e.path)

    visit(str(root))
    return out


def _listing(array_dir: str) -> dict[str, Any]:
    entries: list[tuple[str, int]] = []

    def visit(path: str, prefix: str) -> None:
        with os.scandir(path) as it:
            for e in it:
                rel = prefix + e.name
                if e.is_dir(follow_symlinks=False):
                    entries.append((rel + "/", -1))  # a directory where a chunk file belongs
                    visit(e.path, rel + "/")
                else:
                    entries.append((rel, e.stat().st_size))

    visit(array_dir, "")
    entries.sort()
    h = hashlib.sha256()
    for rel, size in entries:
        h.update(f"{rel}\0{size}\n".encode())
    files = [e for e in entries if e[1] >= 0]
    return {"files": len(files), "bytes": sum(s for _, s in files), "sha256": h.hexdigest()}


def array_listings(root: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """``{array path relative to root: {"files", "bytes", "sha256"}}`` for every zarr array
    (a directory holding ``.zarray``) under ``root``."""
    root = Path(root)
    return {Path(d).relative_to(root).as_posix(): _listing(d) for d in _array_dirs(root)}


def check_integrity(root: str | os.PathLike[str], expected: dict[str, dict[str, Any]]
                    ) -> str | None:
    """None when the arrays under ``root`` match ``expected`` (from :func:`array_listings`),
    else a short description of the first difference (which array, what changed)."""
    root = Path(root)
    try:
        have = array_listings(root)
    except OSError as exc:
        return f"cannot list its zarr arrays ({exc})"
    for rel in sorted(set(expected) | set(have)):
        if rel not in have:
            return f"zarr array {rel} is missing"
        if rel not in expected:
            return f"zarr array {rel} was not there when the data was written"
        want, got = expected[rel], have[rel]
        if want.get("sha256") == got["sha256"]:
            continue
        detail = []
        if want.get("files") != got["files"]:
            detail.append(f"{got['files']} files instead of {want.get('files')}")
        if want.get("bytes") != got["bytes"]:
            detail.append(f"{got['bytes']} bytes instead of {want.get('bytes')}")
        return (f"zarr array {rel} differs from its listing at generation"
                f" ({', '.join(detail) or 'chunk names or sizes changed'})")
    return None
