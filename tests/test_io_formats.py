"""Pick formats: every input is written by the format's own library (starfile, dynamotable,
emfile, copick), never typed by hand. Round trips score exactly as the CSV does, orientations
survive, foreign files read to hand-worked positions, and bad input is an InputError naming the
file and the option that would fix it."""

from __future__ import annotations

import os
from pathlib import Path

import dynamotable
import emfile
import numpy as np
import pandas as pd
import pytest
import starfile
from scipy.spatial.transform import Rotation

import cryobench
from cryobench import coords
from cryobench.errors import InputError
from cryobench.io.formats import FORMATS, detect_format, read_picks, write_picks
from cryobench.io.picks import read_picks_csv
from cryobench.metrics import czii_score

EXAMPLES = Path(cryobench.__file__).parent / "examples"
SOLUTION = read_picks_csv(EXAMPLES / "czii_solution.csv")
SUBMISSION = read_picks_csv(EXAMPLES / "czii_submission.csv")
EXT = {"kaggle": ".csv", "copick-csv": ".csv", "relion4": ".star", "relion5": ".star",
       "pytom": ".star", "dynamo": ".tbl", "tom": ".em"}
GEOMETRY = {"voxel_spacing": 10.0, "tomogram_shape": (184, 630, 630)}
ONE_TYPE = ("dynamo", "tom")


def _with_orientations(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    return coords.with_rotations(df, Rotation.random(len(df), random_state=seed).as_matrix())


def _round_trip(df: pd.DataFrame, fmt: str, folder: Path, **kw) -> pd.DataFrame:
    """Write ``df`` in ``fmt`` (one file per particle type where the format holds one), read
    it back."""
    parts = []
    groups = sorted(df["particle_type"].unique()) if fmt in ONE_TYPE else [None]
    for k, ptype in enumerate(groups):
        path = folder / f"{fmt}-{k}{EXT[fmt]}"
        write_picks(df, path, fmt, particle_type=ptype, **kw)
        assert detect_format(path) == fmt
        parts.append(read_picks(path, particle_type=ptype, **kw))
    return pd.concat(parts, ignore_index=True)


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["experiment", "particle_type", "x", "y", "z"]).reset_index(drop=True)


# ----- round trips -------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_solution_and_submission_score_exactly_as_the_csv(fmt, tmp_path):
    expected = czii_score(SUBMISSION, SOLUTION).score
    sub = _round_trip(_with_orientations(SUBMISSION, 1), fmt, tmp_path / "sub", **GEOMETRY)
    sol = _round_trip(_with_orientations(SOLUTION, 2), fmt, tmp_path / "sol", **GEOMETRY)
    assert czii_score(sub, SOLUTION).score == expected
    assert czii_score(SUBMISSION, sol).score == expected
    assert czii_score(sub, sol).score == expected
    assert len(sub) == len(SUBMISSION) and len(sol) == len(SOLUTION)


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "kaggle"])
def test_orientations_survive_a_round_trip(fmt, tmp_path):
    picks = _with_orientations(SUBMISSION, 5)
    back = _sorted(_round_trip(picks, fmt, tmp_path, **GEOMETRY))
    ref = _sorted(picks)
    np.testing.assert_allclose(back[["x", "y", "z"]], ref[["x", "y", "z"]], atol=1e-9)
    np.testing.assert_allclose(coords.picks_rotations(back), coords.picks_rotations(ref),
                               atol=1e-12)
    conv = {"relion4": "relion", "relion5": "relion", "pytom": "relion", "dynamo": "dynamo",
            "tom": "tom"}.get(fmt)
    if conv:  # the angles the file holds give back the same angles
        a = coords.rotation_to_euler(coords.picks_rotations(back), conv)
        b = coords.rotation_to_euler(coords.picks_rotations(ref), conv)
        assert np.abs(a - b).max() < 1e-9


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_no_picks_round_trip_to_no_picks(fmt, tmp_path):
    path = tmp_path / f"none{EXT[fmt]}"
    write_picks(SUBMISSION.iloc[:0], path, fmt, **GEOMETRY)
    back = read_picks(path, format=fmt, **GEOMETRY)
    assert len(back) == 0 and list(back.columns[:5]) == list(SUBMISSION.columns[1:6])


