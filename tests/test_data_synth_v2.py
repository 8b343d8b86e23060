"""Synthetic projects and splits of the second generation: storage, resuming, split sizes."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import cryobench.data.phantom as phantom
from cryobench.data import load_split, open_project, synth
from cryobench.data.splits import data_fingerprint, split_definition
from cryobench.errors import ConfigError


def test_v2_project_stores_both_types_in_float16(tmp_path):
    names = synth.synth_run_names("tiny-v2", 1)
    cfg = synth.write_synthetic_project(tmp_path / "p", "tiny-v2", names, progress=False)
    ph = phantom.generate_tomogram(phantom.PRESETS["tiny-v2"], synth.run_seed(0, 0))
    project = open_project(cfg)
    for t in ("denoised", "wbp"):
        run = project.run(names[0], tomo_type=t)
        stored = zarr.open_group(run._tomo.zarr(), mode="r")["0"]
        assert stored.dtype == np.float16
        vol = run.tomogram()
        assert vol.dtype == np.float32
        np.testing.assert_array_equal(vol, ph.tomograms[t].astype(np.float16).astype(np.float32))
    assert project.run(names[0]).tomo_type == "denoised"  # the first type is the default
    only = synth.write_synthetic_project(tmp_path / "q", "tiny-v2", names, progress=False,
                                         tomo_types=["wbp"])
    assert open_project(only).run(names[0]).tomo_type == "wbp"
    with pytest.raises(ConfigError, match="cannot store"):
        synth.write_synthetic_project(tmp_path / "r", "tiny", names, tomo_types=["wbp"])


def _counting(monkeypatch, fail_at: int | None = None) -> list:
    real = phantom.generate_tomogram
    calls: list = []

    def generate(spec, seed, **kwargs):
        calls.append(seed)
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt  # the process is stopped during this run
        return real(spec, seed, **kwargs)

    monkeypatch.setattr(phantom, "generate_tomogram", generate)
    return calls


def test_a_stopped_generation_resumes_where_it_stopped(tmp_path, monkeypatch):
    names = synth.synth_run_names("tiny", 4)
    out = tmp_path / "p"
    _counting(monkeypatch, fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        synth.write_synthetic_project(out, "tiny", names, resume=True, progress=False)
    assert not out.exists() and synth.partial_dir(out).is_dir()
    calls = _counting(monkeypatch)
    cfg = synth.write_synthetic_project(out, "tiny", names, resume=True, progress=False)
    assert calls == [synth.run_seed(0, 2), synth.run_seed(0, 3)]  # only the unfinished runs
    assert not synth.partial_dir(out).exists()
    assert sorted(p.name for p in out.iterdir()) == ["copick.json", "cryobench-data.json",
                                                     "overlay"]
    fresh = synth.write_synthetic_project(tmp_path / "q", "tiny", names, progress=False)
    assert (data_fingerprint(open_project(cfg), names)
            == data_fingerprint(open_project(fresh), names))


def test_a_partial_generation_with_other_arguments_is_discarded(tmp_path, monkeypatch):
    names = synth.synth_run_names("tiny", 3)
    out = tmp_path / "p"
    _counting(monkeypatch, fail_at=2)
    with pytest.raises(KeyboardInterrupt):
        synth.write_synthetic_project(out, "tiny", names, resume=True, progress=False)
    calls = _counting(monkeypatch)
    synth.write_synthetic_project(out, "tiny", names, seed=1, resume=True, progress=False)
    assert calls == [synth.run_seed(1, i) for i in range(3)]


def test_split_generation_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYOBENCH_CACHE", str(tmp_path))  # nothing cached yet
    split = load_split("tiny")
    _counting(monkeypatch, fail_at=2)
    with pytest.raises(KeyboardInterrupt):
        split.project(progress=False)
    calls = _counting(monkeypatch)
    again = load_split("tiny")
    again.project(progress=False)
    assert len(calls) == len(again.all_runs) - 1
    assert not list((tmp_path / "splits").glob(".*.partial"))


def test_v2_split_definitions():
    czii = split_definition("czii-synth-v2")
    assert czii["source"]["preset"] == "czii-v2"
    assert (len(czii["train"]), len(czii["val"]), len(czii["test"])) == (4, 1, 24)
    spec = phantom.PRESETS["czii-v2"]
    assert spec.shape == (184, 630, 630) and spec.voxel_spacing == 10.0
    assert czii["tomo_type"] in spec.tomo_types
    byu = split_definition("byu-synth-v2")
    assert byu["source"]["preset"] == "byu-v2" and len(byu["test"]) >= 40
    motor = {n: o["has_motor"] for n, o in byu["source"]["run_options"].items()}
    assert set(motor) == set(byu["train"] + byu["val"] + byu["test"])
    assert sum(motor[n] for n in byu["test"]) * 2 == len(byu["test"])
    for d in (czii, byu):  # never the names or the presets of the first generation
        assert d["name"].endswith("-v2") and d["source"]["preset"].endswith("-v2")
        assert len(set(d["train"] + d["val"] + d["test"])) == sum(
            len(d[r]) for r in ("train", "val", "test"))


def test_snr_v2_ablation_splits_differ_from_czii_synth_v2_only_in_snr():
    from pathlib import Path

    from cryobench.runner.ablate import load_spec

    root = Path(__file__).resolve().parents[1] / "leaderboards" / "ablations"
    spec = load_spec(root / "snr_v2.toml")
    base = split_definition("czii-synth-v2")
    snrs = []
    for path in sorted((root / "splits").glob("czii-synth-v2-snr*.json")):
        d = split_definition(str(path))
        snrs.append(d["source"]["snr"])
        for key in ("task", "metric", "tomo_type", "voxel_spacing", "train", "val", "test"):
            assert d[key] == base[key], key
        assert {k: v for k, v in d["source"].items() if k != "snr"} == {
            k: v for k, v in base["source"].items() if k != "snr"}
    assert len(snrs) == 4 and phantom.PRESETS["czii-v2"].snr not in snrs
    # the default SNR's cell is the official split, so its records are the official ones
    assert spec.base["split"] == "czii-synth-v2" and "czii-synth-v2" in spec.vary["split"]
    assert len(spec.vary["split"]) == 5
