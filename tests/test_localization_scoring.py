"""Localization and orientation error wired through the metric registry, ``cryobench score``,
the runner's records, copick projects and the leaderboard's method pages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.spatial.transform import Rotation

from cryobench.cli import cli
from cryobench.coords import ROTATION_COLUMNS, with_rotations
from cryobench.metrics.params import MetricParams
from cryobench.metrics.registry import get_metric

REPO = Path(__file__).resolve().parents[1]


def _rot(axis: str, degrees: float) -> np.ndarray:
    return Rotation.from_euler(axis, degrees, degrees=True).as_matrix()


def _tables(oriented: bool = True):
    """Two ribosomes and one apo-ferritin (radii 150 and 60 Å). Submission: the first ribosome
    shifted by (30, 40, 0) Å (50 Å) and turned 90° about x; the second exact; the apo-ferritin
    shifted 10 Å along x and turned 90° about z (an element of its octahedral group)."""
    sol = pd.DataFrame({"experiment": ["TS_1"] * 3,
                        "particle_type": ["ribosome", "ribosome", "apo-ferritin"],
                        "x": [1000.0, 3000.0, 2000.0], "y": [1000.0, 1000.0, 2000.0],
                        "z": [1000.0, 1000.0, 2000.0]})
    sub = sol.copy()
    sub.loc[0, ["x", "y"]] += [30.0, 40.0]
    sub.loc[2, "x"] += 10.0
    if oriented:
        sol = with_rotations(sol, np.stack([np.eye(3)] * 3))
        sub = with_rotations(sub, np.stack([_rot("x", 90), np.eye(3), _rot("z", 90)]))
    return sub, sol


def test_evaluation_carries_hand_worked_distances_and_angles():
    sub, sol = _tables()
    metric = get_metric("czii")
    plain = metric.evaluate(sub, sol)
    ev = metric.evaluate(sub, sol, localization=True)
    assert plain.localization is None
    assert ev.score == plain.score  # localization changes no score
    ribo = ev.localization.per_class["ribosome"]
    assert ribo.distance.n == 2
    assert ribo.distance.median == pytest.approx(25.0)  # distances 50 and 0 Å
    assert ribo.distance.p90 == pytest.approx(45.0)     # 0 + 0.9 x 50
    assert ribo.orientation.median == pytest.approx(45.0)  # errors 90 and 0 degrees
    assert ribo.orientation.within_10 == 0.5
    apo = ev.localization.per_class["apo-ferritin"]
    assert apo.symmetry == "O" and apo.distance.median == pytest.approx(10.0)
    assert apo.orientation.median == pytest.approx(0.0, abs=1e-6)  # a symmetry element: 0
    assert ev.to_dict()["localization"]["per_class"]["ribosome"]["distance"]["n"] == 2


def test_symmetries_come_from_the_params():
    sub, sol = _tables()
    ev = get_metric("czii").evaluate(sub, sol, MetricParams(symmetries={"apo-ferritin": "c1"}),
                                     localization=True)
    apo = ev.localization.per_class["apo-ferritin"]
    assert apo.symmetry == "C1" and apo.orientation.median == pytest.approx(90.0)
    # a class not named is C1
    assert ev.localization.per_class["ribosome"].symmetry == "C1"
    with pytest.raises(Exception, match="symmetry of 'ribosome'"):
        MetricParams(symmetries={"ribosome": "Q3"})


def test_byu_evaluation_gives_the_motor_distance_in_angstrom():
    sol = pd.DataFrame({"tomo_id": ["a", "b"], "Motor axis 0": [10.0, 20.0],
                        "Motor axis 1": [10.0, 20.0], "Motor axis 2": [10.0, 20.0],
                        "Voxel spacing": [15.0, 10.0], "Has motor": [1, 1]})
    sub = pd.DataFrame({"tomo_id": ["a", "b"], "Motor axis 0": [13.0, 20.0],
                        "Motor axis 1": [14.0, 20.0], "Motor axis 2": [10.0, 20.0]})
    ev = get_metric("byu").evaluate(sub, sol, localization=True)
    d = ev.localization.per_class["flagellar-motor"].distance
    assert d.n == 2 and d.median == pytest.approx(37.5)  # 5 voxels x 15 Å and 0
    assert ev.localization.per_class["flagellar-motor"].orientation is None


# ----- the CLI ---------------------------------------------------------------------------------
def _write_pair(tmp_path, oriented=True):
    sub, sol = _tables(oriented)
    sub.to_csv(tmp_path / "sub.csv", index=False)
    sol.to_csv(tmp_path / "sol.csv", index=False)
    return tmp_path / "sub.csv", tmp_path / "sol.csv"


def _score(*args):
    return CliRunner().invoke(cli, ["score", *map(str, args)])


def test_cli_prints_localization_and_orientation_per_class(tmp_path):
    sub, sol = _write_pair(tmp_path)
    res = _score(sub, "--solution", sol)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    header = next(line for line in lines if line.startswith("particle_type  matched"))
    assert header.split() == ["particle_type", "matched", "dist_median", "dist_p90",
                              "symmetry", "oriented", "ang_median", "ang_p90", "<=10", "<=20",
                              "<=30"]
    ribo = next(line for line in lines[lines.index(header):] if line.startswith("ribosome"))
    assert ribo.split() == ["ribosome", "2", "25.0", "45.0", "C1", "2", "45.0", "81.0", "0.50",
                            "0.50", "0.50"]
    apo = next(line for line in lines[lines.index(header):] if line.startswith("apo-ferritin"))
    assert apo.split()[4:7] == ["O", "1", "0.0"]
    assert lines[-1].startswith("score")


def test_cli_json_has_the_localization_block(tmp_path):
    sub, sol = _write_pair(tmp_path)
    res = _score(sub, "--solution", sol, "--json")
    assert res.exit_code == 0, res.output
    loc = json.loads(res.stdout)["localization"]
    assert loc["has_orientations"] is True
    assert loc["per_class"]["ribosome"]["orientation"]["p90"] == pytest.approx(81.0)
    assert loc["per_class"]["apo-ferritin"]["distance"]["median"] == pytest.approx(10.0)


def test_cli_without_rotations_reports_distance_only(tmp_path):
    sub, sol = _write_pair(tmp_path, oriented=False)
    res = _score(sub, "--solution", sol)
    assert res.exit_code == 0, res.output
    assert "ang_median" not in res.stdout and "no orientation error" in res.stdout
    out = json.loads(_score(sub, "--solution", sol, "--json").stdout)["localization"]
    assert out["has_orientations"] is False
    assert out["per_class"]["ribosome"]["orientation"] is None


def test_cli_bad_rotation_is_one_line_error(tmp_path):
    sub, sol = _write_pair(tmp_path)
    df = pd.read_csv(sub)
    df.loc[1, "rot_xx"] = 2.0
    df.to_csv(sub, index=False)
    res = _score(sub, "--solution", sol)
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [res.output.strip()]
    assert res.output.startswith(f"error: {sub}: ") and "not a rotation" in res.output


def test_cli_relion_star_angles_are_scored(tmp_path):
    """A RELION STAR submission (ZYZ angles) against a CSV solution with rot_* columns."""
    from cryobench.io.formats import write_picks

    sub, sol = _tables()
    write_picks(sub, tmp_path / "sub.star", voxel_spacing=10.0)
    sol.to_csv(tmp_path / "sol.csv", index=False)
    res = _score(tmp_path / "sub.star", "--solution", tmp_path / "sol.csv", "--voxel-spacing",
                 10, "--json")
    assert res.exit_code == 0, res.output
    loc = json.loads(res.stdout)["localization"]["per_class"]
    assert loc["ribosome"]["orientation"]["median"] == pytest.approx(45.0, abs=1e-3)
    assert loc["apo-ferritin"]["orientation"]["median"] == pytest.approx(0.0, abs=1e-3)


# ----- copick transforms -------------------------------------------------------------------------
@pytest.fixture()
def tiny_copy(tmp_path):
    import shutil

    from cryobench.data import load_split, open_project

    project = load_split("tiny").project(progress=False)
    root = project.config_path.parent
    shutil.copytree(root, tmp_path / "tiny")
    return open_project(tmp_path / "tiny" / project.config_path.name)


def test_copick_transforms_round_trip_and_orientation_errors_are_scored(tiny_copy):
    truth = tiny_copy.read_picks(with_rotations=True)
    # the phantom records the rotation each particle was placed with
    assert all(c in truth.columns for c in ROTATION_COLUMNS)
    assert not any(c in tiny_copy.read_picks().columns for c in ROTATION_COLUMNS)  # opt-in
    run = tiny_copy.runs[0]
    picks = truth[truth["experiment"] == run].reset_index(drop=True)
    rot = Rotation.from_euler("zyz", np.arange(3 * len(picks)).reshape(-1, 3) * 7.0,
                              degrees=True).as_matrix()
    picks = with_rotations(picks.assign(score=1.0), rot)
    tiny_copy.write_picks(run, picks, user="cryobench", session="oriented")
    back = tiny_copy.read_picks([run], user="cryobench", session="oriented",
                                with_rotations=True)
    key = ["particle_type", "x", "y", "z"]
    back = back.sort_values(key).reset_index(drop=True)
    want = picks.sort_values(key).reset_index(drop=True)
    np.testing.assert_allclose(back[list(ROTATION_COLUMNS)], want[list(ROTATION_COLUMNS)],
                               atol=1e-12)
    bad = picks.copy()
    bad.loc[0, "rot_xx"] = 5.0
    from cryobench.errors import InputError

    with pytest.raises(InputError, match="data row 1 is not a rotation"):
        tiny_copy.write_picks(run, bad, user="cryobench", session="broken")
    res = _score("--copick", tiny_copy.config_path, "--session", "oriented", "--runs", run,
                 "--json")
    assert res.exit_code == 0, res.output
    loc = json.loads(res.stdout)["localization"]
    # both sides record orientations: distances (0, the truth's own centres) and angles
    assert loc["has_orientations"] is True
    assert all(v["distance"]["median"] == pytest.approx(0.0, abs=1e-6)
               for v in loc["per_class"].values() if v["distance"]["n"])


# ----- the runner, records and the site ----------------------------------------------------------
def test_check_predictions_keeps_and_checks_rotations():
    from cryobench.errors import MethodError
    from cryobench.runner.run import check_predictions

    run = type("R", (), {"name": "TS_1"})()
    sub, _ = _tables()
    out = check_predictions(sub, run, ["ribosome", "apo-ferritin"], "m")
    assert list(out.columns[-9:]) == list(ROTATION_COLUMNS)
    bad = sub.copy()
    bad.loc[0, "rot_xx"] = 3.0
    with pytest.raises(MethodError, match="not a rotation"):
        check_predictions(bad, run, ["ribosome", "apo-ferritin"], "m")
    plain = check_predictions(sub.drop(columns=list(ROTATION_COLUMNS)), run,
                              ["ribosome", "apo-ferritin"], "m")
    assert list(plain.columns) == ["experiment", "particle_type", "x", "y", "z", "score"]


def test_score_picks_stores_the_localization_block():
    from cryobench.particles import CZII_PARTICLES
    from cryobench.runner.run import score_picks

    sub, sol = _tables()

    class Split:
        metric = "czii"
        particles = CZII_PARTICLES

        def solution(self, role="test"):
            return sol

    scoring = score_picks(Split(), sub.assign(score=1.0), [])
    loc = scoring.metrics["localization"]["per_class"]
    assert loc["ribosome"]["distance"]["median"] == pytest.approx(25.0)
    assert loc["apo-ferritin"]["orientation"]["median"] == pytest.approx(0.0, abs=1e-6)
    assert "localization" not in scoring.params  # the record's params (and hash) unchanged


def test_committed_records_load_unchanged_without_localization():
    """The archived first-generation records predate the block: they load with none; every
    committed record keeps its stored score and config hash."""
    from cryobench.runner.record import RunRecord, config_hash

    paths = sorted((REPO / "leaderboards").rglob("record.json"))
    old = sorted((REPO / "leaderboards" / "archive").rglob("record.json"))
    assert old
    for p in paths:
        raw = json.loads(p.read_text())
        rec = RunRecord.load(p)
        if p in old:
            assert rec.localization == {}
        assert rec.score == raw["score"] and rec.config_hash == raw["config_hash"]
        assert rec.config_hash == config_hash(raw["config"])


def test_method_page_shows_localization_mean_over_seeds(tmp_path):
    from cryobench.report.site import build_site
    from cryobench.testing.records import fake_record, record_path

    def block(median, angle):
        return {"per_class": {"ribosome": {
            "distance": {"n": 10, "median": median, "p90": 2 * median},
            "orientation": None if angle is None else {
                "n": 10, "median": angle, "p90": 2 * angle, "within_10": 0.1,
                "within_20": 0.2, "within_30": 0.5},
            "symmetry": "C1"}}, "has_orientations": angle is not None, "params": {}}

    results = tmp_path / "results"
    for seed, (median, angle) in enumerate([(10.0, 20.0), (20.0, 40.0)]):
        rec = fake_record("template_match", seed=seed)
        rec.metrics["localization"] = block(median, angle)
        rec.save(record_path(results, rec))
    plain = fake_record("unet3d", seed=0)
    plain.save(record_path(results, plain))
    site = build_site([results], tmp_path / "site", n_flips=0)
    pages = {p: (tmp_path / "site" / p).read_text() for p in site.pages
             if p.startswith("methods/")}
    tm = next(t for p, t in pages.items() if "template" in p)
    assert "<h2>Localization of matched picks</h2>" in tm
    row = next(line for line in tm.splitlines() if line.startswith("<tr><td>ribosome</td>")
               and "30.0" in line)
    assert ">15.0<" in row and ">30.0<" in row and ">60.0<" in row and ">0.50<" in row
    unet = next(t for p, t in pages.items() if "unet3d" in p)
    assert "Localization" not in unet  # records without the block show nothing
    data = json.loads((tmp_path / "site" / "data" / "leaderboard.json").read_text())
    entry = next(e for e in data["entries"] if e["method"] == "template_match")
    assert entry["per_class"]["ribosome"]["distance_median"] == pytest.approx(15.0)
    assert entry["per_class"]["apo-ferritin"]["distance_median"] is None


@pytest.mark.parametrize("matching", ["kaggle", "one-to-one"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_evaluation_shares_the_pair_search_and_agrees_with_the_report(seed, matching):
    """The registry's localization (from the score's own pairs) equals the stand-alone report,
    pair for pair, on random oriented tables with near ties, duplicates and foreign rows."""
    from cryobench.metrics.localization import localization_orientation_report

    rng = np.random.default_rng(seed)
    classes = ["ribosome", "apo-ferritin", "thyroglobulin"]
    n = 60
    sol = pd.DataFrame({"experiment": rng.choice(["TS_1", "TS_2"], n),
                        "particle_type": rng.choice(classes, n),
                        "x": rng.uniform(0, 3000, n).round(), "y": rng.uniform(0, 3000, n).round(),
                        "z": rng.uniform(0, 600, n).round()})
    sub = pd.concat([sol, sol.sample(20, random_state=seed)], ignore_index=True)
    sub[["x", "y", "z"]] += rng.normal(0, 25, (len(sub), 3)).round()
    sol = with_rotations(sol, Rotation.random(n, random_state=seed).as_matrix())
    sub = with_rotations(sub, Rotation.random(len(sub), random_state=seed + 9).as_matrix())
    params = MetricParams(matching=matching)
    ev = get_metric("czii").evaluate(sub, sol, params, localization=True)
    alone = localization_orientation_report(sub, sol, matching=matching)
    assert ev.localization.to_dict(with_pairs=True) == alone.to_dict(with_pairs=True)
    assert ev.score == get_metric("czii").evaluate(sub, sol, params).score
    n_tp = {c: s.tp for c, s in ev.result.per_class.items()}
    for c, item in ev.localization.per_class.items():
        assert item.distance.n == n_tp[c]


def test_run_handles_give_methods_the_recorded_orientations(tiny_copy):
    """A copick project whose ground truth records orientations hands them to methods through
    ``run.picks()`` (template_match aligns its averages with them); one that records none
    gives the plain columns."""
    from cryobench.data.project import GROUND_TRUTH_SESSION, GROUND_TRUTH_USER

    run = tiny_copy.runs[0]
    recorded = tiny_copy.run(run).picks()  # the phantom's placement rotations
    assert all(c in recorded.columns for c in ROTATION_COLUMNS)
    plain = recorded.drop(columns=list(ROTATION_COLUMNS))
    tiny_copy.write_picks(run, plain, user=GROUND_TRUTH_USER, session=GROUND_TRUTH_SESSION)
    assert list(tiny_copy.run(run).picks().columns) == ["experiment", "particle_type", "x",
                                                        "y", "z"]
    rot = Rotation.from_euler("x", np.arange(len(plain))[:, None] * 11.0, degrees=True).as_matrix()
    oriented = with_rotations(plain, rot)
    tiny_copy.write_picks(run, oriented, user=GROUND_TRUTH_USER, session=GROUND_TRUTH_SESSION)
    back = tiny_copy.run(run).picks()
    key = ["particle_type", "x", "y", "z"]
    np.testing.assert_allclose(
        back.sort_values(key)[list(ROTATION_COLUMNS)].to_numpy(),
        oriented.sort_values(key)[list(ROTATION_COLUMNS)].to_numpy(), atol=1e-12)


def test_template_match_run_on_tiny_records_its_orientations_and_localization(tmp_path):
    """End to end at the smoke budget: the picks keep their rot_* columns into predictions.csv
    and the copick output, and the record holds per-class distances and orientation errors
    (the tiny ground truth records the phantom's placement rotations) with the score and config
    untouched."""
    pytest.importorskip("torch")
    from cryobench.io.picks import read_picks_csv
    from cryobench.metrics.localization import localization_orientation_report
    from cryobench.runner.record import config_hash
    from cryobench.runner.run import run

    result = run("template_match", "tiny", budget="smoke", out=tmp_path, progress=False)
    rec = result.record
    preds = read_picks_csv(rec.predictions_path)
    assert all(c in preds.columns for c in ROTATION_COLUMNS) and len(preds)
    loc = rec.metrics["localization"]
    assert loc["has_orientations"] is True
    from cryobench.data import load_split

    split = load_split("tiny")
    sol = split.solution("test")
    symmetries = {p.name: p.symmetry or "C1" for p in split.particles}
    want = localization_orientation_report(preds, sol, symmetries=symmetries
                                           ).to_dict()["per_class"]
    assert rec.localization == want
    assert rec.config_hash == config_hash(rec.config)
    n_tp = {}
    for c in rec.counts:
        n_tp[c.particle_type] = n_tp.get(c.particle_type, 0) + c.tp
    assert {k: v["distance"]["n"] for k, v in rec.localization.items()} == n_tp
    # the run's table prints it, and the split report (Markdown and HTML) shows it
    from cryobench.cli.run import format_counts_table
    from cryobench.report.split_report import write_report

    table = format_counts_table(rec)
    assert "localization of matched picks" in table and "ang_median" in table
    md = write_report([tmp_path], tmp_path / "report.md", use_data=False, n_flips=0).path
    text = md.read_text()
    assert "Localization of matched picks" in text and "orientation median" in text
    cls = next(iter(rec.localization))
    row = next(line for line in text.splitlines() if line.startswith(f"| {cls} | ")
               and line.count("|") == 7)
    assert f"{rec.localization[cls]['distance']['median']:.1f}" in row
    html = write_report([tmp_path], tmp_path / "report.html", use_data=False, n_flips=0).path
    assert "<h3>Localization of matched picks</h3>" in html.read_text()
