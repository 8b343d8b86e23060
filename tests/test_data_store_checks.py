"""Tomogram stores that zarr would read as zeros are refused, naming the store."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from cryobench.cli import cli
from cryobench.data import open_project
from cryobench.data.project import create_project
from cryobench.errors import DataError
from cryobench.particles import CZII_PARTICLES

RUN = "TS_1_1"


@pytest.fixture()
def project(tmp_path: Path) -> tuple[Path, Path]:
    """A project with one run; returns (config, the run's level-0 array directory)."""
    w = create_project(tmp_path / "copick.json", tmp_path / "overlay", CZII_PARTICLES,
                       defaults={"tomo_type": "denoised"})
    vol = np.random.default_rng(0).standard_normal((20, 40, 36)).astype(np.float32) + 5
    w.add_run(RUN, vol, 10.0, None, chunks=(8, 16, 16))
    level0 = (tmp_path / "overlay" / "ExperimentRuns" / RUN / "VoxelSpacing10.000" /
              "denoised.zarr" / "0")
    return tmp_path / "copick.json", level0


def _chunks(level0: Path) -> list[Path]:
    return sorted(p for p in level0.rglob("*") if p.is_file() and not p.name.startswith("."))


def _error(config: Path) -> DataError:
    with pytest.raises(DataError) as e:
        open_project(config).run(RUN).tomogram()
    return e.value


def test_intact_store_reads(project):
    config, level0 = project
    assert len(_chunks(level0)) == 3 * 3 * 3
    assert open_project(config).run(RUN).tomogram().min() != 0


def test_level0_without_chunks_is_refused(project):
    config, level0 = project
    for c in _chunks(level0):
        c.unlink()
    err = _error(config)
    assert "no chunk files" in err.message and "read as zeros" in err.message
    assert err.path.endswith("denoised.zarr/0")


def test_chunk_replaced_by_a_directory_is_refused(project):
    config, level0 = project
    chunk = _chunks(level0)[4]
    chunk.unlink()
    chunk.mkdir()
    err = _error(config)
    assert "is a directory" in err.message
    assert chunk.relative_to(level0).as_posix() in err.message
    assert err.path.endswith("denoised.zarr/0")


def test_dangling_chunk_link_is_refused(project):
    config, level0 = project
    chunk = _chunks(level0)[0]
    chunk.unlink()
    chunk.symlink_to(level0 / "nowhere")
    assert "not a readable file" in _error(config).message


@pytest.mark.allow_skip("root reads files whatever their permissions")
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root reads files whatever their permissions")
def test_chunk_without_read_permission_is_refused(project):
    config, level0 = project
    chunk = _chunks(level0)[0]
    chunk.chmod(0)
    try:
        assert "cannot be read" in _error(config).message
    finally:
        chunk.chmod(0o644)


def test_dot_separated_store_is_refused(project):
    """A zarr v2 level written with '.' as dimension separator reads as zeros through copick's
    '/'-keyed store."""
    config, level0 = project
    data = zarr.open_array(str(level0), mode="r")[:]
    shutil.rmtree(level0)
    dotted = zarr.open_array(zarr.DirectoryStore(str(level0)), mode="w", shape=data.shape,
                             chunks=(8, 16, 16), dtype=data.dtype, dimension_separator=".")
    dotted[:] = data
    assert (level0 / "0.0.0").is_file()
    err = _error(config)
    assert "separated by '.'" in err.message and "0.0.0" in err.message
    assert err.path.endswith("denoised.zarr/0")
    res = CliRunner().invoke(cli, ["data", "show", str(config), "--run", RUN, "-o",
                                   str(config.parent / "slice.png")])
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and res.output.startswith(f"error: {err.path}: ")
    assert not (config.parent / "slice.png").exists()


def test_string_dtype_is_refused(project):
    config, level0 = project
    shutil.rmtree(level0)
    arr = zarr.open_array(str(level0), mode="w", shape=(20, 40, 36), chunks=(8, 16, 16),
                          dtype="|S4", dimension_separator="/")
    arr[:] = b"abcd"
    err = _error(config)
    assert "dtype |S4" in err.message and err.path.endswith("denoised.zarr/0")


def test_zarray_that_is_not_json_is_named(project):
    config, level0 = project
    (level0 / ".zarray").write_text("{broken")
    with pytest.raises(DataError) as e:
        open_project(config).run(RUN)
    assert "no pyramid level" not in e.value.message
    assert "cannot read the metadata of pyramid level 0" in e.value.message
    assert e.value.path.endswith("denoised.zarr/0")
    (level0 / ".zarray").write_text(json.dumps([1, 2]))
    with pytest.raises(DataError, match="metadata of pyramid level 0"):
        open_project(config).run(RUN)
