"""`cryobench data init-split`: split JSONs for a user's own copick project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from copick_builders import OBJECTS
from copick_builders import copick_project as _copick_project
from copick_builders import croissant_project as _croissant
from hypothesis import given, settings
from hypothesis import strategies as st

from cryobench.cli import cli
from cryobench.data import load_split, open_project
from cryobench.data.split_init import assign_by_fractions
from cryobench.data.splits import split_part_runs
from cryobench.errors import ConfigError, DataError

RUNS = ("TS_a", "TS_b", "TS_c", "TS_d", "TS_e")


@pytest.fixture(scope="module")
def project_cfg(tmp_path_factory) -> Path:
    return _copick_project(tmp_path_factory.mktemp("own"), OBJECTS[:2], runs=RUNS)


def _init(*args):
    return CliRunner().invoke(cli, ["data", "init-split", *map(str, args)])


def test_listed_roles_write_a_loadable_split(project_cfg, tmp_path):
    out = tmp_path / "mine.json"
    r = _init(project_cfg, "--out", out, "--train", "TS_a,TS_b", "--train", "TS_c",
              "--val", "TS_d", "--test", "TS_e")
    assert r.exit_code == 0, r.output
    assert r.output.strip() == (f"wrote split 'mine' (czii; train/val/test 3/1/1) to {out}; "
                                f"use --split {out}")
    d = json.loads(out.read_text())
    assert d["source"] == {"kind": "copick", "config": str(project_cfg.resolve())}
    assert (d["train"], d["val"], d["test"]) == (["TS_a", "TS_b", "TS_c"], ["TS_d"], ["TS_e"])
    assert (d["task"], d["metric"], d["created"]) == ("particles", "czii", {"method": "listed"})
    split = load_split(str(out))
    assert split.solution("test")["experiment"].unique().tolist() == ["TS_e"]
    assert {p.name: p.weight for p in split.particles} == {"ribosome": 3.0, "proteasome": 0.5}
    assert len(split.fingerprint) == 64
    # the split's parts restrict `score --copick` runs
    assert split_part_runs(str(out), "train", open_project(project_cfg)) == ["TS_a", "TS_b",
                                                                           "TS_c"]


def test_config_below_the_split_file_is_stored_relative(project_cfg):
    out = project_cfg.parent / "splits" / "rel.json"
    out.parent.mkdir()
    assert _init(project_cfg, "--out", out, "--test", "TS_a").exit_code == 0
    assert json.loads(out.read_text())["source"]["config"] == "../copick.json"
    assert load_split(str(out)).test == ["TS_a"]


def test_fractions_are_seeded_and_recorded(project_cfg, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for out, seed in ((a, 3), (b, 3)):
        r = _init(project_cfg, "--out", out, "--fractions", "0.6,0.2,0.2", "--seed", seed)
        assert r.exit_code == 0, r.output
    da, db = json.loads(a.read_text()), json.loads(b.read_text())
    assert {k: da[k] for k in ("train", "val", "test")} == {k: db[k] for k in
                                                           ("train", "val", "test")}
    assert [len(da[k]) for k in ("train", "val", "test")] == [3, 1, 1]
    assert da["created"]["fractions"] == [0.6, 0.2, 0.2] and da["created"]["seed"] == 3
    # the seed matters: ten seeds do not all draw the same test run
    assert len({tuple(assign_by_fractions(list(RUNS), [0.6, 0.2, 0.2], s)["test"])
                for s in range(10)}) > 1


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 30), weights=st.tuples(*[st.integers(0, 10)] * 3),
       seed=st.integers(0, 2**31))
def test_fraction_assignment_properties(n, weights, seed):
    runs = [f"TS_{i}" for i in range(n)]
    total = sum(weights)
    if total == 0:
        return
    fr = [w / total for w in weights]
    try:
        roles = assign_by_fractions(runs, fr, seed)
    except ConfigError as exc:
        if fr[2] == 0:
            assert "test fraction must be > 0" in str(exc)
        else:
            assert "too few" in str(exc) or "without a role" in str(exc)
        return
    assert fr[2] > 0
    got = [r for role in roles.values() for r in role]
    assert sorted(got) == sorted(runs)  # a partition of the runs
    assert len(set(got)) == n
    assert roles["test"]  # test is never empty
    for role, f in zip(("train", "val", "test"), fr, strict=True):
        if f == 0 and role != "train":
            assert roles[role] == []
        if n >= 10 and role in ("val", "test"):
            assert abs(len(roles[role]) - f * n) <= 1.5  # rounded, nudged by at most one
    assert assign_by_fractions(runs, fr, seed) == roles


def test_bad_input_is_one_line_exit_2(project_cfg, tmp_path):
    out = tmp_path / "x.json"
    cases = [
        (["--test", "TS_a", "--name", "../evil"], "invalid split name '../evil'"),
        (["--test", "TS_a", "--name", "a/b"], "invalid split name 'a/b'"),
        (["--train", "TS_a", "--test", "TS_a"], "run 'TS_a' is in both train and test"),
        (["--test", "TS_zz"], "unknown run(s) 'TS_zz'"),
        (["--train", "TS_a"], "the test role is empty"),
        (["--test", "TS_a", "--fractions", "0.5,0.5,0"], "not both"),
        (["--fractions", "0.5,0.6,0"], "must sum to 1"),
        (["--fractions", "a,b,c"], "needs numbers"),
        ([], "give the runs of each role"),
        (["--test", "TS_a", "--tomo-type", "wbp"], "no tomogram type 'wbp'"),
    ]
    for args, message in cases:
        r = _init(project_cfg, "--out", out, *args)
        assert r.exit_code == 2, (args, r.output)
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], args
        assert not out.exists()
    out.write_text("{}")
    r = _init(project_cfg, "--out", out, "--test", "TS_a")
    assert r.exit_code == 2 and "pass --force" in r.output
    assert _init(project_cfg, "--out", out, "--test", "TS_a", "--force").exit_code == 0
    r = _init(project_cfg, "--out", tmp_path / "x.txt", "--test", "TS_a")
    assert r.exit_code == 2 and "must end in .json" in r.output


def test_motor_project_defaults_to_byu(tmp_path):
    cfg = _copick_project(tmp_path, [{"name": "flagellar-motor", "is_particle": True,
                                      "radius": 250, "label": 1}], runs=("tomo_a", "tomo_b"))
    out = tmp_path / "m.json"
    assert _init(cfg, "--out", out, "--train", "tomo_a", "--test", "tomo_b").exit_code == 0
    split = load_split(str(out))
    assert (split.task, split.metric) == ("motor", "byu")
    assert split.byu_solution("test")["tomo_id"].tolist() == ["tomo_b"]


def test_croissant_split_column_becomes_the_roles(tmp_path):
    manifest = _croissant(tmp_path, {"train": ["TS_a"], "validation": ["TS_b"],
                                     "test": ["TS_c"]})
    out = tmp_path / "pop.json"
    r = _init(manifest, "--out", out)
    assert r.exit_code == 0, r.output
    d = json.loads(out.read_text())
    assert (d["train"], d["val"], d["test"]) == (["TS_a"], ["TS_b"], ["TS_c"])
    assert d["created"] == {"method": "croissant"}
    assert d["source"]["config"] == "proj/Croissant/metadata.json"
    split = load_split(str(out))
    assert split.runs("test")[0].tomogram().shape == (16, 32, 32)
    assert split.solution("val")["experiment"].unique().tolist() == ["TS_b"]


def test_croissant_extra_split_names_become_parts(tmp_path):
    manifest = _croissant(tmp_path, {"train": ["TS_a"], "test": ["TS_b"],
                                     "holdout": ["TS_c"]})
    out = tmp_path / "pop.json"
    assert _init(manifest, "--out", out).exit_code == 0
    assert json.loads(out.read_text())["parts"] == {"holdout": ["TS_c"]}
    assert load_split(f"{out}/holdout").test == ["TS_c"]
    with pytest.raises(ConfigError, match="no part 'nope'"):
        load_split(f"{out}/nope")


def test_split_part_runs_checks_the_project(project_cfg, tmp_path):
    other = _copick_project(tmp_path, OBJECTS[:1], runs=("TS_a",))
    out = tmp_path / "s.json"
    assert _init(project_cfg, "--out", out, "--train", "TS_b", "--test", "TS_a").exit_code == 0
    assert split_part_runs(str(out), "test", open_project(other)) == ["TS_a"]
    with pytest.raises(DataError, match="part 'train' has run\\(s\\) the project lacks: TS_b"):
        split_part_runs(str(out), "train", open_project(other))
    with pytest.raises(ConfigError, match="unknown role 'dev'"):
        split_part_runs(str(out), "dev", open_project(project_cfg))
    # a synthetic split's roles are its listed runs
    with pytest.raises(DataError, match="TS_tiny_4"):
        split_part_runs("tiny", "test", open_project(other))
