"""Run records (schema 2, and the migration from schema 1): validation, upgrades, atomic I/O,
the results store, environment."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from cryobench.errors import ResultsError
from cryobench.runner import env, record, store


def make_v1(**changes) -> dict:
    """A schema-1 record as written before schema 2 (the committed records are of this kind)."""
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


def make_record(**changes) -> dict:
    """The JSON form of a current (schema 2) record."""
    rec = record.upgrade(make_v1())
    rec.update(changes)
    return rec


def test_valid_record_round_trips_atomically(tmp_path):
    path = tmp_path / "a" / "record.json"
    rec = record.RunRecord.from_dict(make_record())
    rec.save(path)
    loaded = record.RunRecord.load(path)
    assert loaded == rec and loaded.to_dict() == make_record()
    assert loaded.path == path and loaded.directory == path.parent
    assert loaded.predictions_path == path.parent / "predictions.csv"
    assert [p.name for p in path.parent.iterdir()] == ["record.json"]  # no temp files left


def test_write_refuses_an_invalid_record_and_leaves_no_file(tmp_path):
    path = tmp_path / "record.json"
    rec = record.RunRecord.from_dict(make_record())
    rec.score = float("nan")  # NaN is stored as null, which is not a score
    with pytest.raises(ResultsError, match="'score' should be number"):
        rec.save(path)
    assert not path.exists()
    with pytest.raises(TypeError, match="RunRecord"):
        record.write(path, make_record())  # the JSON form is not a record


@pytest.mark.parametrize("change, message", [
    ({"score": "high"}, "'score' should be number"),
    ({"seed": True}, "'seed' should be integer"),
    ({"seed": 1.5}, "'seed' should be integer"),
    ({"status": "running"}, "only complete runs"),
    ({"metric": "f1"}, "unknown metric"),
    ({"task": "membranes"}, "unknown task"),
    ({"budget": "huge"}, "unknown budget"),
    ({"precision": "fp8"}, "unknown precision"),
    ({"metrics": {"byu": {}}}, "no 'czii' entry"),
    ({"metrics": {"czii": {}, "map": [1]}}, "metrics.map should be an object"),
    ({"config_hash": "0" * 64}, "config_hash does not match"),
    ({"started_at": "yesterday"}, "ISO 8601"),
    ({"predictions": "/etc/passwd"}, "relative"),
    ({"predictions": "../x.csv"}, "relative"),
    ({"model": "../../elsewhere"}, "relative"),
    ({"timings": {"fit_s": 1.0, "predict_s": -1, "score_s": 0, "total_s": 1}}, "predict_s"),
    ({"counts": [{"experiment": "a", "particle_type": "b", "tp": 1, "fp": 0}]}, "counts"),
    ({"counts": [{"experiment": "a", "particle_type": "b", "tp": 1.5, "fp": 0, "fn": 0}]},
     "counts\\[0\\].tp"),
    ({"counts": [{"experiment": "a", "particle_type": "b", "tp": 10**30, "fp": 0, "fn": 0}]},
     "counts\\[0\\].tp"),
    ({"counts": [{"experiment": "a", "particle_type": "b", "tp": 1e30, "fp": 0, "fn": 0}]},
     "counts\\[0\\].tp"),
    ({"counts": [{"experiment": ["a"], "particle_type": "b", "tp": 1, "fp": 0, "fn": 0}]},
     "counts\\[0\\].experiment"),
    ({"environment": {"python": "3.11"}}, "environment has no"),
    ({"score": float("nan")}, "not finite"),
    ({"params": {"beta": float("nan")}}, "params.beta is not a finite number"),
    ({"params": {"beta": -4}}, "params.beta should be a number > 0"),
    ({"params": {"weights": {"ribosome": float("inf")}}}, "params.weights.ribosome"),
    ({"params": {"weights": {"ribosome": "heavy"}}}, "params.weights should map"),
    ({"params": {"weights": [1, 2]}}, "params.weights should map"),
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
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ResultsError, match="not valid JSON"):
        record.load(deep)


def test_nan_in_a_record_file_is_named(tmp_path):
    path = tmp_path / "record.json"
    text = json.dumps(make_record(), allow_nan=True).replace('"beta": 4', '"beta": NaN')
    path.write_text(text)
    with pytest.raises(ResultsError, match="params.beta is not a finite number"):
        record.load(path)


def test_newer_schema_version_is_refused():
    with pytest.raises(ResultsError, match="newer than this cryobench"):
        record.upgrade(make_record(schema_version=3))
    with pytest.raises(ResultsError, match="invalid schema_version"):
        record.upgrade(make_record(schema_version="1"))


def test_v1_records_load_unchanged_with_the_schema_2_keys_filled_in(tmp_path):
    v1 = make_v1()
    path = tmp_path / "record.json"
    path.write_text(json.dumps(v1))
    rec = record.load(path)
    assert rec.schema_version == 2
    as_dict = rec.to_dict()
    for key, value in v1.items():  # every schema-1 key keeps its value
        if key != "schema_version":
            assert as_dict[key] == value, key
    assert rec.model is None and rec.copick is None and rec.peak_gpu_memory_mb is None
    assert rec.precision is None  # config without a precision field: unknown


@pytest.mark.parametrize("config_precision, native, expected", [
    ("auto", True, "bf16"), ("auto", False, "fp32"), ("auto", None, None),
    ("fp32", True, "fp32"), ("bf16", False, "bf16"),
])
def test_v1_precision_is_what_auto_used_on_that_cpu(config_precision, native, expected):
    config = {"epochs": 2, "precision": config_precision}
    env_ = {"python": "3.11", "platform": "linux", "torch": "2.14", "cuda": None,
            "device_name": "x86_64", "cpu_count": 2}
    if native is not None:
        env_["cpu_native_bf16"] = native
    v1 = make_v1(config=config, config_hash=record.config_hash(config), environment=env_)
    assert record.RunRecord.from_dict(v1).precision == expected


def test_committed_records_all_load():
    """Every committed record (schema 1) loads through the migration, with its stored score."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "leaderboards"
    files = sorted(root.rglob("record.json"))
    assert files, "no committed records found"
    for f in files:
        raw = json.loads(f.read_text())
        rec = record.load(f)
        assert rec.score == raw["score"] and rec.config_hash == raw["config_hash"], f
        assert [c.to_dict() for c in rec.counts] == raw["counts"], f


