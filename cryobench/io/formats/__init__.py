"""Pick files of the tools the field uses, read and written through their own libraries.

====================  ===========  ==============================================================
format                extensions   coordinates
====================  ===========  ==============================================================
``kaggle``            .csv         Å (the CZII submission: ``experiment, particle_type, x, y, z``)
``copick-csv``        .csv         Å, 4x4 transforms (copick's CSV)
``relion4``           .star        pixels from 0 per ``rlnTomoName`` (starfile)
``relion5``           .star        Å from the tomogram centre (starfile)
``pytom``             .star        pixels from 0, ``rlnLCCmax`` score (pytom-match-pick; starfile)
``dynamo``            .tbl         pixels from 1, ``tomo`` numbers (dynamotable)
``tom``               .em          pixels from 1, TOM/AV3 motive list (emfile)
====================  ===========  ==============================================================

:func:`read_picks` returns the project's picks table (``experiment, particle_type, x, y, z`` in
Å, ``score`` when the file has one, :data:`cryobench.coords.ROTATION_COLUMNS` when it has
orientations); :func:`write_picks` writes one. What a format does not store comes from the
keyword arguments (``voxel_spacing``, ``tomogram_shape``, ``particle_type``, ``experiment``,
``tomo_map``) or from a copick ``project``; when neither supplies it the call raises
:class:`cryobench.errors.InputError` naming the file and the option. docs/data.md ("Pick
formats") gives each format's columns and conventions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryobench.errors import InputError
from cryobench.io.formats._base import Context, read_tomo_map

__all__ = ["PickFormat", "FORMATS", "list_formats", "detect_format", "foreign_format",
           "read_picks", "write_picks", "parse_shape", "read_tomo_map"]


@dataclass(frozen=True)
class PickFormat:
    """One pick-file format: its name, what it is, its extensions, reader and writer."""

    name: str
    description: str
    extensions: tuple[str, ...]
    read: Callable[[Path, Context], pd.DataFrame]
    write: Callable[[pd.DataFrame, Path, Context], list[Path]]


def _lazy(module: str, attr: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(f"cryobench.io.formats.{module}"), attr)(
            *args, **kwargs)

    call.__name__ = attr
    return call


FORMATS: dict[str, PickFormat] = {f.name: f for f in (
    PickFormat("kaggle", "Kaggle CZII submission CSV (Å)", (".csv",),
               _lazy("csv_formats", "read_kaggle"), _lazy("csv_formats", "write_kaggle")),
    PickFormat("copick-csv", "copick CSV (Å, 4x4 transforms)", (".csv",),
               _lazy("csv_formats", "read_copick_csv"), _lazy("csv_formats", "write_copick_csv")),
    PickFormat("relion4", "RELION 4 STAR (pixel coordinates)", (".star",),
               _lazy("star", "read_star"), _lazy("star", "write_relion4")),
    PickFormat("relion5", "RELION 5 STAR (Å from the tomogram centre)", (".star",),
               _lazy("star", "read_star"), _lazy("star", "write_relion5")),
    PickFormat("pytom", "pytom-match-pick STAR (pixels, rlnLCCmax score)", (".star",),
               _lazy("star", "read_star"), _lazy("star", "write_pytom")),
    PickFormat("dynamo", "Dynamo table (pixels from 1)", (".tbl",),
               _lazy("dynamo", "read_dynamo"), _lazy("dynamo", "write_dynamo")),
    PickFormat("tom", "TOM/AV3 motive list (EM file, pixels from 1)", (".em",),
               _lazy("tom", "read_tom"), _lazy("tom", "write_tom")),
)}
"""The registry, by name."""


def list_formats() -> list[str]:
    """Format names, in registry order."""
    return list(FORMATS)


def _unknown_format(name: str) -> InputError:
    return InputError(f"unknown pick format {name!r}; known: {', '.join(FORMATS)}")


def _csv_header(path: Path) -> pd.Index | None:
    """A CSV file's column names, or None when pandas cannot read its header."""
    try:
        return pd.read_csv(path, nrows=0).columns
    except Exception:
        return None


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format of an existing file, from its extension and (CSV, STAR) its columns."""
    from cryobench.io.byu import is_byu_table

    p = Path(path)
    ext = p.suffix.lower()
    if ext == ".csv":
        from cryobench.io.formats.csv_formats import csv_flavour
        from cryobench.io.picks import read_csv_table

        header = _csv_header(p)
        if header is None:
            read_csv_table(p)  # raises the precise error (not found, empty, malformed)
            raise InputError("malformed CSV", p)
        flavour = csv_flavour(header)
        if flavour is None:
            if is_byu_table(header):
                raise InputError("a BYU motor table, not picks (score it with cryobench "
                                 "score)", p)
            raise InputError("unknown CSV columns: expected experiment, particle_type, x, y, "
                             "z (Kaggle CZII) or run_name, x, y, z (copick CSV)", p)
        return flavour
    if ext == ".star":
        from cryobench.io.formats.star import star_flavour

        return star_flavour(p)
    for fmt in FORMATS.values():
        if ext in fmt.extensions:
            return fmt.name
    known = sorted({e for f in FORMATS.values() for e in f.extensions})
    raise InputError(f"unknown pick-file extension {ext or '(none)'!r}; known: "
                     f"{', '.join(known)} (or name the format)", p)


def foreign_format(path: str | os.PathLike[str]) -> str | None:
    """The format of a pick file that is not a Kaggle-style CSV (``.star``, ``.tbl``, ``.em``,
    or a copick CSV), else ``None``; for a scorer deciding whether a file needs
    :func:`read_picks`. CSV files of other kinds (Kaggle, BYU, boxes, unreadable) give ``None``
    rather than an error, so the caller's own CSV handling reports them."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext == ".csv":
        from cryobench.io.formats.csv_formats import csv_flavour

        header = _csv_header(p)
        if header is None:
            return None
        return "copick-csv" if csv_flavour(header) == "copick-csv" else None
    if ext in (".star", ".tbl", ".em"):
        return detect_format(p)
    return None


