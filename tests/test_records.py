"""Run records (schema v1): validation, upgrades, atomic I/O, the results store, environment."""

from __future__ import annotations

import copy
import hashlib
import json

import numpy as np
import pytest

from cryobench.errors import ResultsError
from cryobench.runner import env, record, store


def make_record(**changes) -> dict:
    config = {"epochs": 2, "lr": 0.001, "channels": [32, 64], "amp": False}
    rec = {
        "schema_version": 1,
        "cryobench_version": "0.1.0",
        "git_sha": None,
        "method": "toy",
        "split": "tiny",
        "task": "particles",
        "seed": 0,
        "budget": "smoke",
        "device": "cpu",
        "config": config,
        "config_hash": record.config_hash(config),
        "dataset_fingerprint": "abc123",
        "environment": {"python": "3.11", "platform": "linux", "torch": "2.14", "cuda": None,
                        "device_name": "x86_64", "cpu_count": 2},
        "timings": {"fit_s": 1.0, "predict_s": 0.5, "score_s": 0.1, "total_s": 1.7},
        "peak_memory_mb": 512.0,
        "started_at": "2025-01-31T12:00:00Z",
        "finished_at": "2025-01-31T12:00:02Z",
        "metric": "czii",
        "score": 0.5,
        "metrics": {"czii": {"score": 0.5}},
        "counts": [{"experiment": "TS_1", "particle_type": "ribosome", "tp": 3, "fp": 1,
                    "fn": 0}],
        "params": {"beta": 4, "distance_multiplier": 0.5, "matching": "kaggle"},
        "predictions": "predictions.csv",
        "status": "complete",
    }
    rec.update(changes)
    return rec


def test_valid_record_round_trips_atomically(tmp_path):
    path = tmp_path / "a" / "record.json"
    rec = make_record()
    record.write(path, rec)
    assert record.load(path) == rec
    assert [p.name for p in path.parent.iterdir()] == ["record.json"]  # no temp files left


def test_write_refuses_an_invalid_record_and_leaves_no_file(tmp_path):
    path = tmp_path / "record.json"
    with pytest.raises(ResultsError, match="missing key"):
        record.write(path, {k: v for k, v in make_record().items() if k != "score"})
    assert not path.exists()


@pytest.mark.parametrize("change, message", [
    ({"score": "high"}, "'score' should be number"),
    ({"seed": True}, "'seed' should be integer"),
    ({"seed": 1.5}, "'seed' should be integer"),
    ({"status": "running"}, "only complete runs"),
    ({"metric": "f1"}, "unknown metric"),
    ({"task": "membranes"}, "unknown task"),
    ({"budget": "huge"}, "unknown budget"),
    ({"metrics": {"byu": {}}}, "no 'czii' entry"),
    ({"config_hash": "0" * 64}, "config_hash does not match"),
    ({"started_at": "yesterday"}, "ISO 8601"),
    ({"predictions": "/etc/passwd"}, "relative"),
    ({"predictions": "../x.csv"}, "relative"),
    ({"timings": {"fit_s": 1.0, "predict_s": -1, "score_s": 0, "total_s": 1}}, "predict_s"),
    ({"counts": [{"experiment": "a", "particle_type": "b", "tp": 1, "fp": 0}]}, "counts"),
    ({"counts": [{"experiment": "a", "particle_type": "b", "tp": 1.5, "fp": 0, "fn": 0}]},
     "counts\\[0\\].tp"),
    ({"environment": {"python": "3.11"}}, "environment has no"),
    ({"score": float("nan")}, "not finite"),
])
def test_validate_names_the_problem_and_the_file(change, message):
    with pytest.raises(ResultsError, match=message) as info:
        record.validate(make_record(**change), "some/record.json")
    assert str(info.value).startswith("some/record.json: invalid run record")


@pytest.mark.parametrize("foreign", [[1, 2], {"hello": "world"}, "text", None])
def test_foreign_json_is_not_a_record(foreign):
    with pytest.raises(ResultsError, match="not a cryobench run record"):
        record.validate(foreign, "x.json")


def test_load_reports_corrupt_json_with_its_path(tmp_path):
    path = tmp_path / "record.json"
    path.write_text(json.dumps(make_record())[:-20])  # truncated
    with pytest.raises(ResultsError, match="not valid JSON") as info:
        record.load(path)
    assert info.value.path == str(path)
    with pytest.raises(ResultsError, match="not found"):
        record.load(tmp_path / "missing.json")


def test_newer_schema_version_is_refused():
    with pytest.raises(ResultsError, match="newer than this cryobench"):
        record.upgrade(make_record(schema_version=2))
    with pytest.raises(ResultsError, match="invalid schema_version"):
        record.upgrade(make_record(schema_version="1"))


def test_v1_upgrade_is_a_no_op():
    rec = make_record()
    assert record.upgrade(copy.deepcopy(rec)) == rec


