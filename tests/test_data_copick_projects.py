"""Any copick project: weights from object metadata, motor projects, run selection, the pick
inventory behind ``score --copick``'s errors, Croissant manifests. Projects are built with
copick's own API (``copick.new_config``, ``root.new_run``...), not with cryobench's writer."""

from __future__ import annotations

import json

import pytest
from copick_builders import OBJECTS
from copick_builders import copick_project as _copick_project
from copick_builders import croissant_project as _croissant

from cryobench.data import open_project
from cryobench.data.project import object_weight
from cryobench.errors import DataError


def test_weights_and_radii_come_from_the_objects(tmp_path):
    cfg = _copick_project(tmp_path, OBJECTS)
    # a top-level score_weight (copick's model drops it; cryobench reads the config JSON)
    data = json.loads(cfg.read_text())
    data["pickable_objects"][3]["score_weight"] = 4
    cfg.write_text(json.dumps(data))
    parts = {p.name: p for p in open_project(cfg).particles}
    assert set(parts) == {"ribosome", "proteasome", "apo-ferritin", "mystery"}  # no membrane
    assert parts["ribosome"].weight == 3 and parts["ribosome"].radius == 150
    assert parts["proteasome"].weight == 0.5 and parts["proteasome"].radius == 80
    assert parts["apo-ferritin"].weight == 1.0  # no declaration: the CZII weight of the name
    assert parts["mystery"].weight == 4


def test_weight_lookup_order_and_bad_weights():
    from copick.models import PickableObject

    obj = PickableObject(name="a", is_particle=True, radius=1,
                         metadata={"score_weight": 2, "weight": 5})
    assert object_weight(obj, {"score_weight": 7}) == 2.0
    bare = PickableObject(name="b", is_particle=True, radius=1)
    assert object_weight(bare, None) is None
    assert object_weight(bare, {"weight": 0}) == 0.0
    for bad in (-1, "2", float("nan"), True):
        with pytest.raises(DataError, match="must be a number >= 0"):
            object_weight(PickableObject(name="c", is_particle=True, radius=1,
                                         metadata={"score_weight": bad}), None, "cfg.json")


