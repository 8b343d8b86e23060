"""Particle catalogues from a file (``cryobench score --particles FILE``).

A CSV with a header, one row per class::

    name,radius,weight,symmetry
    ribosome,150,1,C1
    proteasome,90,2,D7

or a TOML file, either an array of tables or one table per class::

    [[particles]]                      [particles.ribosome]
    name = "ribosome"                  radius = 150
    radius = 150                       weight = 1
    weight = 1                         symmetry = "C1"

Fields: ``name`` (a copick object name: no underscores), ``radius`` (Å, > 0), ``weight``
(>= 0, default 1; an empty CSV cell takes the default), optional ``symmetry`` (``C<n>``,
``D<n>``, ``T``, ``O`` or ``I``) and ``label`` (a whole number >= 1; default: the row
order). Anything else is an error, so a misspelt column is not silently ignored.
"""

from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from cryobench.errors import InputError
from cryobench.particles import ParticleType

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["read_particles", "parse_symmetry", "PARTICLE_FIELDS"]

PARTICLE_FIELDS = ("name", "radius", "weight", "symmetry", "label")
_SYMMETRY = re.compile(r"^(?:([CD])([1-9][0-9]*)|([TOI]))$")


def parse_symmetry(value: Any) -> str | None:
    """Normalise a point-group symbol (``c2`` -> ``C2``, ``i`` -> ``I``); empty -> ``None``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip().upper()
    if not text:
        return None
    if not _SYMMETRY.match(text):
        raise ValueError(f"symmetry {value!r} is not a point group (C<n>, D<n>, T, O or I)")
    return text


def _number(value: Any, field: str, where: str, src: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {field} {value!r} is not a number", src) from None
    if not math.isfinite(x):
        raise InputError(f"{where}: {field} is NaN or infinite", src)
    return x


def _entries_csv(path: Path) -> list[tuple[str, dict[str, Any]]]:
    from cryobench.io.picks import read_csv_table

    df = read_csv_table(path)
    df = df.astype(object).where(df.notna(), None)
    # an empty cell (or NaN) is an absent field: a default applies, or it is an error
    return [(f"data row {i + 1}", {str(k): v for k, v in row.items() if v is not None})
            for i, row in enumerate(df.to_dict(orient="records"))]


def _entries_toml(path: Path) -> list[tuple[str, dict[str, Any]]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"malformed TOML ({exc})", path) from None
    extra = sorted(set(data) - {"particles"})
    if extra:
        raise InputError(f"unknown top-level key(s) {', '.join(extra)}; expected [[particles]] "
                         "or [particles.NAME] tables", path)
    items = data.get("particles")
    if isinstance(items, list):
        out = []
        for i, t in enumerate(items):
            if not isinstance(t, dict):
                raise InputError(f"particles entry {i + 1} is not a table", path)
            out.append((f"particles entry {i + 1}", dict(t)))
        return out
    if isinstance(items, dict):
        out = []
        for name, t in items.items():
            if not isinstance(t, dict):
                raise InputError(f"particles.{name} is not a table", path)
            if "name" in t and str(t["name"]) != name:
                raise InputError(f"particles.{name} has name {t['name']!r}", path)
            out.append((f"particles.{name}", {"name": name, **t}))
        return out
    raise InputError("no particles: expected [[particles]] or [particles.NAME] tables", path)


def read_particles(path: str | os.PathLike[str]) -> tuple[ParticleType, ...]:
    """Read a particle catalogue (CSV or TOML, by extension) and validate it.

    Raises:
        InputError: unreadable file, unknown fields, a missing name or radius, a radius that is
            not > 0, a weight < 0, weights summing to 0, a bad symmetry or label, duplicate
            names or labels, or a name copick cannot store.
    """
    p = Path(path)
    src = str(p)
    if not p.is_file():
        raise InputError("file not found" if not p.exists() else "not a file", p)
    ext = p.suffix.lower()
    if ext == ".csv":
        entries = _entries_csv(p)
    elif ext == ".toml":
        entries = _entries_toml(p)
    else:
        what = repr(ext) if ext else "a name without extension"
        raise InputError(f"a particle catalogue is a .csv or .toml file, not {what}", p)
    if not entries:
        raise InputError("no particles", p)
    out: list[ParticleType] = []
    seen_names: set[str] = set()
    seen_labels: set[int] = set()
    for k, (where, entry) in enumerate(entries, 1):
        unknown = sorted(set(entry) - set(PARTICLE_FIELDS))
        if unknown:
            raise InputError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: "
                             f"{', '.join(PARTICLE_FIELDS)}", src)
        name = str(entry.get("name", "")).strip()
        if not name:
            raise InputError(f"{where}: no name", src)
        if re.search(r"[\x00-\x1f\x7f\s]", name):
            raise InputError(f"{where}: name {name!r} contains white space or a control "
                             "character", src)
        if name in seen_names:
            raise InputError(f"{where}: particle {name!r} appears twice", src)
        if entry.get("radius") is None:
            raise InputError(f"{where}: no radius (Å) for {name!r} (missing, empty or NaN)",
                             src)
        radius = _number(entry["radius"], "radius", where, src)
        if radius <= 0:
            raise InputError(f"{where}: radius of {name!r} must be > 0 Å, got {radius:g}", src)
        weight = _number(entry.get("weight", 1.0), "weight", where, src)
        if weight < 0:
            raise InputError(f"{where}: weight of {name!r} must be >= 0, got {weight:g}", src)
        label_value = _number(entry.get("label", k), "label", where, src)
        if label_value < 1 or label_value != int(label_value):
            raise InputError(f"{where}: label must be a whole number >= 1", src)
        label = int(label_value)
        if label in seen_labels:
            raise InputError(f"{where}: label {label} is used twice", src)
        try:
            symmetry = parse_symmetry(entry.get("symmetry"))
            particle = ParticleType(name, label, radius, weight, symmetry=symmetry)
        except ValueError as exc:
            raise InputError(f"{where}: {exc}", src) from None
        seen_names.add(name)
        seen_labels.add(label)
        out.append(particle)
    if sum(p.weight for p in out) <= 0:
        raise InputError("the weights sum to 0; at least one class needs a positive weight", src)
    return tuple(out)
