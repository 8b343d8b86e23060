import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from cryobench import coords
from cryobench.cli import cli
from cryobench.errors import InputError
from cryobench.io import atomic_write_text, read_picks_csv, write_picks_csv
from cryobench.particles import CZII_PARTICLES, ParticleType, czii_weights

finite = st.floats(-1e5, 1e5, allow_nan=False, allow_infinity=False)


def test_czii_catalogue_matches_the_challenge():
    assert [p.name for p in CZII_PARTICLES] == [
        "apo-ferritin", "beta-amylase", "beta-galactosidase", "ribosome", "thyroglobulin",
        "virus-like-particle",
    ]
    assert sum(czii_weights().values()) == 7
    assert {p.name: p.radius for p in CZII_PARTICLES}["ribosome"] == 150


def test_particle_names_may_not_contain_underscores():
    with pytest.raises(ValueError, match="underscore"):
        ParticleType("bad_name", 1, 10.0)


def test_axis_order_and_units_are_explicit():
    # x=10 Å, y=20 Å, z=30 Å at 10 Å/voxel is voxel (z, y, x) = (3, 2, 1)
    np.testing.assert_allclose(coords.angstrom_to_voxel([10, 20, 30], 10.0), [[3, 2, 1]])
    np.testing.assert_allclose(coords.voxel_to_angstrom([[3, 2, 1]], 10.0), [[10, 20, 30]])
    assert coords.angstrom_to_index([[14.9, 25.1, 30]], 10.0).tolist() == [[3, 3, 1]]


@given(st.lists(st.tuples(finite, finite, finite), min_size=1, max_size=20),
       st.floats(0.5, 50, allow_nan=False))
def test_coordinate_round_trip(points, spacing):
    xyz = np.array(points)
    back = coords.voxel_to_angstrom(coords.angstrom_to_voxel(xyz, spacing), spacing)
    np.testing.assert_allclose(back, xyz, rtol=1e-12, atol=1e-9)


def test_picks_dataframe_round_trip():
    zyx = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    df = coords.voxels_to_picks(zyx, 10.0, "TS_1", "ribosome", score=[0.5, 0.9])
    assert list(df.columns) == ["experiment", "particle_type", "x", "y", "z", "score"]
    assert df.loc[0, ["x", "y", "z"]].tolist() == [30.0, 20.0, 10.0]
    np.testing.assert_allclose(coords.picks_to_voxels(df, 10.0), zyx)


def test_csv_round_trip_and_validation(tmp_path):
    df = pd.DataFrame({"experiment": ["TS_1"], "particle_type": ["ribosome"],
                       "x": [1.0], "y": [2.0], "z": [3.0]})
    path = tmp_path / "picks.csv"
    write_picks_csv(df, path)
    back = read_picks_csv(path, known_types=["ribosome"])
    assert back[["x", "y", "z"]].iloc[0].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(InputError, match="unknown particle type"):
        read_picks_csv(path, known_types=["apo-ferritin"])
    (tmp_path / "nan.csv").write_text("experiment,particle_type,x,y,z\nTS_1,ribosome,nan,1,1\n")
    with pytest.raises(InputError, match="NaN"):
        read_picks_csv(tmp_path / "nan.csv")
    (tmp_path / "cols.csv").write_text("experiment,particle,x,y,z\nTS_1,ribosome,1,1,1\n")
    with pytest.raises(InputError, match="missing column"):
        read_picks_csv(tmp_path / "cols.csv")


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    from cryobench.io.atomic import atomic_path

    dest = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert not dest.exists() and list(tmp_path.iterdir()) == []
    atomic_write_text(dest, "whole")
    assert dest.read_text() == "whole"


def test_cli_help_and_version():
    runner = CliRunner()
    assert runner.invoke(cli, ["--help"]).exit_code == 0
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and "cryobench" in result.output