def test_bad_weight_in_a_config_is_one_line_error(tmp_path):
    from click.testing import CliRunner

    from cryobench.cli import cli

    cfg = _copick_project(tmp_path, [dict(OBJECTS[0], metadata={"score_weight": -2})],
                          runs=("TS_a",))
    result = CliRunner().invoke(cli, ["data", "init-split", str(cfg), "--out",
                                      str(tmp_path / "s.json"), "--test", "TS_a"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {cfg}: pickable object 'ribosome': metadata.score_weight must be a number "
        ">= 0, got -2"]


def test_motor_projects_by_name_or_config_key(tmp_path):
    motor = _copick_project(tmp_path / "m", [{"name": "flagellar-motor", "is_particle": True,
                                              "radius": 250, "label": 1}], runs=("tomo_a",))
    project = open_project(motor)
    assert (project.task, project.metric) == ("motor", "byu")
    other = _copick_project(tmp_path / "o", [{"name": "bacterial-motor", "is_particle": True,
                                              "radius": 250, "label": 1}], runs=("tomo_a",))
    assert open_project(other).task == "particles"
    data = json.loads(other.read_text())
    data["cryobench"] = {"task": "motor"}
    other.write_text(json.dumps(data))
    assert open_project(other).metric == "byu"
    data["cryobench"] = {"task": "segmentation"}
    other.write_text(json.dumps(data))
    with pytest.raises(DataError, match="cryobench.task must be one of particles, motor"):
        open_project(other).task  # noqa: B018


def test_select_runs(tmp_path):
    project = open_project(_copick_project(tmp_path, OBJECTS[:1]))
    assert project.select_runs(None) == ["TS_a", "TS_b", "TS_c"]
    assert project.select_runs(["TS_c", "TS_a", "TS_c"]) == ["TS_c", "TS_a"]
    with pytest.raises(DataError,
                       match=r"unknown run\(s\) 'TS_x' \(did you mean TS_.*; runs: TS_a, TS_b"):
        project.select_runs(["TS_a", "TS_x"])


def test_pick_inventory_and_unknown_session_errors(tmp_path):
    cfg = _copick_project(tmp_path, OBJECTS[:2], picks={
        ("cryobench", "unet3d-650780c4-s0"): {"ribosome": [[1, 2, 3], [4, 5, 6]],
                                              "proteasome": []},
        ("cryobench", "deepfindet-1a2b3c4d-s0"): {"ribosome": [[7, 8, 9]]},
    })
    project = open_project(cfg)
    inv = project.pick_sessions()
    rows = {(r.user, r.session): (r.runs, r.files, r.picks) for r in inv.itertuples()}
    assert rows == {("cryobench", "deepfindet-1a2b3c4d-s0"): (3, 3, 3),
                    ("cryobench", "unet3d-650780c4-s0"): (3, 6, 6),
                    ("curation", "0"): (3, 6, 6)}
    assert project.pick_sessions(["TS_b"])["runs"].tolist() == [1, 1, 1]
    project.require_picks("cryobench", "unet3d-650780c4-s0")
    project.require_picks("cryobench")  # any session
    with pytest.raises(DataError) as exc:
        project.require_picks("cryobench", "unet3d")
    msg = str(exc.value)
    assert msg.startswith(f"{cfg}: no picks of user 'cryobench', session 'unet3d' "
                          "(did you mean session unet3d-650780c4-s0?); users/sessions with "
                          "picks: cryobench/deepfindet-1a2b3c4d-s0 (3 runs, 3 picks)")
    assert "curation/0 (3 runs, 6 picks)" in msg
    with pytest.raises(DataError, match="no picks of user 'someone'"):
        project.require_picks("someone")
    with pytest.raises(DataError, match="in the 1 selected run"):
        project.require_picks("cryobench", "nope", runs=["TS_a"])
    with pytest.raises(DataError, match="unknown run"):
        project.require_picks("cryobench", runs=["TS_q"])


def test_empty_prediction_files_count_as_picks_present(tmp_path):
    """A method that predicted nothing wrote (empty) files: scoring it is an honest 0, not an
    error; only a session without any file is refused."""
    cfg = _copick_project(tmp_path, OBJECTS[:1], runs=("TS_a",),
                          picks={("cryobench", "empty"): {"ribosome": []}})
    project = open_project(cfg)
    project.require_picks("cryobench", "empty")
    assert project.read_picks(user="cryobench", session="empty").empty


# ---------------------------------------------------------------- Croissant


def test_croissant_manifest_opens_like_a_config(tmp_path):
    manifest = _croissant(tmp_path, {"train": ["TS_a"], "val": ["TS_b"], "test": ["TS_c"]})
    project = open_project(manifest)
    assert project.runs == ["TS_a", "TS_b", "TS_c"]
    assert {p.name: p.weight for p in project.particles} == {"ribosome": 3.0,
                                                             "proteasome": 0.5}
    handle = project.run("TS_b")
    assert handle.tomogram().shape == (16, 32, 32) and handle.voxel_spacing == 10.0
    truth = project.read_picks(["TS_b"])
    assert truth[["x", "y", "z"]].to_numpy().tolist() == [[101.0, 120.0, 50.0]] * 2
    from cryobench.data.croissant import roles_from_croissant

    assert roles_from_croissant(project) == ({"train": ["TS_a"], "val": ["TS_b"],
                                              "test": ["TS_c"]}, {})


def test_croissant_errors(tmp_path):
    bare = tmp_path / "metadata.json"
    bare.write_text(json.dumps({"@context": {"@vocab": "https://schema.org/"},
                                "conformsTo": "http://mlcommons.org/croissant/1.1",
                                "name": "x", "recordSet": []}))
    with pytest.raises(DataError, match="without 'copick:config'"):
        open_project(bare)
    manifest = _croissant(tmp_path / "p", {"training": ["TS_a"], "train": ["TS_b"],
                                           "test": ["TS_c"]})
    from cryobench.data.croissant import roles_from_croissant

    with pytest.raises(DataError, match="both mean 'train'"):
        roles_from_croissant(open_project(manifest))
