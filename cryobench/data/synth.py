"""Write synthetic copick projects from the phantom generator (``cryobench data synth``).

The phantoms themselves come from :mod:`cryobench.data.phantom`; this module only names runs,
derives per-run seeds and stores volumes and ground truth through :mod:`cryobench.data.project`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cryobench.data.integrity import array_listings
from cryobench.errors import ConfigError, DataError
from cryobench.io.atomic import atomic_dir, atomic_write_text
from cryobench.io.names import safe_component
from cryobench.particles import CZII_PARTICLES, ParticleType

__all__ = [
    "CONFIG_NAME",
    "MANIFEST_NAME",
    "SYNTH_TOMO_TYPE",
    "INTEGRITY_KEY",
    "get_preset",
    "run_seed",
    "synth_run_names",
    "generator_fingerprint",
    "partial_dir",
    "write_synthetic_project",
]

CONFIG_NAME = "copick.json"
"""File name of the copick config inside a project directory written by cryobench."""
MANIFEST_NAME = "cryobench-data.json"
"""Manifest written beside the config: how the data was made and its data fingerprint."""
SYNTH_TOMO_TYPE = "denoised"
MAX_SEED = 2**32 - 1
"""Largest seed of a synthetic project (the seeds NumPy, torch and Python all accept, as on the
command line)."""
INTEGRITY_KEY = "integrity"
"""Manifest key of the zarr arrays' listings (:func:`cryobench.data.integrity.array_listings`)."""


def _phantom() -> Any:
    try:
        from cryobench.data import phantom
    except ImportError as exc:  # pragma: no cover - the phantom package ships with cryobench
        raise DataError(f"the phantom generator is not available ({exc})") from None
    return phantom


def get_preset(name: str) -> Any:
    """The :class:`PhantomSpec` of a preset; :class:`ConfigError` listing presets if unknown."""
    presets = _phantom().PRESETS
    if name not in presets:
        raise ConfigError(f"unknown phantom preset {name!r}; choose one of "
                          f"{', '.join(sorted(presets))}")
    return presets[name]