def format_for_output(path: str | os.PathLike[str], fmt: str | None) -> str:
    """The format to write: ``fmt``, else from the extension (``.csv`` means Kaggle,
    ``.star`` RELION 4)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise _unknown_format(fmt)
        return fmt
    ext = Path(path).suffix.lower()
    by_ext = {".csv": "kaggle", ".star": "relion4", ".tbl": "dynamo", ".em": "tom"}
    if ext not in by_ext:
        raise InputError(f"cannot tell the format from the extension {ext or '(none)'!r}: "
                         f"name it ({', '.join(FORMATS)})", path)
    return by_ext[ext]


def parse_shape(value: str | Sequence[int] | None) -> tuple[int, int, int] | None:
    """``"Z,Y,X"`` (or three integers) -> ``(z, y, x)``; positive whole numbers only."""
    if value is None:
        return None
    parts = value.replace("x", ",").split(",") if isinstance(value, str) else list(value)
    try:
        nums = [float(p) for p in parts]
    except (TypeError, ValueError):
        raise InputError(f"tomogram shape must be Z,Y,X (three whole numbers), got "
                         f"{value!r}") from None
    if len(nums) != 3 or not all(np.isfinite(v) and v > 0 and v == int(v) for v in nums):
        raise InputError(f"tomogram shape must be Z,Y,X (three positive whole numbers), got "
                         f"{value!r}")
    return tuple(int(v) for v in nums)  # type: ignore[return-value]


def _context(path: Path, voxel_spacing: float | None, tomogram_shape: Any, project: Any,
             particle_type: str | None, experiment: str | None,
             tomo_map: Mapping[int, str] | str | os.PathLike[str] | None) -> Context:
    if voxel_spacing is not None:
        try:
            vs = float(voxel_spacing)
        except (TypeError, ValueError):
            raise InputError(f"voxel spacing must be a number, got {voxel_spacing!r}") from None
        if not (np.isfinite(vs) and vs > 0):
            raise InputError(f"voxel spacing must be a positive number of Å, got {voxel_spacing}")
        voxel_spacing = vs
    if project is not None and not all(hasattr(project, a) for a in ("particles", "run",
                                                                     "config_path")):
        # io sits below data: the caller opens the project (cryobench.data.open_project)
        raise TypeError("project must be an open copick project "
                        "(cryobench.data.open_project(config)), got "
                        f"{type(project).__name__}")
    mapping: dict[int, str] | None
    map_file = None
    if tomo_map is None:
        mapping = None
    elif isinstance(tomo_map, Mapping):
        mapping = {int(k): str(v) for k, v in tomo_map.items()}
    else:
        map_file = Path(tomo_map)
        mapping = read_tomo_map(map_file)
    return Context(path=path, voxel_spacing=voxel_spacing,
                   tomogram_shape=parse_shape(tomogram_shape), project=project,
                   particle_type=particle_type, experiment=experiment, tomo_map=mapping,
                   tomo_map_file=map_file)


def read_picks(path: str | os.PathLike[str], *, format: str | None = None,
               voxel_spacing: float | None = None,
               tomogram_shape: str | Sequence[int] | None = None, project: Any = None,
               particle_type: str | None = None, experiment: str | None = None,
               tomo_map: Mapping[int, str] | str | os.PathLike[str] | None = None
               ) -> pd.DataFrame:
    """Read a pick file of any registered format into a picks table (Å).

    Args:
        path: the file.
        format: a name from :data:`FORMATS`; default: :func:`detect_format`.
        voxel_spacing: Å per pixel of pixel coordinates the file does not size (RELION 4
            without an optics table, Dynamo without ``apix``, TOM), and the voxel size of
            ``tomogram_shape`` (RELION 5). A value that contradicts the file is an error.
        tomogram_shape: ``(z, y, x)`` voxels, for RELION 5 centred coordinates.
        project: an open copick project (:func:`cryobench.data.open_project`): supplies each
            experiment's voxel spacing and tomogram shape, the particle type when it has only
            one, and checks the particle types.
        particle_type: the particle type of a file that has none; of a file that has them,
            the one to keep.
        experiment: the experiment of a file that names none; of a file that names them, the
            one to keep.
        tomo_map: tomogram number -> experiment for Dynamo and TOM (a mapping, or a file of
            ``index name`` lines); default: ``<stem>.doc`` beside the file when it exists.

    Raises:
        InputError: unreadable or malformed file, NaN or infinite values, a missing option
            (the message names it), names with control characters.
    """
    p = Path(path)
    ctx = _context(p, voxel_spacing, tomogram_shape, project, particle_type, experiment,
                   tomo_map)
    name = detect_format(p) if format is None else format
    if name not in FORMATS:
        raise _unknown_format(name)
    return ctx.select_rows(FORMATS[name].read(p, ctx))


def write_picks(df: pd.DataFrame, path: str | os.PathLike[str], format: str | None = None, *,
                voxel_spacing: float | None = None,
                tomogram_shape: str | Sequence[int] | None = None, project: Any = None,
                particle_type: str | None = None, experiment: str | None = None,
                tomo_map: Mapping[int, str] | str | os.PathLike[str] | None = None
                ) -> list[Path]:
    """Write a picks table (Å) in a registered format, atomically; returns the files written.

    ``format`` defaults to the extension's (``.csv`` Kaggle, ``.star`` RELION 4, ``.tbl``
    Dynamo, ``.em`` TOM). Pixel formats need ``voxel_spacing`` or ``project``; RELION 5 also
    ``tomogram_shape`` (or ``project``). ``particle_type`` / ``experiment`` select those rows.
    Dynamo and TOM files hold one particle type; their tomogram numbers come from ``tomo_map``
    (name -> number by inverting it), else 1, 2, ... in sorted order, and are written beside
    the file as ``<stem>.doc`` (unless that file is the ``tomo_map`` itself). Orientations
    (:data:`cryobench.coords.ROTATION_COLUMNS`) are written as the format's angles or
    transform; picks without them get the identity.
    """
    p = Path(path)
    name = format_for_output(p, format)
    ctx = _context(p, voxel_spacing, tomogram_shape, project, particle_type, experiment,
                   tomo_map)
    return FORMATS[name].write(df, p, ctx)