def test_typed_accessors():
    rec = record.RunRecord.from_dict(make_record(
        metrics={"czii": {"score": 0.5}, "map": {"per_class": {"ribosome": {"ap": 0.25}}},
                 "diagnostics": {"duplicate_rate": 0.1}, "method": {"val_objective": 0.3}}))
    assert rec.class_ap("ribosome") == 0.25 and rec.class_ap("apo-ferritin") is None
    assert rec.diagnostics == {"duplicate_rate": 0.1}
    assert rec.method_metrics == {"val_objective": 0.3}
    assert rec.beta == 4.0 and rec.weights == {}
    assert rec.count_rows() == make_v1()["counts"]


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


def save(path, **changes):
    return record.RunRecord.from_dict(make_record(**changes)).save(path)


# ----- store ------------------------------------------------------------------------------------
def test_run_dir_layout(tmp_path):
    h = "ab" * 32
    assert store.run_dir(tmp_path, "tiny", "unet3d", h, 3) == (
        tmp_path / "tiny" / "unet3d" / h[:12] / "seed-3")


def test_iter_records_reports_bad_files_and_skips_auxiliary_ones(tmp_path):
    good = store.run_dir(tmp_path, "tiny", "toy", "a" * 64, 0) / "record.json"
    save(good)
    save(good.parent.parent / "seed-1" / "record.json", seed=1)
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
    assert [r.seed for _, r in found] == [0, 1]
    bad = dict(errors)
    assert set(bad) == {corrupt, foreign}
    assert "not valid JSON" in bad[corrupt]
    assert "not a cryobench run record" in bad[foreign]

    records, errors2 = store.load_records(tmp_path)
    assert len(records) == 2 and len(errors2) == 2
    # a single file works too
    assert [r.seed for _, r in store.iter_records(good)] == [0]


def test_iter_records_on_a_missing_directory(tmp_path):
    with pytest.raises(ResultsError, match="not found"):
        list(store.iter_records(tmp_path / "nope"))


def test_read_complete(tmp_path):
    assert store.read_complete(tmp_path) is None
    save(tmp_path / "record.json")
    assert store.read_complete(tmp_path).method == "toy"


def test_unreadable_directories_are_reported_not_dropped(tmp_path, monkeypatch):
    import os

    save(store.run_dir(tmp_path, "tiny", "toy", "a" * 64, 0) / "record.json")
    locked = tmp_path / "locked"
    (locked / "seed-0").mkdir(parents=True)
    real = os.scandir

    def scandir(path="."):  # what a directory without read permission does (even for root)
        if os.fspath(path) == os.fspath(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    errors: list = []
    found = list(store.iter_records(tmp_path, errors))
    assert len(found) == 1
    assert [p for p, _ in errors] == [locked] and "unreadable directory" in errors[0][1]


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


def test_git_sha_is_dirty_only_when_the_code_changes(tmp_path):
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                       check=True, capture_output=True)

    (tmp_path / "cryobench").mkdir()
    (tmp_path / "cryobench" / "a.py").write_text("x = 1\n")
    (tmp_path / "leaderboards").mkdir()
    (tmp_path / "leaderboards" / "record.json").write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "init")
    clean = env.git_sha(tmp_path)
    assert clean is not None and len(clean) == 40
    (tmp_path / "leaderboards" / "record.json").write_text('{"score": 1}\n')
    assert env.git_sha(tmp_path) == clean  # a rewritten record is not a code change
    (tmp_path / "cryobench" / "a.py").write_text("x = 2\n")
    assert env.git_sha(tmp_path) == clean + "+dirty"
