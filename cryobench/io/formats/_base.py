"""What every pick-format reader and writer shares: the options that supply what a format
lacks, name checks, the tomogram index map, and the picks table they return.

Unit and axis conversions are not here: they live in :mod:`cryobench.coords`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryobench import coords
from cryobench.errors import CryobenchError, InputError
from cryobench.io.atomic import atomic_path
from cryobench.io.picks import PICKS_COLUMNS, validate_picks

__all__ = ["Context", "finish_picks", "prepare_for_write", "check_names", "read_tomo_map",
           "tomo_map_path", "write_tomo_map", "star_safe", "OPTION_HINTS"]

OPTION_HINTS = {
    "voxel_spacing": "--voxel-spacing A",
    "tomogram_shape": "--tomogram-shape Z,Y,X",
    "project": "--copick CONFIG",
    "particle_type": "--particle-type NAME",
    "experiment": "--experiment NAME",
    "tomo_map": "--tomo-map FILE",
}
"""The command-line option that supplies each keyword argument (for error messages)."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_STAR_BAD = re.compile(r"[\s\"']")
_STAR_RESERVED = ("data_", "loop_", "save_", "global_", "stop_")
_TOMO_SUFFIXES = (".mrc", ".rec", ".st", ".em", ".map", ".zarr", ".tomostar", ".mrcs")


def check_names(values: Iterable[Any], what: str, source: str) -> None:
    """Names (experiments, particle types) must be non-empty text without control characters."""
    for v in dict.fromkeys(values):
        s = str(v)
        if not s.strip():
            raise InputError(f"empty {what}", source)
        if _CONTROL.search(s):
            raise InputError(f"{what} {s!r} contains a control character", source)


def star_safe(values: Iterable[Any], what: str, source: str) -> None:
    """Names written into STAR, Dynamo and EM side files are bare tokens: no white space or
    quotes, and nothing a STAR parser takes for syntax (``_``, ``#``, ``$``, ``;`` first, or
    ``data_`` / ``loop_`` ...)."""
    for v in dict.fromkeys(values):
        s = str(v)
        if (_STAR_BAD.search(s) or s[:1] in ("_", "#", "$", ";", "[", "]")
                or s.lower().startswith(_STAR_RESERVED)):
            raise InputError(f"{what} {s!r} cannot be written to this format (white space, "
                             "quotes or a leading _ # $ ; [ ] or data_/loop_ are not allowed)",
                             source)


def _finite(values: np.ndarray, what: str, source: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.flatnonzero(bad.reshape(len(arr), -1).any(axis=1))[0])
        raise InputError(f"{what} has a NaN or infinite value (data row {row + 1})", source)
    return arr


def numeric_column(df: pd.DataFrame, col: str, source: str) -> np.ndarray:
    """A column as finite float64, or an :class:`InputError` naming the first bad row."""
    values = pd.to_numeric(df[col], errors="coerce")
    bad = values.isna().to_numpy() & df[col].notna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(f"column {col!r} has a non-numeric value {df[col].iloc[row]!r} "
                         f"(data row {row + 1})", source)
    return _finite(values.to_numpy(dtype=np.float64), f"column {col!r}", source)


# ----- tomogram index maps (Dynamo tables, TOM motive lists) -----------------------------------
def tomo_map_path(path: str | os.PathLike[str]) -> Path:
    """The tomogram list written beside a Dynamo table or EM motive list: ``<stem>.doc``."""
    p = Path(path)
    return p.with_suffix(".doc")


