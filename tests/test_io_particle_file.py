"""Particle catalogues (``--particles FILE``): CSV and TOML, validated."""

from __future__ import annotations

import pandas as pd
import pytest

from cryobench.errors import InputError
from cryobench.io.particle_file import parse_symmetry, read_particles
from cryobench.metrics import czii_score
from cryobench.particles import ParticleType


def test_csv_catalogue(tmp_path):
    pd.DataFrame({"name": ["ribosome", "proteasome"], "radius": [150, 90],
                  "weight": [1, 2.5], "symmetry": ["c1", None]}).to_csv(tmp_path / "p.csv",
                                                                       index=False)
    got = read_particles(tmp_path / "p.csv")
    assert got == (ParticleType("ribosome", 1, 150.0, 1.0, symmetry="C1"),
                   ParticleType("proteasome", 2, 90.0, 2.5))


def test_toml_catalogues_both_layouts(tmp_path):
    (tmp_path / "a.toml").write_text(
        '[[particles]]\nname = "ribosome"\nradius = 150\nsymmetry = "C1"\n\n'
        '[[particles]]\nname = "apo-ferritin"\nradius = 60\nweight = 0\nlabel = 7\n')
    (tmp_path / "b.toml").write_text(
        '[particles.ribosome]\nradius = 150\nsymmetry = "C1"\n\n'
        '[particles.apo-ferritin]\nradius = 60\nweight = 0\nlabel = 7\n')
    a, b = read_particles(tmp_path / "a.toml"), read_particles(tmp_path / "b.toml")
    assert a == b
    assert a[0] == ParticleType("ribosome", 1, 150.0, 1.0, symmetry="C1")
    assert a[1].label == 7 and a[1].weight == 0.0


def test_a_catalogue_scores_other_classes(tmp_path):
    (tmp_path / "p.toml").write_text('[particles.proteasome]\nradius = 100\nweight = 2\n')
    cat = read_particles(tmp_path / "p.toml")
    sol = pd.DataFrame({"experiment": ["a", "a"], "particle_type": ["proteasome"] * 2,
                        "x": [0.0, 1000], "y": [0.0, 0], "z": [0.0, 0]})
    sub = sol.iloc[:1].assign(x=50.0)  # 50 Å off: within 0.5 x 100 Å (inclusive)
    report = czii_score(sub, sol, radii={p.name: p.radius for p in cat},
                        weights={p.name: p.weight for p in cat})
    # tp 1, fp 0, fn 1: F4 = 17 * 1 / (16 * 2 + 1) = 17/33; one class, weight sum 2
    assert report.score == pytest.approx(17 / 33, abs=1e-15)


@pytest.mark.parametrize("text,message", [
    ("name,radius\nribosome,0\n", "must be > 0"),
    ("name,radius\nribosome,-5\n", "must be > 0"),
    ("name,radius\nribosome,nan\n", "no radius.*NaN"),
    ("name,radius\nribosome,inf\n", "NaN or infinite"),
    ("name,radius\nribosome,big\n", "not a number"),
    ("name,radius,weight\nribosome,150,-1\n", "weight"),
    ("name,radius,weight\nribosome,150,0\n", "sum to 0"),
    ("name,radius\nribosome,150\nribosome,100\n", "appears twice"),
    ("name,radius\nribo_some,150\n", "underscores"),
    ("name,radius,wieght\nribosome,150,1\n", "unknown field"),
    ("name,weight\nribosome,1\n", "no radius"),
    ("name,radius,symmetry\nribosome,150,C0\n", "point group"),
    ("name,radius,symmetry\nribosome,150,helix\n", "point group"),
    ("name,radius,label\nribosome,150,0\n", "label"),
    ("name,radius,label\nribosome,150,1\nproteasome,90,1\n", "used twice"),
    ("name,radius\n,150\n", "no name"),
])
def test_bad_csv_catalogues(tmp_path, text, message):
    (tmp_path / "p.csv").write_text(text)
    with pytest.raises(InputError, match=message) as err:
        read_particles(tmp_path / "p.csv")
    assert err.value.path == str(tmp_path / "p.csv")


@pytest.mark.parametrize("text,message", [
    ("[particles\n", "malformed TOML"),
    ("name = 1\n", "unknown top-level"),
    ("", "no particles"),
    ('[particles.ribosome]\nname = "other"\nradius = 1\n', "has name"),
    ("particles = [1, 2]\n", "not a table"),
])
def test_bad_toml_catalogues(tmp_path, text, message):
    (tmp_path / "p.toml").write_text(text)
    with pytest.raises(InputError, match=message):
        read_particles(tmp_path / "p.toml")


def test_missing_file_and_extension(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_particles(tmp_path / "none.csv")
    (tmp_path / "p.json").write_text("{}")
    with pytest.raises(InputError, match=".csv or .toml"):
        read_particles(tmp_path / "p.json")


def test_parse_symmetry():
    assert [parse_symmetry(s) for s in ("c2", "D7", " o ", "i", "T", "", None)] == [
        "C2", "D7", "O", "I", "T", None, None]
    with pytest.raises(ValueError):
        parse_symmetry("C")