def test_picks_without_orientation_are_written_as_identity(tmp_path):
    write_picks(SUBMISSION, tmp_path / "a.star", "relion4", voxel_spacing=10)
    back = read_picks(tmp_path / "a.star")
    np.testing.assert_array_equal(coords.picks_rotations(back), np.tile(np.eye(3), (len(back),
                                                                                    1, 1)))


def test_scores_round_trip(tmp_path):
    picks = SUBMISSION.assign(score=np.linspace(0, 1, len(SUBMISSION)))
    for fmt in ("kaggle", "copick-csv", "relion4", "relion5", "pytom"):
        back = _round_trip(picks, fmt, tmp_path / fmt, **GEOMETRY)
        np.testing.assert_array_equal(np.sort(back["score"]), np.sort(picks["score"]))
    one = picks[picks.particle_type == "ribosome"]
    for fmt in ONE_TYPE:
        back = _round_trip(one, fmt, tmp_path / fmt, **GEOMETRY)
        np.testing.assert_array_equal(np.sort(back["score"]), np.sort(one["score"]))


@pytest.fixture(scope="module")
def tiny():
    from cryobench.data import load_split

    split = load_split("tiny")
    return split.project(progress=False), split.solution("all")


def test_tiny_split_solution_round_trips_through_its_project(tmp_path, tiny):
    project, truth = tiny
    expected = czii_score(truth, truth).score
    for fmt in ("relion5", "relion4", "pytom"):
        path = tmp_path / f"t{EXT[fmt]}"
        write_picks(truth, path, fmt, project=project)
        back = read_picks(path, project=project)  # spacing and shape from the project's runs
        assert czii_score(back, truth).score == expected
    # the RELION 5 file (written first) holds Å from the centre of each 48 x 96 x 96 (z, y, x)
    # tomogram at 15 Å: (720, 720, 360) Å
    write_picks(truth, tmp_path / "r5.star", "relion5", project=project)
    star = starfile.read(tmp_path / "r5.star")
    np.testing.assert_allclose(star[["rlnCenteredCoordinateXAngst", "rlnCenteredCoordinateYAngst",
                                     "rlnCenteredCoordinateZAngst"]].to_numpy(),
                               truth[["x", "y", "z"]].to_numpy() - [720.0, 720.0, 360.0],
                               atol=1e-9)


# ----- files as other tools write them -----------------------------------------------------------
def test_relion4_file_in_tilt_series_pixels_with_shifts(tmp_path):
    # RELION 4: coordinates in tilt-series pixels of 1.35 Å; the particle sits at
    # coordinate * pixel size - rlnOriginAngst
    particles = pd.DataFrame({
        "rlnTomoName": ["TS_01", "TS_02"],
        "rlnCoordinateX": [1000.0, 10.0], "rlnCoordinateY": [2000.0, 20.0],
        "rlnCoordinateZ": [300.0, 30.0],
        "rlnOriginXAngst": [1.35, 0.0], "rlnOriginYAngst": [-2.7, 0.0],
        "rlnOriginZAngst": [0.0, 0.0],
        "rlnAngleRot": [90.0, 0.0], "rlnAngleTilt": [0.0, 90.0], "rlnAnglePsi": [0.0, 0.0],
        "rlnOpticsGroup": [1, 1], "rlnClassNumber": [1, 1],
    })
    optics = pd.DataFrame({"rlnOpticsGroup": [1], "rlnOpticsGroupName": ["opticsGroup1"],
                           "rlnTomoTiltSeriesPixelSize": [1.35], "rlnVoltage": [300.0]})
    path = tmp_path / "particles.star"
    starfile.write({"optics": optics, "particles": particles}, path)
    assert detect_format(path) == "relion4"
    got = read_picks(path, particle_type="ribosome")
    np.testing.assert_allclose(got[["x", "y", "z"]], [[1348.65, 2702.7, 405.0],
                                                       [13.5, 27.0, 40.5]], atol=1e-9)
    assert got["experiment"].tolist() == ["TS_01", "TS_02"]
    assert got["particle_type"].tolist() == ["ribosome", "ribosome"]
    np.testing.assert_allclose(coords.picks_rotations(got)[0],
                               [[0, 1, 0], [-1, 0, 0], [0, 0, 1]], atol=1e-15)
    # the file's pixel size and a different --voxel-spacing contradict each other
    with pytest.raises(InputError, match="states pixel size.*--voxel-spacing"):
        read_picks(path, particle_type="ribosome", voxel_spacing=10)