def _tomo_name(token: str) -> str:
    name = os.path.basename(token.strip())
    for suffix in _TOMO_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def read_tomo_map(path: str | os.PathLike[str]) -> dict[int, str]:
    """Read a tomogram index map: one ``index name`` pair a line, separated by white space, a
    comma or a tab (Dynamo's ``.doc`` tomogram list and copick's index-map CSV both work). A
    path as the name gives its file name without a tomogram extension (``.mrc``, ``.rec``...)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("tomogram index map not found", p)
    out: dict[int, str] = {}
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the tomogram index map ({exc})", p) from None
    for k, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = re.split(r"[\s,]+", line.strip(), maxsplit=1)
        if len(parts) != 2:
            raise InputError(f"line {k}: expected 'index name', got {line.strip()!r}", p)
        try:
            index = int(float(parts[0]))
        except ValueError:
            if k == 1:  # a header line
                continue
            raise InputError(f"line {k}: tomogram index {parts[0]!r} is not a number", p) from None
        if index in out:
            raise InputError(f"line {k}: tomogram index {index} appears twice", p)
        name = _tomo_name(parts[1])
        check_names([name], "tomogram name", str(p))
        out[index] = name
    if not out:
        raise InputError("tomogram index map is empty", p)
    return out


def write_tomo_map(mapping: Mapping[int, str], path: str | os.PathLike[str]) -> Path:
    """Write ``index name`` lines (Dynamo's ``.doc`` layout), atomically."""
    p = Path(path)
    if not mapping:
        raise ValueError("an empty tomogram index map is not written")
    text = "".join(f"{int(i)} {name}\n" for i, name in sorted(mapping.items()))
    with atomic_path(p) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return p


# ----- the options -----------------------------------------------------------------------------
@dataclass
class Context:
    """What a reader or writer may need beyond the file: each keyword argument wins over the
    copick project, and a missing one is an :class:`InputError` naming the option."""

    path: Path
    voxel_spacing: float | None = None
    tomogram_shape: tuple[int, int, int] | None = None
    project: Any = None
    particle_type: str | None = None
    experiment: str | None = None
    tomo_map: dict[int, str] | None = None
    tomo_map_file: Path | None = None
    _runs: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def source(self) -> str:
        return str(self.path)

    # -- copick project
    def _run(self, name: str) -> Any:
        if name not in self._runs:
            try:
                self._runs[name] = self.project.run(name)
            except CryobenchError as exc:
                raise InputError(f"experiment {name!r} is not usable in the copick project "
                                 f"{self.project.config_path} ({exc.message})",
                                 self.source) from None
        return self._runs[name]

    def _need(self, what: str, purpose: str, options: Sequence[str]) -> InputError:
        hint = " or ".join(OPTION_HINTS[o] for o in options)
        return InputError(f"{purpose} needs the {what}: pass {hint}", self.source)

    def spacing(self, experiment: str, purpose: str) -> float:
        """Å per pixel for one experiment: ``voxel_spacing``, else the project's run."""
        if self.voxel_spacing is not None:
            return float(self.voxel_spacing)
        if self.project is not None:
            return float(self._run(experiment).voxel_spacing)
        raise self._need("pixel size (Å per pixel)", purpose, ["voxel_spacing", "project"])

    def shape(self, experiment: str, purpose: str) -> tuple[int, int, int]:
        """Tomogram shape ``(z, y, x)`` for one experiment: ``tomogram_shape``, else the run's."""
        if self.tomogram_shape is not None:
            return self.tomogram_shape
        if self.project is not None:
            return tuple(self._run(experiment).shape)  # type: ignore[return-value]
        raise self._need("tomogram shape", purpose, ["tomogram_shape", "project"])

    def per_row(self, experiments: np.ndarray, fn) -> np.ndarray:
        """Apply ``fn(experiment)`` once per distinct experiment and spread it over the rows."""
        names, inverse = np.unique(np.asarray(experiments, dtype=object).astype(str),
                                   return_inverse=True)
        values = np.asarray([fn(str(n)) for n in names], dtype=np.float64)
        return values[inverse]

    # -- names
    def experiments(self, from_file: Sequence[Any] | None, n: int, where: str) -> np.ndarray:
        """Experiment names of ``n`` rows: the file's (``from_file``), else ``experiment``.

        (When the file names its experiments, ``experiment`` selects rows: see
        :func:`select_rows`.)
        """
        if from_file is not None:
            names = np.asarray(from_file, dtype=object).astype(str)
            check_names(names, "experiment", self.source)
            return names.astype(object)
        if self.experiment is None:
            raise InputError(f"the file does not say which tomogram its picks are in ({where}): "
                             f"pass {OPTION_HINTS['experiment']}", self.source)
        check_names([self.experiment], "experiment", self.source)
        return np.full(n, self.experiment, dtype=object)

    def particle_types(self, from_file: Sequence[Any] | None, n: int) -> np.ndarray:
        """Particle types of ``n`` rows: the file's, else ``particle_type``, else the project's
        only particle type."""
        if from_file is not None:
            types = np.asarray(from_file, dtype=object).astype(str)
            check_names(types, "particle type", self.source)
            return types.astype(object)
        if self.particle_type is not None:
            check_names([self.particle_type], "particle type", self.source)
            return np.full(n, self.particle_type, dtype=object)
        if self.project is not None and len(self.project.particles) == 1:
            return np.full(n, self.project.particles[0].name, dtype=object)
        raise InputError("the file does not say which particle its picks are: pass "
                         f"{OPTION_HINTS['particle_type']}", self.source)

    def select_rows(self, picks: pd.DataFrame) -> pd.DataFrame:
        """Keep the rows of ``particle_type`` / ``experiment`` (a file that names several), and
        check the particle types against the project's."""
        out = picks
        for col, value, what in (("particle_type", self.particle_type, "particle type"),
                                 ("experiment", self.experiment, "experiment")):
            if value is None:
                continue
            keep = (out[col] == value).to_numpy()
            if len(out) and not keep.any():
                have = sorted(out[col].unique())
                raise InputError(f"no picks of {what} {value!r}; the file has "
                                 f"{', '.join(map(repr, have[:8]))}"
                                 f"{' ...' if len(have) > 8 else ''}", self.source)
            out = out[keep]
        if self.project is not None and len(out):
            known = {p.name for p in self.project.particles}
            unknown = sorted(set(out["particle_type"]) - known)
            if unknown:
                raise InputError(f"particle type(s) {', '.join(map(repr, unknown))} are not "
                                 f"pickable objects of the copick project; known: "
                                 f"{', '.join(sorted(known))}", self.source)
        return out.reset_index(drop=True)

    def tomo_names(self, indices: np.ndarray) -> np.ndarray | None:
        """Experiment names for tomogram indices (Dynamo ``tomo``, TOM row 5) from the index
        map (``tomo_map``, else ``<stem>.doc`` beside the file); ``None`` without a map."""
        mapping = self.tomo_map
        if mapping is None and tomo_map_path(self.path).is_file():
            mapping = read_tomo_map(tomo_map_path(self.path))
        if mapping is None:
            return None
        idx = np.asarray(indices)
        missing = sorted({int(i) for i in idx} - set(mapping))
        if missing:
            raise InputError(f"tomogram index(es) {', '.join(map(str, missing[:8]))} are not in "
                             "the tomogram index map", self.source)
        return np.asarray([mapping[int(i)] for i in idx], dtype=object)


# ----- the picks table -------------------------------------------------------------------------
def empty_picks(with_score: bool, with_rotations: bool) -> pd.DataFrame:
    """The picks table of a file without picks."""
    cols = [*PICKS_COLUMNS, *(["score"] if with_score else []),
            *(coords.ROTATION_COLUMNS if with_rotations else [])]
    df = pd.DataFrame({c: pd.Series(dtype=object if c in ("experiment", "particle_type")
                                    else np.float64) for c in cols})
    return df


def finish_picks(experiment: np.ndarray, particle_type: np.ndarray, xyz_angstrom: np.ndarray,
                 source: str, score: np.ndarray | None = None,
                 rotations: np.ndarray | None = None) -> pd.DataFrame:
    """Assemble and validate the picks table a reader returns."""
    xyz = np.asarray(xyz_angstrom, dtype=np.float64).reshape(-1, 3)
    df = pd.DataFrame({
        "experiment": pd.Series(np.asarray(experiment, dtype=object), dtype=object),
        "particle_type": pd.Series(np.asarray(particle_type, dtype=object), dtype=object),
        "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2],
    })
    if score is not None:
        df["score"] = np.asarray(score, dtype=np.float64)
    out = validate_picks(df, source)
    for col in ("experiment", "particle_type"):
        out[col] = out[col].astype(object)
    if rotations is not None:
        rot = _finite(np.asarray(rotations, dtype=np.float64).reshape(-1, 9), "an orientation",
                      source).reshape(-1, 3, 3)
        bad = ~coords.is_rotation(rot)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"the orientation of data row {row + 1} is not a rotation", source)
        out = coords.with_rotations(out, rot)
    return out


