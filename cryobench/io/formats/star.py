"""STAR files (read and written with ``starfile``): RELION 4, RELION 5 and pytom-match-pick.

* RELION 4: ``rlnCoordinateX/Y/Z`` in pixels (first voxel 0) per ``rlnTomoName``; the pixel
  size is the optics table's ``rlnTomoTiltSeriesPixelSize``.
* RELION 5: ``rlnCenteredCoordinateX/Y/ZAngst``, Å from the tomogram centre (``N / 2`` voxels
  along each axis, :func:`cryobench.coords.tomogram_centre_angstrom`).
* pytom-match-pick: RELION 4 style pixel coordinates with ``rlnLCCmax`` (the pick score),
  ``rlnDetectorPixelSize`` (the tomogram's voxel size) and ``rlnMicrographName`` (the tomogram).
  (With ``rlnMagnification``, as RELION 3.0 and Warp write, the pixel size is
  ``rlnDetectorPixelSize`` µm x 10000 / ``rlnMagnification`` Å.)

All three: angles ``rlnAngleRot/Tilt/Psi`` (RELION's ZYZ,
:func:`cryobench.coords.euler_to_rotation`), composed with ``rlnTomoSubtomogramRot/Tilt/Psi``
when present, and shifts
``rlnOriginX/Y/ZAngst`` subtracted from the coordinates (RELION's ``ParticleSet``). cryobench
writes its particle type as the extra label ``cryobenchParticleType`` (RELION keeps labels it
does not know) and a score as ``rlnAutopickFigureOfMerit`` (pytom: ``rlnLCCmax``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cryobench import coords
from cryobench.errors import InputError
from cryobench.io.atomic import atomic_path
from cryobench.io.formats._base import (
    Context,
    _tomo_name,
    finish_picks,
    numeric_column,
    prepare_for_write,
    rotations_or_identity,
    star_safe,
)

__all__ = ["read_star", "write_relion4", "write_relion5", "write_pytom", "star_flavour",
           "PARTICLE_LABEL"]

PARTICLE_LABEL = "cryobenchParticleType"
PIXEL = ("rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ")
CENTRED = ("rlnCenteredCoordinateXAngst", "rlnCenteredCoordinateYAngst",
           "rlnCenteredCoordinateZAngst")
ANGLES = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
SUBTOMO_ANGLES = ("rlnTomoSubtomogramRot", "rlnTomoSubtomogramTilt", "rlnTomoSubtomogramPsi")
ORIGIN_ANGST = ("rlnOriginXAngst", "rlnOriginYAngst", "rlnOriginZAngst")
ORIGIN_PIXELS = ("rlnOriginX", "rlnOriginY", "rlnOriginZ")
SCORES = ("rlnLCCmax", "rlnAutopickFigureOfMerit")


_LAST: dict[tuple, dict[str, pd.DataFrame]] = {}
"""The blocks of the STAR file last looked at by :func:`star_flavour`, so that detecting the
flavour and reading the file parse it once (taken out again by :func:`read_star`)."""


def _key(path: Path) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_ino, st.st_mtime_ns, st.st_size)


def _blocks(path: Path, keep: bool = False) -> dict[str, pd.DataFrame]:
    import starfile

    key = _key(path)
    if key in _LAST:
        return _LAST[key] if keep else _LAST.pop(key)
    _LAST.clear()
    try:
        data = starfile.read(path, always_dict=True)
    except Exception as exc:  # starfile raises many kinds on malformed input
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"malformed STAR file ({first})", path) from None
    blocks = {str(k): v for k, v in data.items() if isinstance(v, pd.DataFrame)}
    if keep:
        _LAST[key] = blocks
    return blocks


def _particle_block(path: Path, keep: bool = False) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found" if not p.exists() else "not a file", p)
    if p.stat().st_size == 0:
        raise InputError("file is empty", p)
    blocks = _blocks(p, keep)
    optics = blocks.get("optics")
    if "particles" in blocks:
        return blocks["particles"], optics
    for name, df in blocks.items():
        if name not in ("optics", "general") and (set(PIXEL) <= set(df.columns)
                                                  or set(CENTRED) <= set(df.columns)):
            return df, optics
    raise InputError("no particle table with rlnCoordinateX/Y/Z or "
                     "rlnCenteredCoordinateX/Y/ZAngst columns", p)


def star_flavour(path: Path) -> str:
    """``relion5`` (centred Å), ``pytom`` (pixel coordinates with ``rlnLCCmax``, or with
    ``rlnDetectorPixelSize`` and ``rlnMicrographName``) or ``relion4``."""
    df, _ = _particle_block(path, keep=True)
    if set(CENTRED) <= set(df.columns):
        return "relion5"
    cols = set(df.columns)
    pytom = "rlnLCCmax" in cols or ({"rlnDetectorPixelSize", "rlnMicrographName"} <= cols
                                     and "rlnTomoName" not in cols)
    return "pytom" if pytom else "relion4"


def _angles(df: pd.DataFrame, cols: tuple[str, ...], source: str) -> np.ndarray | None:
    present = [c for c in cols if c in df.columns]
    if not present:
        return None
    if len(present) != 3:
        missing = [c for c in cols if c not in df.columns]
        raise InputError(f"has {', '.join(present)} but not {', '.join(missing)}", source)
    return np.column_stack([numeric_column(df, c, source) for c in cols])


def _file_pixel_sizes(df: pd.DataFrame, optics: pd.DataFrame | None,
                      source: str) -> tuple[np.ndarray, str] | None:
    """The pixel size the file states for its pixel coordinates, per row, and where from."""
    if optics is not None and "rlnTomoTiltSeriesPixelSize" in optics.columns and len(optics):
        sizes = numeric_column(optics, "rlnTomoTiltSeriesPixelSize", source)
        if len(optics) == 1:
            return np.full(len(df), sizes[0]), "rlnTomoTiltSeriesPixelSize"
        for key in ("rlnOpticsGroup", "rlnOpticsGroupName"):
            if key in df.columns and key in optics.columns:
                table = dict(zip(optics[key].astype(str), sizes, strict=True))
                groups = df[key].astype(str)
                missing = sorted(set(groups) - set(table))
                if missing:
                    raise InputError(f"particles refer to optics group(s) "
                                     f"{', '.join(missing[:5])} that the optics table lacks",
                                     source)
                return groups.map(table).to_numpy(np.float64), "rlnTomoTiltSeriesPixelSize"
        raise InputError("the optics table has several groups and the particles do not say "
                         "which is theirs (no rlnOpticsGroup)", source)
    if "rlnDetectorPixelSize" in df.columns:
        size = numeric_column(df, "rlnDetectorPixelSize", source)
        if "rlnMagnification" in df.columns:  # RELION 3.0 / Warp: µm at a magnification
            mag = numeric_column(df, "rlnMagnification", source)
            if not np.all(mag > 0):
                raise InputError("rlnMagnification must be positive", source)
            return size * 1e4 / mag, "rlnDetectorPixelSize x 10000 / rlnMagnification"
        return size, "rlnDetectorPixelSize"
    return None


def read_star(path: Path, ctx: Context) -> pd.DataFrame:
    """Read a RELION 4 / RELION 5 / pytom-match-pick STAR file into a picks table (Å)."""
    src = ctx.source
    df, optics = _particle_block(path)
    df = df.reset_index(drop=True)
    n = len(df)
    if "rlnTomoName" in df.columns:
        names, where = df["rlnTomoName"].astype(str).to_numpy(), "no rlnTomoName"
    elif "rlnMicrographName" in df.columns:
        micrographs = df["rlnMicrographName"].astype(str)
        names = micrographs.map({m: _tomo_name(m) for m in micrographs.unique()}).to_numpy()
        where = "rlnMicrographName"
    else:
        names, where = None, "no rlnTomoName or rlnMicrographName column"
    experiments = ctx.experiments(names, n, where)
    types = ctx.particle_types(
        df[PARTICLE_LABEL].astype(str).to_numpy() if PARTICLE_LABEL in df.columns else None, n)

    origin = np.zeros((n, 3))
    if set(CENTRED) <= set(df.columns):
        centred = np.column_stack([numeric_column(df, c, src) for c in CENTRED])
        purpose = "rlnCenteredCoordinate*Angst (Å from the tomogram centre)"

        xyz = np.zeros((n, 3))
        for exp in map(str, np.unique(experiments.astype(str))):
            rows = experiments.astype(str) == exp
            xyz[rows] = coords.centred_to_angstrom(centred[rows], ctx.shape(exp, purpose),
                                                   ctx.spacing(exp, purpose))
        if any(c in df.columns for c in ORIGIN_PIXELS) and not set(ORIGIN_ANGST) <= set(df.columns):
            raise InputError("rlnOriginX/Y/Z in pixels with centred coordinates: give the "
                             "shifts as rlnOriginX/Y/ZAngst", src)
    elif set(PIXEL) <= set(df.columns):
        pixels = np.column_stack([numeric_column(df, c, src) for c in PIXEL])
        stated = _file_pixel_sizes(df, optics, src)
        if stated is not None:
            sizes, label = stated
            if ctx.voxel_spacing is not None and not np.allclose(sizes, ctx.voxel_spacing,
                                                                 rtol=1e-3, atol=0):
                raise InputError(f"the file states pixel size(s) {np.unique(sizes)[:4].tolist()} "
                                 f"Å ({label}) but --voxel-spacing is {ctx.voxel_spacing:g}; "
                                 "drop --voxel-spacing to use the file's", src)
            if not np.all(sizes > 0):
                raise InputError(f"{label} must be positive", src)
        else:
            sizes = ctx.per_row(experiments, lambda e: ctx.spacing(
                e, "rlnCoordinateX/Y/Z (pixels; the file states no pixel size)"))
        xyz = coords.pixels_to_angstrom(pixels, sizes) if n else np.zeros((0, 3))
        if not set(ORIGIN_ANGST) <= set(df.columns) and set(ORIGIN_PIXELS) <= set(df.columns):
            origin = np.column_stack([numeric_column(df, c, src) for c in ORIGIN_PIXELS])
            origin = coords.pixels_to_angstrom(origin, sizes) if n else origin
    else:
        raise InputError("missing coordinate columns: rlnCoordinateX/Y/Z or "
                         "rlnCenteredCoordinateX/Y/ZAngst", src)
    if set(ORIGIN_ANGST) <= set(df.columns):
        origin = np.column_stack([numeric_column(df, c, src) for c in ORIGIN_ANGST])

    particle = _angles(df, ANGLES, src)
    subtomo = _angles(df, SUBTOMO_ANGLES, src)
    rotations = None
    if particle is not None or subtomo is not None:
        eye = np.tile(np.eye(3), (n, 1, 1))
        a_part = eye if particle is None else coords.euler_to_rotation(particle, "relion")
        a_sub = eye if subtomo is None else coords.euler_to_rotation(subtomo, "relion")
        rotations = a_sub @ a_part
        origin = np.einsum("nij,nj->ni", a_sub, origin)
    xyz = xyz - origin
    score = None
    for col in SCORES:
        if col in df.columns:
            score = numeric_column(df, col, src)
            break
    return finish_picks(experiments, types, xyz, src, score=score, rotations=rotations)


# ----- writing ---------------------------------------------------------------------------------
def _common_columns(picks: pd.DataFrame, ctx: Context) -> dict[str, object]:
    star_safe(picks["experiment"], "experiment", ctx.source)
    star_safe(picks["particle_type"], "particle type", ctx.source)
    angles = coords.rotation_to_euler(rotations_or_identity(picks), "relion")
    return {ANGLES[0]: angles[:, 0], ANGLES[1]: angles[:, 1], ANGLES[2]: angles[:, 2]}


def _write(data: pd.DataFrame | dict[str, pd.DataFrame], path: Path) -> list[Path]:
    import starfile

    with atomic_path(path) as tmp:
        # float_format=None: pandas writes each float's shortest round-trip repr (exact)
        starfile.write(data, tmp, float_format=None, overwrite=True)
    return [path]


def _pixels(picks: pd.DataFrame, ctx: Context, purpose: str) -> tuple[np.ndarray, np.ndarray]:
    sizes = ctx.per_row(picks["experiment"].to_numpy(), lambda e: ctx.spacing(e, purpose))
    xyz = picks[["x", "y", "z"]].to_numpy(np.float64)
    return (coords.angstrom_to_pixels(xyz, sizes) if len(xyz) else np.zeros((0, 3))), sizes


def write_relion4(df: pd.DataFrame, path: Path, ctx: Context) -> list[Path]:
    """RELION 4: pixel coordinates and an optics table whose ``rlnTomoTiltSeriesPixelSize`` is
    the pixel size of those coordinates (one optics group per pixel size)."""
    picks = prepare_for_write(df, ctx)
    angles = _common_columns(picks, ctx)
    pixels, sizes = _pixels(picks, ctx, "writing RELION 4 pixel coordinates")
    groups, group_of = np.unique(sizes, return_inverse=True)
    particles = pd.DataFrame({"rlnTomoName": picks["experiment"].astype(object),
                              PIXEL[0]: pixels[:, 0], PIXEL[1]: pixels[:, 1],
                              PIXEL[2]: pixels[:, 2], **angles,
                              "rlnOpticsGroup": group_of + 1})
    if "score" in picks.columns:
        particles["rlnAutopickFigureOfMerit"] = picks["score"].to_numpy(np.float64)
    particles[PARTICLE_LABEL] = picks["particle_type"].astype(object)
    optics = pd.DataFrame({"rlnOpticsGroup": np.arange(1, len(groups) + 1),
                           "rlnOpticsGroupName": [f"opticsGroup{k}"
                                                  for k in range(1, len(groups) + 1)],
                           "rlnTomoTiltSeriesPixelSize": groups})
    return _write({"optics": optics, "particles": particles}, path)


def write_relion5(df: pd.DataFrame, path: Path, ctx: Context) -> list[Path]:
    """RELION 5: Å from the tomogram centre, which needs each tomogram's shape and spacing."""
    picks = prepare_for_write(df, ctx)
    angles = _common_columns(picks, ctx)
    purpose = "writing RELION 5 centred coordinates"
    exps = picks["experiment"].astype(str).to_numpy()
    xyz = picks[["x", "y", "z"]].to_numpy(np.float64)
    centred = np.zeros_like(xyz)
    for exp in map(str, np.unique(exps)):
        rows = exps == exp
        centred[rows] = coords.angstrom_to_centred(xyz[rows], ctx.shape(exp, purpose),
                                                   ctx.spacing(exp, purpose))
    particles = pd.DataFrame({"rlnTomoName": picks["experiment"].astype(object),
                              CENTRED[0]: centred[:, 0], CENTRED[1]: centred[:, 1],
                              CENTRED[2]: centred[:, 2], **angles})
    if "score" in picks.columns:
        particles["rlnAutopickFigureOfMerit"] = picks["score"].to_numpy(np.float64)
    particles[PARTICLE_LABEL] = picks["particle_type"].astype(object)
    return _write({"particles": particles}, path)


def write_pytom(df: pd.DataFrame, path: Path, ctx: Context) -> list[Path]:
    """pytom-match-pick: pixel coordinates, ``rlnLCCmax`` = score, ``rlnDetectorPixelSize``,
    ``rlnMicrographName`` = experiment."""
    picks = prepare_for_write(df, ctx)
    angles = _common_columns(picks, ctx)
    pixels, sizes = _pixels(picks, ctx, "writing pytom-match-pick pixel coordinates")
    particles = pd.DataFrame({PIXEL[0]: pixels[:, 0], PIXEL[1]: pixels[:, 1],
                              PIXEL[2]: pixels[:, 2], **angles})
    if "score" in picks.columns:
        particles["rlnLCCmax"] = picks["score"].to_numpy(np.float64)
    particles["rlnDetectorPixelSize"] = sizes
    particles["rlnMicrographName"] = picks["experiment"].astype(object)
    particles[PARTICLE_LABEL] = picks["particle_type"].astype(object)
    return _write(particles, path)
