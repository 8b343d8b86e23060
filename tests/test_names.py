"""One rule for names that become paths (cryobench/io/names.py), and each entry point using it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryobench.data import load_split, open_project
from cryobench.data.project import copick_name, create_project
from cryobench.data.synth import write_synthetic_project
from cryobench.errors import ConfigError, DataError, InputError
from cryobench.io.names import MAX_BYTES, MAX_CHARS, child_path, name_problem, safe_component
from cryobench.particles import CZII_PARTICLES

GOOD = ["TS_6_4", "tomo_003acc", "ribosome", "czii-synth", "a b", "16463", "Ünïcode-名前",
        "x" * MAX_CHARS]
BAD = {
    "": "is empty",
    ".": "is not a name",
    "..": "is not a name",
    "../evil": "contains '/'",
    "a/b": "contains '/'",
    "a\\b": "contains '\\\\'",
    "a\x00b": "U+0000",
    "a\nb": "U+000A",
    "red\x1b[31m": "U+001B",
    "abc\u202edcba": "U+202E",  # right-to-left override
    "a:b": "contains ':'",
    "a*": "contains '*'",
    ".hidden": "starts with '.'",
    "-rf": "starts with '-'",
    " padded": "whitespace",
    "padded ": "whitespace",
    "x" * (MAX_CHARS + 1): "characters long",
    "名" * 70: "bytes long",
}


@pytest.mark.parametrize("name", GOOD)
def test_good_names_pass_unchanged(name):
    assert name_problem(name) is None and safe_component(name, "run name") == name


@pytest.mark.parametrize("name", list(BAD), ids=[repr(n)[:20] for n in BAD])
def test_bad_names_are_refused_with_the_reason(name):
    with pytest.raises(InputError, match=re.escape(BAD[name])) as e:
        safe_component(name, "tomo_id in data row 3", "labels.csv")
    assert e.value.path == "labels.csv" and e.value.message.startswith("tomo_id in data row 3 ")
    assert "\n" not in e.value.message and "\x1b" not in e.value.message


def test_non_text_and_error_class():
    with pytest.raises(ConfigError, match="must be text, not int"):
        safe_component(3, "split name", error=ConfigError)
    assert len(("é" * (MAX_BYTES // 2)).encode()) == MAX_BYTES
    assert name_problem("é" * (MAX_BYTES // 2)) is None


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_an_accepted_name_is_one_component_inside_its_root(tmp_path_factory, name):
    root = tmp_path_factory.getbasetemp() / "root"
    if name_problem(name) is None:
        p = root / name
        assert p.parent == root and len(Path(name).parts) == 1
        assert p.resolve().parent == root.resolve()
        assert name == name.strip() and not name.startswith((".", "-"))


def test_child_path_refuses_a_link_leaving_the_root(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    assert child_path(tmp_path / "root", "run", "run name") == tmp_path / "root" / "run"
    with pytest.raises(InputError, match="resolves outside"):
        child_path(tmp_path / "root", "link", "run name")


# ----- entry points -----------------------------------------------------------------------


def _split_file(tmp_path: Path, **changes) -> Path:
    d = {"name": "mine", "task": "particles", "metric": "czii",
         "source": {"kind": "synth", "preset": "tiny", "seed": 0},
         "train": ["TS_a"], "val": [], "test": ["TS_b"]}
    d.update(changes)
    f = tmp_path / "split.json"
    f.write_text(json.dumps(d))
    return f


@pytest.mark.parametrize("changes,words", [
    ({"name": "../../escaped"}, "split name '../../escaped' contains '/'"),
    ({"name": ".."}, "split name '..' is not a name"),
    ({"train": ["../../outside"]}, "run name in 'train'"),
    ({"test": ["TS\n1"]}, "U+000A"),
    ({"folds": [{"train": ["TS_a"], "val": [], "test": ["../x"]}]}, "run name in fold 0"),
])
def test_split_json_names_cannot_leave_the_cache(tmp_path, monkeypatch, changes, words):
    monkeypatch.setenv("CRYOBENCH_CACHE", str(tmp_path / "cache"))
    f = _split_file(tmp_path, **changes)
    with pytest.raises(ConfigError, match=re.escape(words)) as e:
        load_split(str(f)).project(progress=False)
    assert e.value.path == str(f)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split.json"]  # nothing written


@pytest.mark.parametrize("changes,words", [
    ({"source": {"kind": "synth", "preset": "tiny", "seed": -1}}, "source.seed"),
    ({"source": {"kind": "synth", "preset": "tiny", "seed": "x"}}, "source.seed"),
    ({"source": {"kind": "synth", "preset": ["tiny"]}}, "source.preset"),
    ({"voxel_spacing": "ten"}, "voxel_spacing"),
    ({"tomo_type": "../wbp"}, "tomo_type"),
    ({"folds": {"train": []}}, "'folds' must be a list"),
    ({"assign": {"val_fraction": 0.9, "test_fraction": 0.9}}, "sum of at most 1"),
])
def test_split_json_bad_values_are_config_errors(tmp_path, changes, words):
    with pytest.raises(ConfigError, match=words):
        load_split(str(_split_file(tmp_path, **changes)))


def test_synthetic_run_names_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="run name '../x' contains '/'"):
        write_synthetic_project(tmp_path / "out", "tiny", ["TS_1", "../x"], progress=False)
    assert not (tmp_path / "out").exists() and sorted(tmp_path.iterdir()) == []
    with pytest.raises(DataError, match="file system root"):
        write_synthetic_project("/", "tiny", ["TS_1"], progress=False)


def test_copick_names_and_written_run_names(tmp_path):
    assert copick_name("unet_per_particle") == "unet-per-particle"
    with pytest.raises(DataError, match="is not a name"):
        copick_name("..")
    w = create_project(tmp_path / "copick.json", tmp_path / "overlay", CZII_PARTICLES)
    with pytest.raises(DataError, match="run name '../../x'"):
        w.add_run("../../x", np.zeros((4, 4, 4), np.float32), 10.0, None)
    with pytest.raises(DataError, match="run name"):
        w.add_picks("..", None)
    assert not (tmp_path / "x").exists()


def test_pickable_object_name_from_a_config_is_checked(tmp_path):
    """An object name becomes part of every prediction file name: no separators."""
    (tmp_path / "overlay").mkdir()
    cfg = {"config_type": "filesystem", "name": "x",
           "overlay_root": "local://" + str(tmp_path / "overlay"),
           "pickable_objects": [{"name": "..", "is_particle": True, "label": 1,
                                 "radius": 150.0}]}
    (tmp_path / "copick.json").write_text(json.dumps(cfg))
    with pytest.raises(DataError, match="pickable object name '..' is not a name"):
        _ = open_project(tmp_path / "copick.json").particles
    cfg["pickable_objects"][0]["name"] = "a/b"  # copick's own check, reported in one line
    (tmp_path / "copick.json").write_text(json.dumps(cfg))
    with pytest.raises(DataError, match=r"pickable_objects\.0\.name: .*invalid characters"):
        open_project(tmp_path / "copick.json")