def test_relion5_file_composes_subtomogram_orientation_and_shift(tmp_path):
    # RELION 5: Å from the centre; orientation A_subtomo @ A_particle; the shift is turned by
    # A_subtomo before it is subtracted (RELION's ParticleSet::getPosition)
    particles = pd.DataFrame({
        "rlnTomoName": ["TS_01"],
        "rlnCenteredCoordinateXAngst": [100.0], "rlnCenteredCoordinateYAngst": [-50.0],
        "rlnCenteredCoordinateZAngst": [0.0],
        "rlnTomoSubtomogramRot": [90.0], "rlnTomoSubtomogramTilt": [0.0],
        "rlnTomoSubtomogramPsi": [0.0],
        "rlnAngleRot": [0.0], "rlnAngleTilt": [90.0], "rlnAnglePsi": [0.0],
        "rlnOriginXAngst": [10.0], "rlnOriginYAngst": [0.0], "rlnOriginZAngst": [0.0],
    })
    path = tmp_path / "run_data.star"
    starfile.write({"general": {"rlnTomoSubTomosAre2DStacks": 1}, "particles": particles},
                   path)
    assert detect_format(path) == "relion5"
    with pytest.raises(InputError, match="--tomogram-shape Z,Y,X or --copick CONFIG"):
        read_picks(path, particle_type="ribosome", voxel_spacing=10)
    with pytest.raises(InputError, match="--voxel-spacing A or --copick CONFIG"):
        read_picks(path, particle_type="ribosome", tomogram_shape="200,600,500")
    got = read_picks(path, particle_type="ribosome", tomogram_shape="200,600,500",
                     voxel_spacing=10)
    a_sub = coords.euler_to_rotation([90, 0, 0], "relion")[0]  # Rz(-90): (1,0,0) -> (0,-1,0)
    # centre (2500, 3000, 1000); shift (10, 0, 0) turned by A_sub is (0, -10, 0)
    np.testing.assert_allclose(got[["x", "y", "z"]], [[2600.0, 2960.0, 1000.0]], atol=1e-9)
    np.testing.assert_allclose(coords.picks_rotations(got)[0],
                               a_sub @ coords.euler_to_rotation([0, 90, 0], "relion")[0],
                               atol=1e-15)


def test_pytom_match_pick_file(tmp_path):
    # the columns pytom_extract_candidates writes: numpy voxel indices, LCCmax, DetectorPixelSize
    particles = pd.DataFrame({
        "rlnCoordinateX": [10, 200], "rlnCoordinateY": [20, 100], "rlnCoordinateZ": [30, 50],
        "rlnAngleRot": [10.0, 20.0], "rlnAngleTilt": [30.0, 40.0], "rlnAnglePsi": [50.0, 60.0],
        "rlnLCCmax": [0.31, 0.12], "rlnCutOff": [0.1, 0.1], "rlnSearchStd": [0.02, 0.02],
        "rlnDetectorPixelSize": [13.48, 13.48], "rlnMicrographName": ["TS_5_4", "TS_5_4"],
    })
    path = tmp_path / "TS_5_4_particles.star"
    starfile.write(particles, path)
    assert detect_format(path) == "pytom"
    got = read_picks(path, particle_type="ribosome")
    np.testing.assert_allclose(got[["x", "y", "z"]], [[134.8, 269.6, 404.4],
                                                       [2696.0, 1348.0, 674.0]])
    assert got["score"].tolist() == [0.31, 0.12]
    assert got["experiment"].tolist() == ["TS_5_4", "TS_5_4"]
    np.testing.assert_allclose(coords.rotation_to_euler(coords.picks_rotations(got), "relion"),
                               particles[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]],
                               atol=1e-9)


def test_pytom_relion5_mode_file(tmp_path):
    particles = pd.DataFrame({
        "rlnCenteredCoordinateXAngst": [-100.0], "rlnCenteredCoordinateYAngst": [0.0],
        "rlnCenteredCoordinateZAngst": [50.0], "rlnAngleRot": [0.0], "rlnAngleTilt": [0.0],
        "rlnAnglePsi": [0.0], "rlnLCCmax": [0.4], "rlnCutOff": [0.1], "rlnSearchStd": [0.02],
        "rlnTomoTiltSeriesPixelSize": [10.0], "rlnTomoName": ["TS_5_4"]})
    path = tmp_path / "p.star"
    starfile.write(particles, path)
    assert detect_format(path) == "relion5"
    got = read_picks(path, particle_type="ribosome", tomogram_shape=(184, 630, 630),
                     voxel_spacing=10)
    np.testing.assert_allclose(got[["x", "y", "z"]], [[3050.0, 3150.0, 970.0]])
    assert got["score"].tolist() == [0.4]


