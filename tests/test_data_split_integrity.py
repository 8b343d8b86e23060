"""A cached synthetic split is checked against the zarr listings recorded at generation, not
only against the central 16^3 crop of the data fingerprint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import cryobench.data.synth as synth
from cryobench.data import load_split
from cryobench.data.integrity import array_listings, check_integrity
from cryobench.data.synth import INTEGRITY_KEY, MANIFEST_NAME


@pytest.fixture()
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYOBENCH_CACHE", str(tmp_path))
    split = load_split("tiny")
    split.project(progress=False)
    return split


def _store(split, run: str) -> Path:
    return (split.cache_path() / "overlay" / "ExperimentRuns" / run / "VoxelSpacing15.000" /
            "denoised.zarr")


def test_generation_records_listings(tiny):
    manifest = json.loads((tiny.cache_path() / MANIFEST_NAME).read_text())
    listings = manifest[INTEGRITY_KEY]
    run = tiny.train[0]
    key = f"overlay/ExperimentRuns/{run}/VoxelSpacing15.000/denoised.zarr/1"
    assert key in listings and listings[key]["files"] >= 2  # .zarray + chunk(s)
    assert len(listings) == 3 * len(tiny._generation_runs())  # three levels per run
    assert check_integrity(tiny.cache_path(), listings) is None


@pytest.mark.parametrize("damage", ["delete", "directory", "truncate"])
def test_damage_outside_the_fingerprint_crop_regenerates(tiny, damage):
    run = tiny.train[0]
    fp = tiny.fingerprint
    before = tiny.runs("train")[0].tomogram(level=1)
    chunk = next(p for p in (_store(tiny, run) / "1").rglob("*")
                 if p.is_file() and not p.name.startswith("."))
    if damage == "delete":
        chunk.unlink()
    elif damage == "directory":
        chunk.unlink()
        chunk.mkdir()
    else:
        chunk.write_bytes(chunk.read_bytes()[:-7])
    with pytest.warns(RuntimeWarning, match="regenerating.*denoised.zarr/1 differs"):
        again = load_split("tiny")
        again.project(progress=False)
    assert again.fingerprint == fp
    np.testing.assert_array_equal(again.runs("train")[0].tomogram(level=1), before)


def test_cache_without_listings_gets_them_and_is_reused(tiny, monkeypatch):
    path = tiny.cache_path() / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    listings = manifest.pop(INTEGRITY_KEY)
    path.write_text(json.dumps(manifest))

    def boom(*a, **k):
        raise AssertionError("regenerated a sound cache")

    monkeypatch.setattr(synth, "write_synthetic_project", boom)
    load_split("tiny").project(progress=False)
    assert json.loads(path.read_text())[INTEGRITY_KEY] == listings


def test_check_integrity_names_the_difference(tmp_path):
    arr = tmp_path / "a.zarr" / "0"
    (arr / "0" / "0").mkdir(parents=True)
    (arr / ".zarray").write_text("{}")
    (arr / "0" / "0" / "0").write_bytes(b"12345")
    want = array_listings(tmp_path)
    assert list(want) == ["a.zarr/0"] and want["a.zarr/0"]["files"] == 2
    (arr / "0" / "0" / "0").write_bytes(b"1234")
    assert "6 bytes instead of 7" in check_integrity(tmp_path, want)
    (arr / "0" / "0" / "0").unlink()
    assert "1 files instead of 2" in check_integrity(tmp_path, want)
    (tmp_path / "elsewhere").mkdir()
    assert "a.zarr/0 is missing" in check_integrity(tmp_path / "elsewhere", want)
    assert "cannot list its zarr arrays" in check_integrity(tmp_path / "nowhere", want)
