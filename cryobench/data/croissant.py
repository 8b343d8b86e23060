"""Croissant manifests (POPSICLE-style benchmarks) read through copick's own Croissant backend.

copick 1.31 reads and writes Croissant 1.1 JSON-LD manifests (``Croissant/metadata.json`` plus
CSV indices ``runs.csv``, ``tomograms.csv``, ``picks.csv``...; ``copick.impl.mlcroissant``, a
config of type ``mlcroissant``) whose ``url`` columns point at local files or at the CryoET Data
Portal's bucket, and a run's train/val/test assignment is the ``split`` column of ``runs.csv``.
cryobench opens such a manifest like any copick config (:func:`cryobench.data.open_project`
accepts the ``metadata.json`` itself) and turns its split column into a split definition
(``cryobench data init-split MANIFEST``). A Croissant that copick did not write (no
``copick:config``) is refused: its records carry no run/tomogram/picks structure to read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryobench.errors import DataError

if TYPE_CHECKING:
    from cryobench.data.project import Project

__all__ = [
    "ROLE_ALIASES",
    "is_croissant_manifest",
    "normalise_config",
    "croissant_config",
    "croissant_splits",
    "roles_from_croissant",
]

PORTAL_BUCKET = "s3://cryoet-data-portal-public"

ROLE_ALIASES: dict[str, str] = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val",
    "test": "test", "testing": "test", "eval": "test",
}
"""Croissant split names (copick writes train/val/test; the MLCommons definitions name
training/validation/test) and the cryobench role each becomes; other names become extra parts."""


def is_croissant_manifest(data: Any) -> bool:
    """Whether a parsed JSON document is a Croissant JSON-LD manifest (not a copick config)."""
    if not isinstance(data, dict) or "@context" not in data:
        return False
    conforms = str(data.get("conformsTo", "")) + str(data.get("dct:conformsTo", ""))
    return ("copick:config" in data or "recordSet" in data or "distribution" in data
            or "croissant" in conforms.lower())


def croissant_config(manifest: str | os.PathLike[str], data: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
    """A copick ``mlcroissant`` config reading ``manifest`` (Mode A: writes go beside it).

    Raises:
        DataError: a Croissant that copick did not write (no ``copick:config``).
    """
    path = Path(manifest).expanduser()
    if data is not None and "copick:config" not in data:
        raise DataError("a Croissant manifest without 'copick:config': cryobench reads the "
                        "copick Croissant layout (runs/tomograms/picks record sets) only", path)
    name = (data or {}).get("name") or path.parent.parent.name or "croissant"
    config = {"config_type": "mlcroissant", "name": str(name), "pickable_objects": [],
              "croissant_url": str(path.resolve())}
    if str((data or {}).get("copick:baseUrl", "")).startswith(PORTAL_BUCKET):
        config["static_fs_args"] = {"anon": True}  # the portal's bucket is public
    return config


def normalise_config(data: dict[str, Any], path: str | os.PathLike[str]) -> dict[str, Any]:
    """A parsed config ready for copick: a Croissant manifest becomes an ``mlcroissant`` config;
    a relative local ``croissant_url`` is resolved against the config file's folder."""
    if is_croissant_manifest(data):
        return croissant_config(path, data)
    url = data.get("croissant_url")
    if data.get("config_type") == "mlcroissant" and isinstance(url, str):
        from cryobench.data.remote import url_host

        if url_host(url) is None and not url.startswith("file://") and not os.path.isabs(url):
            data = {**data, "croissant_url": str((Path(path).parent / url).resolve())}
    return data


def croissant_splits(project: Project) -> dict[str, list[str]]:
    """``{split name: sorted run names}`` of a Croissant-backed project; ``{}`` for others."""
    splits = getattr(project.root, "splits", None)
    if not isinstance(splits, dict):
        return {}
    return {str(k): sorted(str(r) for r in v) for k, v in splits.items() if k}


def roles_from_croissant(project: Project) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The manifest's split column as ``(roles, parts)``: ``roles`` has ``train``, ``val`` and
    ``test`` (names mapped by :data:`ROLE_ALIASES`), ``parts`` every other split name.

    Raises:
        DataError: two Croissant splits map to the same role.
    """
    roles: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    sources: dict[str, str] = {}
    parts: dict[str, list[str]] = {}
    for name, runs in sorted(croissant_splits(project).items()):
        role = ROLE_ALIASES.get(name.lower())
        if role is None:
            parts[name] = runs
            continue
        if role in sources:
            raise DataError(f"Croissant splits {sources[role]!r} and {name!r} both mean "
                            f"{role!r}; pass the roles with --train/--val/--test",
                            project.config_path)
        sources[role] = name
        roles[role] = runs
    return roles, parts