def prepare_for_write(df: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """Validate picks for writing and apply the ``particle_type`` / ``experiment`` selections."""
    if not isinstance(df, pd.DataFrame):
        raise InputError("picks must be a pandas DataFrame", ctx.source)
    out = validate_picks(df, "picks")
    check_names(out["experiment"], "experiment", "picks")
    check_names(out["particle_type"], "particle type", "picks")
    for col, value, what in (("particle_type", ctx.particle_type, "particle type"),
                             ("experiment", ctx.experiment, "experiment")):
        if value is None:
            continue
        keep = out[col] == value
        if not keep.any():
            have = sorted(out[col].unique())
            raise InputError(f"no picks of {what} {value!r}; the picks have "
                             f"{', '.join(map(repr, have[:8])) or 'none'}", "picks")
        out = out[keep.to_numpy()].reset_index(drop=True)
    if coords.has_rotations(out):
        rot = _finite(coords.picks_rotations(out).reshape(-1, 9), "an orientation", "picks")
        bad = ~coords.is_rotation(rot.reshape(-1, 3, 3))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"the orientation of row {row + 1} is not a rotation", "picks")
    return out.reset_index(drop=True)


def rotations_or_identity(df: pd.DataFrame) -> np.ndarray:
    """The picks' ``(N, 3, 3)`` orientations, identity where the table has none."""
    if coords.has_rotations(df):
        return coords.picks_rotations(df)
    return np.tile(np.eye(3), (len(df), 1, 1))


def one_value(df: pd.DataFrame, col: str, what: str, fmt: str, source: str) -> str | None:
    """The only value of ``col``, for formats that store one particle type per file."""
    values = sorted(df[col].unique())
    if len(values) > 1:
        raise InputError(f"{fmt} files hold one {what}; the picks have {len(values)} "
                         f"({', '.join(values[:6])}{' ...' if len(values) > 6 else ''}): write "
                         f"one file per {what} with {OPTION_HINTS[col]}", source)
    return values[0] if values else None


PICKS_COLUMN_ORDER = (*PICKS_COLUMNS, "score", *coords.ROTATION_COLUMNS)