def test_dynamo_table_counts_pixels_from_one_and_adds_shifts(tmp_path):
    table = pd.DataFrame({"tag": [1, 2, 3], "dx": [0.5, 0, 0], "dy": [0, 0, 0],
                          "dz": [0, -1, 0], "tdrot": [30, 0, 0], "tilt": [60, 0, 0],
                          "narot": [75, 0, 0], "cc": [0.9, 0.8, 0.7], "tomo": [1, 2, 2],
                          "x": [11, 1, 2], "y": [21, 1, 2], "z": [31, 1, 2]})
    path = tmp_path / "crop.tbl"
    dynamotable.write(table, str(path))
    assert detect_format(path) == "dynamo"
    with pytest.raises(InputError, match="2 tomograms.*--tomo-map FILE"):
        read_picks(path, particle_type="ribosome", voxel_spacing=10)
    (tmp_path / "tomograms.doc").write_text("1 /data/tomos/TS_01.mrc\n2 /data/tomos/TS_02.rec\n")
    got = read_picks(path, particle_type="ribosome", voxel_spacing=10,
                     tomo_map=tmp_path / "tomograms.doc")
    np.testing.assert_allclose(got[["x", "y", "z"]], [[105, 200, 300], [0, 0, -10],
                                                       [10, 10, 10]])
    assert got["experiment"].tolist() == ["TS_01", "TS_02", "TS_02"]
    assert got["score"].tolist() == [0.9, 0.8, 0.7]
    dynamo_matrix = np.array([[-0.0173, -0.5477, 0.8365], [0.9012, -0.3709, -0.2241],
                              [0.4330, 0.7500, 0.5000]])
    np.testing.assert_allclose(coords.picks_rotations(got)[0].T, dynamo_matrix, atol=6e-5)


def test_dynamo_apix_column_gives_the_pixel_size(tmp_path):
    table = pd.DataFrame({"tag": [1], "tomo": [1], "x": [3], "y": [4], "z": [5],
                          "apix": [2.5]})
    path = tmp_path / "t.tbl"
    dynamotable.write(table, str(path))
    got = read_picks(path, particle_type="ribosome", experiment="TS_01")
    np.testing.assert_allclose(got[["x", "y", "z"]], [[5.0, 7.5, 10.0]])


def test_tom_motive_list_as_tom_writes_it(tmp_path):
    # float32, 20 x N in MATLAB order (emfile: 1 x N x 20); row 1 score, 5 tomogram,
    # 8-10 position from 1, 11-13 shift, 17-19 phi psi theta
    m = np.zeros((1, 2, 20), dtype=np.float32)
    m[0, :, 0] = [0.5, 0.25]
    m[0, :, 3] = [1, 2]
    m[0, :, 4] = [3, 3]
    m[0, :, 7:10] = [[11, 21, 31], [1, 1, 1]]
    m[0, :, 10:13] = [[0, 0, 0.5], [0, 0, 0]]
    m[0, :, 16:19] = [[10, 30, 20], [0, 0, 0]]  # phi, psi, theta
    path = tmp_path / "motl_1.em"
    emfile.write(str(path), m)
    assert detect_format(path) == "tom"
    got = read_picks(path, particle_type="ribosome", experiment="TS_03", voxel_spacing=10)
    np.testing.assert_allclose(got[["x", "y", "z"]], [[100, 200, 305], [0, 0, 0]])
    assert got["score"].tolist() == [0.5, 0.25]
    assert got["experiment"].tolist() == ["TS_03", "TS_03"]
    np.testing.assert_allclose(coords.picks_rotations(got)[0],
                               Rotation.from_euler("zxz", [10, 20, 30], degrees=True).as_matrix(),
                               atol=1e-6)


