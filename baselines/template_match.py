"""``template_match``: the classical baseline - FFT template matching with local normalisation.

Per class, a template is averaged from the training runs' subtomograms at the ground-truth picks
(in the particle frame when the picks carry rotations; otherwise a rotational average) or read
from an MRC file; it is searched over an angular grid (reduced by the class's symmetry when the
template has it) with the local-normalised cross-correlation of
:mod:`cryobench.template_matching.search`; the best score map's peaks, thinned at a per-class
exclusion radius, are the candidates, and a per-class score cut-off tuned on the validation runs
only (CZII F-beta, as for the deep baselines) picks among them. Each pick carries its score (the
local correlation) and the best rotation (``rot_*`` columns). Nothing is trained and nothing is
random: the seed is ignored.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryobench.coords import ROTATION_COLUMNS, has_rotations, voxels_to_picks
from cryobench.errors import ConfigError, DataError, InputError, MethodError
from cryobench.io.atomic import atomic_path, atomic_write_text
from cryobench.methods.base import PickingMethod, RunContext, RunLike
from cryobench.particles import ParticleType

__all__ = ["TemplateMatch", "TemplateMatchConfig", "read_mrc_template"]

PICK_COLUMNS = ["experiment", "particle_type", "x", "y", "z", "score", *ROTATION_COLUMNS]
MRC_SUFFIXES = (".mrc", ".map")


@dataclass
class TemplateMatchConfig:
    """``cpu`` budget: 20 Å working voxels (bin 2 of 10 Å data; 40 Å for the classes large
    enough), a 30 degree angular grid.

    The method is deterministic and ignores the seed.
    """

    bin: int = 2
    """Finest working resolution: level 0 downsampled by this power of two."""
    max_bin: int = 4
    """Coarsest working resolution: a class is searched at the coarsest power-of-two binning
    from ``bin`` up to this at which its radius still spans ``min_radius_voxels`` voxels
    (large particles need far fewer voxels; each halving of the resolution makes the search 8x
    cheaper)."""
    min_radius_voxels: float = 3.0
    """The smallest particle radius, in working voxels, a class is searched at."""
    min_power_kept: float = 0.7
    """A class goes to a coarser binning only if its template keeps at least this share of its
    power within the coarser low-pass (a thin shell, like the VLP's capsid, does not)."""
    angular_step: float = 30.0
    """Angular sampling in degrees (about ``8 pi^2 / step^3`` rotations before symmetry)."""
    templates: str = ""
    """Directory of MRC templates, ``<class>.mrc`` (or ``.map``) with their pixel size in the
    header; a class without a file (or ``""``) gets the training average."""
    invert_templates: bool = False
    """Negate MRC templates (maps with protein bright where the tomogram shows it dark)."""
    max_average: int = 500
    """At most this many training subtomograms per class are averaged (evenly spaced)."""
    box_fraction: float = 1.25
    """Template box half-edge as a fraction of the particle radius."""
    mask_fraction: float = 1.0
    """Radius of the spherical correlation mask as a fraction of the particle radius."""
    lowpass: float = 0.0
    """Low-pass cut-off in Å (0: 2.5 working voxels)."""
    max_tilt: float = 60.0
    """Missing wedge of the tilt series (+- degrees about y) applied to each rotated template
    (90: none)."""
    whiten: bool = True
    """Whiten the tomogram's spectrum (and the template by the same profile)."""
    symmetry_threshold: float = 0.8
    """A template counts as having its class's symmetry when it correlates with itself at least
    this much under every element (then the grid is reduced by the group)."""
    isotropy_threshold: float = 0.95
    """A template this self-similar under a set of fixed rotations is searched at one
    orientation (a sphere or shell has no orientation to find)."""
    grid_slack: float = 0.25
    """Slack of the symmetry reduction, as a fraction of the angular step."""
    exclusion_fraction: float = 1.0
    """Per-class exclusion radius of the peak extraction, as a fraction of the radius."""
    max_peaks: int = 500
    """Candidates kept per class and tomogram (best first)."""
    default_threshold: float = 0.3
    """Cut-off of a class that the validation runs cannot tune."""
    batch_size: int = 4
    """Rotations per FFT batch (memory: about three padded volumes each)."""
    threads: int = 0
    """torch CPU threads (0: leave as is)."""

    def __post_init__(self) -> None:
        checks = {
            "bin": self.bin >= 1 and not (self.bin & (self.bin - 1)),
            "max_bin": self.max_bin >= self.bin and not (self.max_bin & (self.max_bin - 1)),
            "min_radius_voxels": self.min_radius_voxels > 0,
            "min_power_kept": 0 <= self.min_power_kept <= 1,
            "angular_step": math.isfinite(self.angular_step) and self.angular_step > 0,
            "max_average": self.max_average >= 1,
            "box_fraction": self.box_fraction >= 1.0,
            "mask_fraction": 0 < self.mask_fraction <= self.box_fraction,
            "lowpass": self.lowpass >= 0,
            "max_tilt": 0 < self.max_tilt <= 90,
            "symmetry_threshold": 0 < self.symmetry_threshold <= 1,
            "isotropy_threshold": 0 < self.isotropy_threshold <= 1,
            "grid_slack": 0 <= self.grid_slack <= 1,
            "exclusion_fraction": self.exclusion_fraction > 0,
            "max_peaks": self.max_peaks >= 1,
            "batch_size": self.batch_size >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"invalid value for {', '.join(bad)}: "
                              + ", ".join(f"{k}={getattr(self, k)!r}" for k in bad))


def read_mrc_template(path: Path) -> tuple[np.ndarray, float]:
    """A ``(z, y, x)`` float32 map and its voxel size in Å from an MRC file.

    Raises:
        InputError: unreadable, not 3D, not cubic-sized enough, or without a pixel size.
    """
    import mrcfile

    try:
        with mrcfile.open(path, permissive=True) as mrc:
            if mrc.data is None:
                raise InputError("not an MRC map (no data)", path)
            data = np.asarray(mrc.data, dtype=np.float32).copy()
            voxel = float(mrc.voxel_size.x)
    except InputError:
        raise
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read MRC template ({exc})", path) from None
    if data.ndim != 3 or min(data.shape) < 3:
        raise InputError(f"template must be a 3D map, got shape {data.shape}", path)
    if not np.isfinite(data).all():
        raise InputError("template has NaN or infinite values", path)
    if not math.isfinite(voxel) or voxel <= 0:
        raise InputError("template has no pixel size in its header (voxel size 0)", path)
    return data, voxel


def _evenly(n: int, k: int) -> np.ndarray:
    """``min(n, k)`` evenly spaced indices into ``range(n)``."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


class TemplateMatch(PickingMethod):
    name = "template_match"
    description = ("FFT template matching with local normalisation over an angular grid, "
                   "templates averaged from training picks or read from MRC (classical baseline)")
    tasks = ("particles",)
    extra = "baselines"
    seeded = False  # deterministic: the same picks for every seed
    Config = TemplateMatchConfig
    budgets = {
        "smoke": {"bin": 2, "max_bin": 2, "angular_step": 90.0, "max_average": 20,
                  "max_peaks": 50, "threads": 1},
        "cpu": {},
        "full": {"bin": 1, "max_bin": 1, "angular_step": 12.85, "max_peaks": 2000,
                 "batch_size": 8},
    }

    def __init__(self, config: Any | None = None) -> None:
        super().__init__(config)
        self.class_names: list[str] = []
        self.radii: dict[str, float] = {}
        self.voxel_spacing: float = 0.0
        """Level-0 voxel spacing (Å) of the runs the templates were made for."""
        self.class_bin: dict[str, int] = {}
        """Working binning of each class (its templates are at ``voxel_spacing x bin``)."""
        self.power_kept: dict[str, float] = {}
        """Share of each template's power kept at the next coarser binning (when checked)."""
        self.templates: dict[str, np.ndarray] = {}
        self.rotations: dict[str, np.ndarray] = {}
        self.search_symmetry: dict[str, str] = {}
        self.template_source: dict[str, str] = {}
        self.thresholds: dict[str, float] = {}
        self.val_fbeta: dict[str, float] = {}

    # ----- helpers ----------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not self.templates:
            raise MethodError(f"method {self.name!r} is not fitted; call fit() or load() first")

    def _lowpass(self, spacing: float) -> float:
        return float(self.config.lowpass) if self.config.lowpass > 0 else 2.5 * spacing

    def _box(self, name: str, spacing: float) -> int:
        from cryobench.template_matching.templates import box_size

        return box_size(self.radii[name], spacing, self.config.box_fraction)

    def _mask(self, name: str, box: int, spacing: float) -> np.ndarray:
        from cryobench.template_matching.templates import sphere_mask

        return sphere_mask(box, self.config.mask_fraction * self.radii[name] / spacing)

    def _spacing(self, name: str, voxel_spacing: float | None = None) -> float:
        """Working spacing (Å) of a class on runs of ``voxel_spacing`` (default: the fit's)."""
        vs = self.voxel_spacing if voxel_spacing is None else float(voxel_spacing)
        return vs * self.class_bin[name]

    def _coarser_ok(self, name: str) -> bool:
        """Whether a class may go from its binning to the next coarser one (radius in voxels,
        power its template keeps; see the config)."""
        from cryobench.template_matching.templates import power_kept

        cfg = self.config
        b = self.class_bin[name]
        if 2 * b > cfg.max_bin:
            return False
        fine, coarse = self._spacing(name), 2 * self._spacing(name)
        if self.radii[name] / coarse < cfg.min_radius_voxels:
            return False
        t = self.templates.get(name)
        if t is None:
            return True
        kept = power_kept(t, self._mask(name, t.shape[0], fine),
                          min(fine / self._lowpass(coarse), 0.25),
                          min(fine / self._lowpass(fine), 0.5))
        self.power_kept[name] = round(kept, 4)
        return kept >= cfg.min_power_kept

    def _prepared(self, run: RunLike, with_picks: bool, with_all_bins: bool = False
                  ) -> dict[int, Any]:
        """The run at every working binning in use (the finer one binned further)."""
        import dataclasses

        from cryobench.methods.engine.data import downsample, normalise, prepare_run

        cfg = self.config
        base = prepare_run(run, cfg.bin, self.class_names if with_picks else None,
                           with_picks=with_picks)
        out = {cfg.bin: base}
        wanted = set(self.class_bin.values()) if not with_all_bins else \
            {cfg.bin * 2**k for k in range(int(math.log2(cfg.max_bin // cfg.bin)) + 1)}
        for b in sorted(wanted):
            if b not in out:
                f = b // cfg.bin
                out[b] = dataclasses.replace(
                    base, volume=normalise(downsample(base.volume, f)),
                    spacing=base.spacing * f, centres=base.centres / f)
        return out

    def _file_templates(self, particles: Sequence[ParticleType]) -> dict[str, np.ndarray]:
        from cryobench.template_matching.templates import resample

        if not self.config.templates:
            return {}
        d = Path(self.config.templates).expanduser()
        if not d.is_dir():
            raise ConfigError("templates must be a directory of MRC files, one per class", d)
        out = {}
        for p in particles:
            files = [d / f"{p.name}{s}" for s in MRC_SUFFIXES if (d / f"{p.name}{s}").is_file()]
            if not files:
                continue
            data, voxel = read_mrc_template(files[0])
            sp = self._spacing(p.name)
            t = resample(data, voxel, sp, self._box(p.name, sp))
            out[p.name] = -t if self.config.invert_templates else t
            digest = hashlib.sha256(files[0].read_bytes()).hexdigest()[:16]
            self.template_source[p.name] = f"file:{files[0].name} sha256:{digest}"
        return out

    def _average_templates(self, train: Sequence[dict[int, Any]], names: Sequence[str]
                           ) -> dict[str, np.ndarray]:
        from cryobench.template_matching.templates import (
            average_subtomograms,
            spherical_average,
        )

        out = {}
        for name in names:
            label = self.class_names.index(name) + 1
            b = self.class_bin[name]
            box = self._box(name, self._spacing(name))
            sums, count, aligned = np.zeros((box,) * 3), 0, True
            chosen = []
            for runs in train:
                r = runs[b]
                sel = np.flatnonzero(r.labels == label)
                rot = None
                if has_rotations(r.picks):
                    rot = r.picks[list(ROTATION_COLUMNS)].to_numpy(np.float64)[sel]
                    if not np.isfinite(rot).all():
                        rot = None
                aligned &= rot is not None
                chosen.append((r, sel, rot))
            total = sum(len(s) for _, s, _ in chosen)
            keep = set(_evenly(total, self.config.max_average).tolist())
            offset = 0
            for r, sel, rot in chosen:
                local = [k for k in range(len(sel)) if offset + k in keep]
                offset += len(sel)
                if not local:
                    continue
                rots = rot[local] if (aligned and rot is not None) else None
                sums += average_subtomograms(r.volume, r.centres[sel[local]], box,
                                             rots) * len(local)
                count += len(local)
            if count == 0:
                continue
            t = (sums / count).astype(np.float32)
            if not aligned:
                t = spherical_average(t)
            out[name] = t
            self.template_source[name] = (f"average of {count} subtomograms"
                                          + ("" if aligned else " (rotational average)"))
        return out

    def _search_grid(self, name: str, symmetry: str) -> None:
        """Choose the rotations searched for a class from its template's own symmetry."""
        import torch

        from cryobench.template_matching.angles import reduce_by_symmetry, so3_grid
        from cryobench.template_matching.templates import (
            apply_box_filter,
            detect_symmetry,
            fourier_filter,
            is_isotropic,
            upsample_for_checks,
        )

        cfg = self.config
        t = self.templates[name]
        box = t.shape[0]
        sp = self._spacing(name)
        mask = self._mask(name, box, sp)
        filt = torch.as_tensor(fourier_filter(t.shape, sp, self._lowpass(sp)))
        smooth = apply_box_filter(torch.as_tensor(t), filt).numpy()
        if not np.any(smooth * mask) or "rotational average" in self.template_source[name]:
            # an unaligned average is a rotational average: it has no orientation to search
            self.search_symmetry[name] = "isotropic"
            self.rotations[name] = np.eye(3)[None].copy()
            return
        smooth, mask = upsample_for_checks(smooth, mask)  # once for both checks
        if is_isotropic(smooth, mask, cfg.isotropy_threshold):
            self.search_symmetry[name] = "isotropic"
            self.rotations[name] = np.eye(3)[None].copy()
            return
        label, group = detect_symmetry(smooth, mask, symmetry, cfg.symmetry_threshold)
        self.search_symmetry[name] = label
        self.rotations[name] = reduce_by_symmetry(so3_grid(cfg.angular_step), group,
                                                  cfg.grid_slack * cfg.angular_step)

    def _score_maps(self, volumes: dict[int, Any], voxel_spacing: float, ctx: RunContext,
                    desc: str) -> dict[str, tuple[Any, float]]:
        """Per class its :class:`~cryobench.template_matching.search.SearchResult` and the
        working spacing it was searched at."""
        from tqdm.auto import tqdm

        from cryobench.template_matching.search import prepare_volume, search
        from cryobench.template_matching.templates import resample

        cfg = self.config
        groups: dict[int, dict[str, np.ndarray]] = {}
        for name in self.class_names:
            t = self.templates.get(name)
            if t is None:
                continue
            sp, fit_sp = self._spacing(name, voxel_spacing), self._spacing(name)
            if abs(sp - fit_sp) > 1e-6 * fit_sp:  # runs of another voxel size
                t = resample(t, fit_sp, sp, self._box(name, sp))
            groups.setdefault(self.class_bin[name], {})[name] = t
        total = sum(len(self.rotations[n]) for g in groups.values() for n in g)
        out = {}
        with tqdm(total=total, desc=desc, unit="rot", disable=not ctx.progress) as bar:
            for b, templates in sorted(groups.items()):
                vol, spacing = volumes[b].volume, volumes[b].spacing
                half = max((t.shape[0] - 1) // 2 for t in templates.values())
                prep = prepare_volume(vol, half, whiten=cfg.whiten, device=ctx.device)
                for name, t in templates.items():
                    done = [0]

                    def step(k: int, done=done) -> None:
                        bar.update(k - done[0])
                        done[0] = k

                    res = search(prep, t, self._mask(name, t.shape[0], spacing),
                                 self.rotations[name], spacing=spacing,
                                 lowpass_angstrom=self._lowpass(spacing),
                                 max_tilt_deg=cfg.max_tilt, batch_size=cfg.batch_size,
                                 progress=step)
                    out[name] = (res, spacing)
                del prep
        return out

    def _candidates(self, volumes: dict[int, Any], voxel_spacing: float, experiment: str,
                    ctx: RunContext) -> pd.DataFrame:
        from cryobench.methods.engine.postprocess import find_peaks, nms

        cfg = self.config
        parts = []
        maps = self._score_maps(volumes, voxel_spacing, ctx, f"{self.name} {experiment}")
        for name in self.class_names:
            if name not in maps:
                continue
            res, spacing = maps.pop(name)
            r_vox = self.radii[name] / spacing
            excl = cfg.exclusion_fraction * r_vox
            pos, score = find_peaks(res.score, -np.inf, max(1, int(round(0.5 * excl))))
            pos, score = pos[: 4 * cfg.max_peaks], score[: 4 * cfg.max_peaks]
            keep = nms(pos, score, None, excl)[: cfg.max_peaks]
            pos, score = pos[keep], score[keep]
            idx = np.clip(np.rint(pos).astype(np.int64), 0, np.asarray(res.score.shape) - 1)
            rot = self.rotations[name][res.rotation_index[idx[:, 0], idx[:, 1], idx[:, 2]]]
            df = voxels_to_picks(pos, spacing, experiment, name, score)
            for k, col in enumerate(ROTATION_COLUMNS):
                df[col] = rot.reshape(-1, 9)[:, k]
            parts.append(df)
        if not parts:
            return pd.DataFrame({c: pd.Series(dtype=object if c in ("experiment",
                                 "particle_type") else np.float64) for c in PICK_COLUMNS})
        return pd.concat(parts, ignore_index=True)

    # ----- the interface ----------------------------------------------------------------------
    def fit(self, train_runs: Sequence[RunLike], val_runs: Sequence[RunLike],
            ctx: RunContext) -> None:
        from cryobench.methods.engine.postprocess import tune_thresholds
        from cryobench.methods.engine.segmentation import torch_threads

        if not train_runs and not self.config.templates:
            raise DataError("fit() needs training runs (or --set templates=DIR)")
        cfg = self.config
        particles = tuple(ctx.particles) or tuple(
            (train_runs or val_runs)[0].particles if (train_runs or val_runs) else ())
        if not particles:
            raise DataError("no particle types: the runs and the context list none")
        self.class_names = [p.name for p in particles]
        self.radii = {p.name: float(p.radius) for p in particles}
        symmetry = {p.name: getattr(p, "symmetry", None) or "C1" for p in particles}
        self.templates, self.rotations, self.search_symmetry = {}, {}, {}
        self.template_source = {}
        # (every step is deterministic on the CPU: FFTs, trilinear sampling, maxima)
        with torch_threads(cfg.threads):
            spacings = {round(float(r.voxel_spacing), 6) for r in train_runs}
            if not spacings:
                first = (val_runs or [None])[0]
                if first is None:
                    raise DataError("fit() needs a training or validation run for the spacing")
                spacings = {round(float(first.voxel_spacing), 6)}
            if len(spacings) > 1:
                raise DataError(f"training runs have different voxel spacings {sorted(spacings)}"
                                "; template averaging needs one")
            self.voxel_spacing = float(spacings.pop())
            # templates at the finest binning; a class goes coarser while it may (radius,
            # power kept), its template made again there
            self.class_bin = {n: cfg.bin for n in self.class_names}
            self.power_kept = {}
            train = [self._prepared(r, with_picks=True, with_all_bins=True) for r in train_runs]
            pending = list(self.class_names)
            while pending:
                made = self._file_templates([p for p in particles if p.name in pending])
                missing = [n for n in pending if n not in made]
                made.update(self._average_templates(train, missing))
                self.templates.update(made)
                pending = [n for n in pending if self._coarser_ok(n)]
                for n in pending:
                    self.class_bin[n] *= 2
                    self.templates.pop(n, None)
                    self.template_source.pop(n, None)
            del train
            for name in self.class_names:
                if name in self.templates:
                    self._search_grid(name, symmetry[name])
            if not self.templates:
                raise DataError("no template: no class has training picks or an MRC file")

            self.thresholds = {n: cfg.default_threshold for n in self.class_names}
            self.val_fbeta = {}
            if val_runs:
                cands, truths = [], []
                for r in val_runs:
                    volumes = self._prepared(r, with_picks=True)
                    cands.append(self._candidates(volumes, float(r.voxel_spacing), r.name, ctx))
                    truths.append(volumes[cfg.bin].picks)
                tuned = tune_thresholds(pd.concat(cands, ignore_index=True),
                                        pd.concat(truths, ignore_index=True), self.radii,
                                        beta=4.0, default=cfg.default_threshold)
                self.thresholds, self.val_fbeta = tuned.thresholds, tuned.fbeta

    def predict(self, run: RunLike, ctx: RunContext) -> pd.DataFrame:
        from cryobench.methods.engine.postprocess import apply_thresholds
        from cryobench.methods.engine.segmentation import torch_threads

        self._check_fitted()
        cfg = self.config
        with torch_threads(cfg.threads):
            volumes = self._prepared(run, with_picks=False)
            cands = self._candidates(volumes, float(run.voxel_spacing), run.name, ctx)
            del volumes
        picks = apply_thresholds(cands, self.thresholds)
        return picks.sort_values(["particle_type", "score"], ascending=[True, False],
                                 kind="stable").reset_index(drop=True)[PICK_COLUMNS]

    def save_state(self, directory: Path) -> None:
        self._check_fitted()
        d = Path(directory)
        arrays = {}
        for i, name in enumerate(self.class_names):
            if name in self.templates:
                arrays[f"template_{i}"] = self.templates[name]
                arrays[f"rotations_{i}"] = self.rotations[name]
        with atomic_path(d / "templates.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        state = {"class_names": self.class_names, "radii": self.radii,
                 "voxel_spacing": self.voxel_spacing, "class_bin": self.class_bin,
                 "power_kept": self.power_kept,
                 "thresholds": self.thresholds, "val_fbeta": self.val_fbeta,
                 "search_symmetry": self.search_symmetry,
                 "template_source": self.template_source,
                 "n_rotations": {n: int(len(r)) for n, r in self.rotations.items()}}
        atomic_write_text(d / "state.json", json.dumps(state, indent=2))

    def load_state(self, directory: Path) -> None:
        d = Path(directory)
        try:
            state = json.loads((d / "state.json").read_text())
            with np.load(d / "templates.npz", allow_pickle=False) as z:
                arrays = {k: np.asarray(z[k]) for k in z.files}
            class_names = [str(n) for n in state["class_names"]]
            radii = {k: float(v) for k, v in state["radii"].items()}
            voxel_spacing = float(state["voxel_spacing"])
            class_bin = {k: int(v) for k, v in state["class_bin"].items()}
            thresholds = {k: float(v) for k, v in state["thresholds"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MethodError(f"cannot load saved {self.name!r} state: {exc}", d) from exc
        self.class_names, self.radii, self.voxel_spacing = class_names, radii, voxel_spacing
        self.class_bin, self.thresholds = class_bin, thresholds
        self.val_fbeta = dict(state.get("val_fbeta", {}))
        self.power_kept = dict(state.get("power_kept", {}))
        self.search_symmetry = dict(state.get("search_symmetry", {}))
        self.template_source = dict(state.get("template_source", {}))
        self.templates, self.rotations = {}, {}
        for i, name in enumerate(self.class_names):
            if f"template_{i}" in arrays:
                self.templates[name] = arrays[f"template_{i}"].astype(np.float32)
                self.rotations[name] = arrays.get(f"rotations_{i}",
                                                  np.eye(3)[None]).astype(np.float64)
        if not self.templates:
            raise MethodError(f"saved {self.name!r} state holds no template", d)