def test_upgrade_hook_runs_on_load(tmp_path, monkeypatch):
    """A future v2 adds a key; v1 files on disk are upgraded when loaded."""
    def v1_to_v2(rec):
        rec["schema_version"] = 2
        rec["new_key"] = "filled-in"
        return rec

    path = tmp_path / "record.json"
    record.write(path, make_record())
    monkeypatch.setattr(record, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(record.UPGRADES, 1, v1_to_v2)
    loaded = record.load(path)
    assert loaded["schema_version"] == 2 and loaded["new_key"] == "filled-in"


def test_config_hash_is_sha256_of_canonical_json():
    a = {"b": 1, "a": (1, 2), "c": 0.1}
    assert record.config_hash(a) == record.config_hash({"c": 0.1, "a": [1, 2], "b": 1})
    expected = hashlib.sha256(b'{"a":[1,2],"b":1,"c":0.1}').hexdigest()
    assert record.config_hash(a) == expected
    assert record.config_hash({"b": 2, "a": (1, 2), "c": 0.1}) != expected


def test_jsonable_converts_numpy_and_non_finite():
    out = record.jsonable({"a": np.float32(0.5), "b": np.int64(3), "c": np.array([1, 2]),
                           "d": float("nan"), "e": (1, "x")})
    assert out == {"a": 0.5, "b": 3, "c": [1, 2], "d": None, "e": [1, "x"]}
    assert isinstance(out["b"], int)
    with pytest.raises(TypeError, match="cannot store"):
        record.jsonable({"x": object()})


def test_utc_now_is_iso_utc():
    now = record.utc_now()
    assert now.endswith("Z") and "T" in now
    record.validate(make_record(started_at=now, finished_at=now))


# ----- store ------------------------------------------------------------------------------------
def test_run_dir_layout(tmp_path):
    h = "ab" * 32
    assert store.run_dir(tmp_path, "tiny", "unet3d", h, 3) == (
        tmp_path / "tiny" / "unet3d" / h[:12] / "seed-3")


def test_iter_records_reports_bad_files_and_skips_auxiliary_ones(tmp_path):
    good = store.run_dir(tmp_path, "tiny", "toy", "a" * 64, 0) / "record.json"
    record.write(good, make_record())
    record.write(good.parent.parent / "seed-1" / "record.json", make_record(seed=1))
    # auxiliary files of a run directory are not records
    (good.parent / "config.json").write_text("{}")
    (good.parent / "model").mkdir()
    (good.parent / "model" / "method.json").write_text("{}")
    (good.parent / "model" / "thresholds.json").write_text("{}")
    (good.parent / ".record.json.tmp123.json").write_text("{")  # interrupted atomic write
    corrupt = tmp_path / "tiny" / "toy" / "x" / "seed-0" / "record.json"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_text("{not json")
    foreign = tmp_path / "notes.record.json"
    foreign.write_text(json.dumps({"some": "thing"}))
    (tmp_path / "ablation.json").write_text("{}")  # other JSON files are not records

    errors: list = []
    found = list(store.iter_records(tmp_path, errors))
    assert sorted(p for p, _ in found) == [good, good.parent.parent / "seed-1" / "record.json"]
    assert [r["seed"] for _, r in found] == [0, 1]
    bad = dict(errors)
    assert set(bad) == {corrupt, foreign}
    assert "not valid JSON" in bad[corrupt]
    assert "not a cryobench run record" in bad[foreign]

    records, errors2 = store.load_records(tmp_path)
    assert len(records) == 2 and len(errors2) == 2
    # a single file works too
    assert [r["seed"] for _, r in store.iter_records(good)] == [0]


def test_iter_records_on_a_missing_directory(tmp_path):
    with pytest.raises(ResultsError, match="not found"):
        list(store.iter_records(tmp_path / "nope"))


def test_read_complete(tmp_path):
    assert store.read_complete(tmp_path) is None
    record.write(tmp_path / "record.json", make_record())
    assert store.read_complete(tmp_path)["method"] == "toy"


# ----- environment -------------------------------------------------------------------------------
def test_environment_capture():
    e = env.capture_environment("cpu")
    assert set(record.ENVIRONMENT_KEYS) <= set(e)
    assert e["cuda"] is None and e["cpu_count"] >= 1
    import torch  # noqa: F401  (a run imports it; the record then says how "auto" resolves)

    from cryobench.methods.engine.training import native_bf16, resolve_precision
    e = env.capture_environment("cpu")
    assert e["cpu_native_bf16"] is native_bf16()
    assert resolve_precision("auto", "cpu") == "fp32"  # on every CPU
    assert env.peak_memory_mb() > 10
    assert env.peak_gpu_memory_mb("cpu") is None
    sha = env.git_sha()
    assert sha is None or len(sha.split("+")[0]) == 40