def test_copick_csv_written_by_copick(tmp_path):
    from copick.util.formats import write_picks_csv

    rot = Rotation.random(2, random_state=4).as_matrix()
    transforms = np.tile(np.eye(4), (2, 1, 1))
    transforms[:, :3, :3] = rot
    transforms[:, :3, 3] = [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]  # particle at location + t
    path = tmp_path / "picks.csv"
    write_picks_csv(str(path), "TS_6_4", np.array([[10.0, 20, 30], [40, 50, 60]]), transforms,
                    scores=np.array([0.7, 0.1]))
    assert detect_format(path) == "copick-csv"
    got = read_picks(path, particle_type="thyroglobulin")
    np.testing.assert_allclose(got[["x", "y", "z"]], [[11, 22, 33], [40, 50, 60]])
    np.testing.assert_allclose(coords.picks_rotations(got), rot, atol=1e-15)
    assert got["score"].tolist() == [0.7, 0.1]


# ----- what copick itself reads from cryobench's files -------------------------------------------
def _one_type_picks(n: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    xyz = rng.uniform(100, 3000, (n, 3))
    df = pd.DataFrame({"experiment": ["TS_1"] * n, "particle_type": ["ribosome"] * n,
                       "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2],
                       "score": rng.uniform(size=n)})
    return _with_orientations(df, 8)


def test_copick_reads_cryobench_files_the_same_way(tmp_path):
    from copick.util.formats import read_copick_csv
    from copick.util.handlers.picks.em import em_picks_handler
    from copick.util.handlers.picks.star import star_handler

    picks = _one_type_picks()
    xyz, rot = picks[["x", "y", "z"]].to_numpy(), coords.picks_rotations(picks)
    write_picks(picks, tmp_path / "a.csv", "copick-csv")
    pos, transforms, scores, names = read_copick_csv(str(tmp_path / "a.csv"))
    np.testing.assert_allclose(pos, xyz)
    np.testing.assert_allclose(transforms[:, :3, :3], rot)
    assert list(names) == ["TS_1"] * len(picks)
    write_picks(picks, tmp_path / "r5.star", "relion5", voxel_spacing=10,
                tomogram_shape=(200, 630, 630))
    pos, transforms, *_ = star_handler.read(str(tmp_path / "r5.star"), voxel_spacing=None,
                                            tomogram_center=(3150.0, 3150.0, 1000.0))
    np.testing.assert_allclose(pos, xyz, atol=1e-9)
    np.testing.assert_allclose(transforms[:, :3, :3], rot, atol=1e-12)
    write_picks(picks, tmp_path / "r4.star", "relion4", voxel_spacing=10)
    pos, transforms, *_ = star_handler.read(str(tmp_path / "r4.star"), voxel_spacing=None)
    np.testing.assert_allclose(pos, xyz, atol=1e-9)
    np.testing.assert_allclose(transforms[:, :3, :3], rot, atol=1e-12)
    write_picks(picks, tmp_path / "t.em", "tom", voxel_spacing=10)
    pos, transforms, scores = em_picks_handler.read(str(tmp_path / "t.em"), voxel_spacing=10)[:3]
    np.testing.assert_allclose(pos, xyz, atol=1e-9)
    np.testing.assert_allclose(transforms[:, :3, :3], rot, atol=1e-12)
    # a documented difference: copick takes row 4 (TOM's particle number) for the score; TOM
    # and cryobench keep the score in row 1
    assert scores.tolist() == list(range(1, len(picks) + 1))


def test_copick_dynamo_tables_count_pixels_from_zero(tmp_path):
    # a documented difference: copick 1.31 reads (and writes) Dynamo's x, y, z as if the first
    # voxel were 0; Dynamo counts from 1, so copick's positions are one pixel further
    from copick.util.handlers.picks.dynamo import dynamo_handler

    picks = _one_type_picks()
    write_picks(picks, tmp_path / "t.tbl", "dynamo", voxel_spacing=10)
    pos, transforms, *_ = dynamo_handler.read(str(tmp_path / "t.tbl"), voxel_spacing=10)
    np.testing.assert_allclose(pos - picks[["x", "y", "z"]].to_numpy(), 10.0, atol=1e-9)
    np.testing.assert_allclose(transforms[:, :3, :3], coords.picks_rotations(picks), atol=1e-12)


# ----- bad input ---------------------------------------------------------------------------------
def test_missing_options_are_named(tmp_path):
    one = SUBMISSION[SUBMISSION.particle_type == "ribosome"]
    with pytest.raises(InputError, match="--voxel-spacing A or --copick CONFIG"):
        write_picks(one, tmp_path / "a.tbl")
    assert not list(tmp_path.iterdir())  # nothing written, no temporary left
    write_picks(one, tmp_path / "a.tbl", voxel_spacing=10)
    path = tmp_path / "a.tbl"
    with pytest.raises(InputError, match="--particle-type NAME") as err:
        read_picks(path)
    assert err.value.path == str(path)
    one = one[one.experiment == "TS_69_2"]
    write_picks(one, tmp_path / "b.em", voxel_spacing=10)
    (tmp_path / "b.doc").unlink()
    with pytest.raises(InputError, match="--experiment NAME"):
        read_picks(tmp_path / "b.em", particle_type="ribosome", voxel_spacing=10)
    with pytest.raises(InputError, match="--voxel-spacing A"):
        read_picks(tmp_path / "b.em", particle_type="ribosome", experiment="TS_1")
    starfile.write(pd.DataFrame({"rlnCoordinateX": [1.0], "rlnCoordinateY": [1.0],
                                 "rlnCoordinateZ": [1.0]}), tmp_path / "c.star")
    with pytest.raises(InputError, match="--experiment NAME"):
        read_picks(tmp_path / "c.star", particle_type="ribosome", voxel_spacing=10)
    with pytest.raises(InputError, match="states no pixel size.*--voxel-spacing"):
        read_picks(tmp_path / "c.star", particle_type="ribosome", experiment="TS_1")


def test_one_particle_type_per_dynamo_and_tom_file(tmp_path):
    for fmt in ONE_TYPE:
        with pytest.raises(InputError, match="one particle type.*--particle-type NAME"):
            write_picks(SUBMISSION, tmp_path / f"x{EXT[fmt]}", fmt, voxel_spacing=10)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_refused(tmp_path, bad):
    particles = pd.DataFrame({"rlnTomoName": ["a", "b"], "rlnCoordinateX": [1.0, bad],
                              "rlnCoordinateY": [1.0, 1.0], "rlnCoordinateZ": [1.0, 1.0]})
    starfile.write(particles, tmp_path / "p.star")
    with pytest.raises(InputError, match="NaN or infinite.*data row 2"):
        read_picks(tmp_path / "p.star", particle_type="ribosome", voxel_spacing=10)
    angles = pd.DataFrame({"tag": [1, 2], "tomo": [1, 1], "x": [1, 2], "y": [1, 2],
                           "z": [1, 2], "tdrot": [0.0, bad]})
    dynamotable.write(angles, str(tmp_path / "t.tbl"))
    with pytest.raises(InputError, match="NaN or infinite.*data row 2"):
        read_picks(tmp_path / "t.tbl", particle_type="ribosome", experiment="a",
                   voxel_spacing=10)
    m = np.zeros((1, 2, 20), dtype=np.float32)
    m[0, 1, 8] = bad
    emfile.write(str(tmp_path / "m.em"), m)
    with pytest.raises(InputError, match="NaN or infinite.*data row 2"):
        read_picks(tmp_path / "m.em", particle_type="ribosome", experiment="a",
                   voxel_spacing=10)
    picks = SUBMISSION.copy()
    picks.loc[3, "y"] = bad
    with pytest.raises(InputError, match="NaN or infinite"):
        write_picks(picks, tmp_path / "out.star", voxel_spacing=10)
    assert not (tmp_path / "out.star").exists()


@pytest.mark.parametrize("name", ["TS 5", "data_x", "_rlnX", "#x", "a\nb", "x\ty", "'q'"])
def test_hostile_names_are_refused_before_writing(tmp_path, name):
    picks = SUBMISSION.copy()
    picks.loc[0, "experiment"] = name
    for fmt in ("relion4", "relion5", "pytom"):
        with pytest.raises(InputError):
            write_picks(picks, tmp_path / "x.star", fmt, **GEOMETRY)
    one = picks[picks.particle_type == picks.loc[0, "particle_type"]]
    for fmt in ONE_TYPE:
        with pytest.raises(InputError):
            write_picks(one, tmp_path / f"x{EXT[fmt]}", fmt, voxel_spacing=10)
    assert not list(tmp_path.iterdir())


def test_control_characters_in_read_names_are_refused(tmp_path):
    starfile.write(pd.DataFrame({"rlnTomoName": ["ok", "bad\x07"], "rlnCoordinateX": [1.0, 2],
                                 "rlnCoordinateY": [1.0, 2], "rlnCoordinateZ": [1.0, 2]}),
                   tmp_path / "p.star")
    with pytest.raises(InputError, match="control character"):
        read_picks(tmp_path / "p.star", particle_type="ribosome", voxel_spacing=10)


def test_rotations_must_be_rotations(tmp_path):
    picks = coords.with_rotations(SUBMISSION.iloc[:2], np.stack([np.eye(3), 2 * np.eye(3)]))
    with pytest.raises(InputError, match="row 2 is not a rotation"):
        write_picks(picks, tmp_path / "a.csv", "copick-csv")
    from copick.util.formats import write_picks_csv

    transforms = np.tile(np.eye(4), (1, 1, 1))
    transforms[0, 0, 0] = -1.0  # a reflection
    write_picks_csv(str(tmp_path / "c.csv"), "TS_1", np.zeros((1, 3)), transforms)
    with pytest.raises(InputError, match="not a rotation"):
        read_picks(tmp_path / "c.csv", particle_type="ribosome")


def test_unreadable_and_unknown_files(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_picks(tmp_path / "none.star")
    (tmp_path / "empty.tbl").write_bytes(b"")  # a Dynamo table without particles
    assert len(read_picks(tmp_path / "empty.tbl")) == 0
    (tmp_path / "empty.csv").write_bytes(b"")  # a CSV without even a header
    with pytest.raises(InputError, match="empty"):
        read_picks(tmp_path / "empty.csv")
    (tmp_path / "junk.em").write_bytes(b"\x00" * 7)
    with pytest.raises(InputError, match="EM file"):
        read_picks(tmp_path / "junk.em", particle_type="r", experiment="e", voxel_spacing=1)
    (tmp_path / "a.xyz").write_text("1 2 3\n")
    with pytest.raises(InputError, match="unknown pick-file extension"):
        read_picks(tmp_path / "a.xyz")
    with pytest.raises(InputError, match="BYU motor table"):
        detect_format(EXAMPLES / "byu_solution.csv")
    starfile.write(pd.DataFrame({"rlnMicrographName": ["a"]}), tmp_path / "m.star")
    with pytest.raises(InputError, match="no particle table"):
        read_picks(tmp_path / "m.star")
    with pytest.raises(InputError, match="unknown pick format"):
        read_picks(tmp_path / "m.star", format="imod")


def test_option_values_are_checked(tmp_path):
    with pytest.raises(InputError, match="voxel spacing must be a positive"):
        write_picks(SUBMISSION, tmp_path / "a.star", voxel_spacing=-1)
    for shape in ("184,630", "0,1,1", "a,b,c", "1.5,2,3"):
        with pytest.raises(InputError, match="tomogram shape"):
            write_picks(SUBMISSION, tmp_path / "a.star", "relion5", voxel_spacing=10,
                        tomogram_shape=shape)
    assert not list(tmp_path.iterdir())


def test_selecting_a_particle_type_and_an_experiment(tmp_path):
    write_picks(SUBMISSION, tmp_path / "a.star", voxel_spacing=10)
    got = read_picks(tmp_path / "a.star", particle_type="ribosome", experiment="TS_69_2")
    ref = SUBMISSION[(SUBMISSION.particle_type == "ribosome")
                     & (SUBMISSION.experiment == "TS_69_2")]
    assert len(got) == len(ref) > 0
    with pytest.raises(InputError, match="no picks of particle type 'nope'"):
        read_picks(tmp_path / "a.star", particle_type="nope")


def test_project_checks_particle_types(tmp_path, tiny):
    project, truth = tiny
    bad = truth.assign(particle_type="proteasome")
    write_picks(bad, tmp_path / "a.star", project=project)
    with pytest.raises(InputError, match="not pickable objects of the copick project"):
        read_picks(tmp_path / "a.star", project=project)
    unknown = truth.assign(experiment="TS_nowhere")
    with pytest.raises(InputError, match="'TS_nowhere' is not usable in the copick project"):
        write_picks(unknown, tmp_path / "b.star", project=project)
    assert not (tmp_path / "b.star").exists()


def test_written_files_are_whole_or_absent(tmp_path, monkeypatch):
    import starfile as sf

    def boom(*args, **kwargs):
        raise OSError("disk full")

    write_picks(SUBMISSION, tmp_path / "a.star", voxel_spacing=10)
    before = (tmp_path / "a.star").read_bytes()
    monkeypatch.setattr(sf, "write", boom)
    with pytest.raises(OSError):
        write_picks(SUBMISSION.iloc[:3], tmp_path / "a.star", voxel_spacing=10)
    assert (tmp_path / "a.star").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["a.star"]


def test_tomogram_numbers_are_kept_and_written_beside_the_file(tmp_path):
    one = SUBMISSION[SUBMISSION.particle_type == "ribosome"]
    numbers = {7: "TS_69_2", 3: "TS_6_4", 12: "TS_5_4", 99: "TS_unused"}
    out = write_picks(one, tmp_path / "a.tbl", voxel_spacing=10, tomo_map=numbers)
    assert out == [tmp_path / "a.tbl", tmp_path / "a.doc"]
    listed = dict(line.split() for line in (tmp_path / "a.doc").read_text().splitlines())
    used = set(one["experiment"])
    assert listed == {str(k): v for k, v in numbers.items() if v in used}
    table = dynamotable.read(str(tmp_path / "a.tbl"))
    inverse = {v: k for k, v in numbers.items()}
    assert sorted(set(table["tomo"])) == sorted(inverse[e] for e in used)
    back = read_picks(tmp_path / "a.tbl", particle_type="ribosome")  # a.doc found beside it
    assert sorted(back["experiment"]) == sorted(one["experiment"])
    # the map given as a file next to the output is not rewritten
    write_picks(one, tmp_path / "a.em", voxel_spacing=10, tomo_map=tmp_path / "a.doc")
    assert dict(line.split() for line in (tmp_path / "a.doc").read_text().splitlines()) == listed


def test_convert_between_tomogram_numbered_formats_keeps_the_numbers(tmp_path):
    from click.testing import CliRunner

    from cryobench.cli import cli

    one = SUBMISSION[SUBMISSION.particle_type == "ribosome"]
    write_picks(one, tmp_path / "p.tbl", voxel_spacing=10, tomo_map={5: "TS_69_2", 9: "TS_6_4",
                                                                     2: "TS_5_4"})
    before = (tmp_path / "p.doc").read_text()
    res = CliRunner().invoke(cli, ["convert", str(tmp_path / "p.tbl"), "-o",
                                   str(tmp_path / "p.em"), "--particle-type", "ribosome"])
    assert res.exit_code == 2  # a motive list states no pixel size: --voxel-spacing is needed
    res = CliRunner().invoke(cli, ["convert", str(tmp_path / "p.tbl"), "-o",
                                   str(tmp_path / "p.em"), "--particle-type", "ribosome",
                                   "--voxel-spacing", "10"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "p.doc").read_text() == before
    a = read_picks(tmp_path / "p.tbl", particle_type="ribosome")
    b = read_picks(tmp_path / "p.em", particle_type="ribosome", voxel_spacing=10)
    pd.testing.assert_frame_equal(_sorted(a), _sorted(b), check_exact=False, atol=1e-9, rtol=0)


def test_foreign_format_tells_a_scorer_which_files_need_reading(tmp_path):
    from cryobench.io.formats import foreign_format

    assert foreign_format(EXAMPLES / "czii_submission.csv") is None
    assert foreign_format(EXAMPLES / "byu_solution.csv") is None
    assert foreign_format(tmp_path / "missing.csv") is None
    write_picks(SUBMISSION, tmp_path / "a.csv", "copick-csv")
    assert foreign_format(tmp_path / "a.csv") == "copick-csv"
    write_picks(SUBMISSION, tmp_path / "a.star", "relion5", **GEOMETRY)
    assert foreign_format(tmp_path / "a.star") == "relion5"
    with pytest.raises(InputError, match="file not found"):
        foreign_format(tmp_path / "missing.star")


def test_detector_pixel_size_at_a_magnification(tmp_path):
    # RELION 3.0 / Warp: pixel size (Å) = rlnDetectorPixelSize (µm) x 10000 / rlnMagnification
    particles = pd.DataFrame({"rlnCoordinateX": [10.0], "rlnCoordinateY": [20.0],
                              "rlnCoordinateZ": [30.0], "rlnMicrographName": ["TS_01.tomostar"],
                              "rlnDetectorPixelSize": [5.0], "rlnMagnification": [10000.0 / 2]})
    starfile.write(particles, tmp_path / "warp.star")
    got = read_picks(tmp_path / "warp.star", particle_type="ribosome")
    np.testing.assert_allclose(got[["x", "y", "z"]], [[100.0, 200.0, 300.0]])
    assert got["experiment"].tolist() == ["TS_01"]