def run_seed(seed: int, index: int) -> int:
    """The seed of run ``index`` of a project made with ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def synth_run_names(preset: str, n: int) -> list[str]:
    """Default run names: ``TS_synth_1...`` (particles) or ``tomo_synth_1...`` (motor task)."""
    task = getattr(get_preset(preset), "task", "particles")
    stem = "tomo_synth" if task == "motor" else "TS_synth"
    return [f"{stem}_{i}" for i in range(1, n + 1)]


def generator_fingerprint() -> str:
    """sha256 over the phantom generator's source files: a code change invalidates caches."""
    pkg = Path(_phantom().__file__).parent
    h = hashlib.sha256()
    for f in sorted(pkg.rglob("*.py")):
        h.update(f.relative_to(pkg).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _preset_particles(spec: Any) -> tuple[ParticleType, ...]:
    particles = tuple(getattr(spec, "particles", ()) or ())
    if particles:
        return particles
    return CZII_PARTICLES


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


PARTIAL_SUFFIX = ".partial"
"""A resumable generation writes into ``.<out name>.partial`` beside the output directory."""
_PARAMS_NAME = ".cryobench-params.json"
_DONE_DIR = ".done"


def partial_dir(out_dir: str | os.PathLike[str]) -> Path:
    """Where a resumable generation of ``out_dir`` keeps its finished runs until it completes."""
    out = Path(out_dir).expanduser().resolve()
    return out.with_name(f".{out.name}{PARTIAL_SUFFIX}")


def _resume_dir(out: Path, params: Mapping[str, Any]) -> tuple[Path, dict[str, Any]]:
    """The staging directory of a resumable generation and the runs it already holds.

    A staging directory left by a generation with other parameters (or an unreadable one) is
    discarded.
    """
    import shutil

    tmp = partial_dir(out)
    done: dict[str, Any] = {}
    if tmp.is_dir():
        try:
            same = json.loads((tmp / _PARAMS_NAME).read_text()) == json.loads(json.dumps(params))
        except (OSError, ValueError):
            same = False
        if not same:
            shutil.rmtree(tmp)
    if tmp.is_dir():
        for f in (tmp / _DONE_DIR).glob("*.json"):
            try:
                entry = json.loads(f.read_text())
                done[entry["name"]] = entry["manifest"]
            except (OSError, ValueError, KeyError):
                continue
    else:
        tmp.mkdir(parents=True)
        atomic_write_text(tmp / _PARAMS_NAME, json.dumps(params, indent=1))
    return tmp, done


def _publish(tmp: Path, out: Path) -> None:
    """Move a finished staging directory into place (replacing ``out`` only now)."""
    import shutil

    for extra in (tmp / _PARAMS_NAME, tmp / _DONE_DIR):
        if extra.is_dir():
            shutil.rmtree(extra)
        elif extra.exists():
            extra.unlink()
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def write_synthetic_project(
    out_dir: str | os.PathLike[str],
    preset: str,
    run_names: Sequence[str],
    *,
    seed: int = 0,
    snr: float | None = None,
    run_options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = True,
    extra_manifest: Mapping[str, Any] | None = None,
    fingerprint_fn: Callable[[Path], str] | None = None,
    overwrite: bool = False,
    tomo_types: Sequence[str] | None = None,
    resume: bool = False,
) -> Path:
    """Generate phantoms and write them as a complete copick project in ``out_dir``.

    Run ``i`` (0-based position in ``run_names``) uses seed :func:`run_seed(seed, i)
    <run_seed>`; ``run_options[name]`` may set ``has_motor`` (motor presets) or ``snr``.
    ``tomo_types`` selects which of the preset's tomogram types to store (default: all; the
    first is the project's default); they are stored in the preset's ``storage_dtype``.

    The directory appears only when complete: it is written in a temporary sibling and renamed
    into place. An existing ``out_dir`` that is not empty is an error unless ``overwrite`` (then
    it is replaced only after success). With ``resume``, the sibling is
    :func:`partial_dir(out_dir) <partial_dir>` and each finished run is recorded there, so a
    generation that was killed continues with the first unfinished run when called again with
    the same arguments (other arguments start afresh). Returns the config path.
    """
    from tqdm.auto import tqdm

    from cryobench.data.project import create_project

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not (
            0 <= int(seed) <= MAX_SEED):
        raise ConfigError(f"seed must be an integer in [0, {MAX_SEED}], not {seed!r}")
    spec = get_preset(preset)
    phantom = _phantom()
    run_options = dict(run_options or {})
    names = list(run_names)
    if not names:
        raise ConfigError("a synthetic project needs at least one run")
    for name in names:
        safe_component(name, "run name", error=ConfigError)
    if len(set(names)) != len(names):
        raise ConfigError("run names must be unique")
    available = tuple(getattr(spec, "tomo_types", (SYNTH_TOMO_TYPE,)))
    types = list(available if tomo_types is None else tomo_types)
    unknown = [t for t in types if t not in available]
    if not types or unknown:
        raise ConfigError(f"preset {preset!r} makes tomogram types {', '.join(available)}; "
                          f"cannot store {', '.join(unknown) or 'none'}")
    dtype = np.dtype(getattr(spec, "storage_dtype", "float32"))
    out = Path(out_dir).expanduser().resolve()
    if out.parent == out:
        raise DataError("the output must be a new directory, not the file system root", out)
    if out.exists() and not out.is_dir():
        raise DataError("output exists and is not a directory", out)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise DataError("output directory exists and is not empty (choose a new one)", out)
    particles = _preset_particles(spec)
    params = {"preset": preset, "runs": names, "seed": int(seed), "snr": snr,
              "run_options": _jsonable(run_options), "tomo_types": types,
              "generator": generator_fingerprint()}
    done: dict[str, Any] = {}
    if resume:
        tmp_dir, done = _resume_dir(out, params)
        staging: Any = contextlib.nullcontext(tmp_dir)
    else:
        staging = atomic_dir(out)
    manifest_runs: dict[str, Any] = {}
    with staging as tmp:
        writer = create_project(
            tmp / CONFIG_NAME, tmp / "overlay", particles,
            name=f"cryobench synthetic ({preset})",
            description=f"Synthetic phantoms, preset {preset}, seed {seed}",
            defaults={"tomo_type": types[0]},
            final_overlay_root=out / "overlay",
        )
        todo = [(i, n) for i, n in enumerate(names) if n not in done]
        bar = tqdm(total=len(names), initial=len(names) - len(todo), desc=f"synth {preset}",
                   unit="run", disable=not progress)
        for i, name in todo:
            opts = dict(run_options.get(name, {}))
            kwargs: dict[str, Any] = {"snr": opts.pop("snr", snr)}
            if "has_motor" in opts:
                kwargs["has_motor"] = opts.pop("has_motor")
            if opts:
                raise ConfigError(f"unknown option(s) for run {name!r}: {', '.join(sorted(opts))}")
            s = run_seed(seed, i)
            ph = phantom.generate_tomogram(spec, s, **kwargs)
            vols = getattr(ph, "tomograms", None) or {SYNTH_TOMO_TYPE: ph.volume}
            for t in types[1:]:
                writer.add_tomogram(name, vols[t], ph.voxel_spacing, tomo_type=t, dtype=dtype)
            writer.add_run(name, vols[types[0]], ph.voxel_spacing, ph.picks,
                           tomo_type=types[0], dtype=dtype)
            done[name] = {"seed": s, "voxel_spacing": float(ph.voxel_spacing),
                          "shape": list(np.shape(ph.volume)),
                          "n_picks": int(len(ph.picks)),
                          "meta": _jsonable(getattr(ph, "meta", {}) or {})}
            del ph, vols
            if resume:
                atomic_write_text(tmp / _DONE_DIR / f"{i:06d}.json",
                                  json.dumps({"name": name, "manifest": done[name]}))
            bar.update(1)
        bar.close()
        manifest_runs = {n: done[n] for n in names}
        manifest: dict[str, Any] = {
            "kind": "synthetic",
            "preset": preset,
            "seed": int(seed),
            "snr": snr,
            "tomo_types": types,
            "storage_dtype": dtype.name,
            "generator": params["generator"],
            "runs": manifest_runs,
        }
        manifest.update(dict(extra_manifest or {}))
        if fingerprint_fn is not None:
            # computed on the temporary copy through a config that points at it
            tmp_cfg = tmp / ".fingerprint-config.json"
            cfg = json.loads((tmp / CONFIG_NAME).read_text())
            cfg["overlay_root"] = "local://" + str((tmp / "overlay").resolve())
            atomic_write_text(tmp_cfg, json.dumps(cfg))
            manifest["data_fingerprint"] = fingerprint_fn(tmp_cfg)
            tmp_cfg.unlink()
        manifest[INTEGRITY_KEY] = array_listings(tmp)
        atomic_write_text(tmp / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    if resume:
        _publish(tmp_dir, out)
    return out / CONFIG_NAME
