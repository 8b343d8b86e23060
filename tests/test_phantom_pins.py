"""The first-generation presets keep making the same volumes and picks.

Committed run records point at the data of ``czii``, ``byu``, ``tiny`` and their splits
(``czii-synth``, ``byu-synth``): these hashes were taken before the v2 generator was added and
must never change. They are exact for the numpy/scipy build they were taken with (FFT rounding
may differ on another build), so on other versions the tests skip and say why.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import scipy

from cryobench.data.phantom import PRESETS, generate_tomogram

PINNED_BUILD = ("2.4.6", "1.17.1")  # numpy, scipy
ROOT = Path(__file__).resolve().parents[1]


def _same_build() -> None:
    if (np.__version__, scipy.__version__) != PINNED_BUILD:
        pytest.skip(f"hashes pinned for numpy {PINNED_BUILD[0]} / scipy {PINNED_BUILD[1]}, "
                    f"this is {np.__version__} / {scipy.__version__}")


def _hash(ph) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(ph.volume).tobytes())
    h.update(ph.picks[["particle_type", "x", "y", "z"]].to_csv(index=False).encode())
    return h.hexdigest()


def _small_czii():
    czii = PRESETS["czii"]
    return dataclasses.replace(czii, shape=(48, 128, 128), counts=((1, 2),) * len(czii.counts),
                               clutter=(20, 30), vesicles=(1, 1), gold=(1, 2))


def _small_byu():
    return dataclasses.replace(PRESETS["byu"], shape=(48, 128, 128), voxel_spacing=40.0,
                               spacing_range=(36.0, 44.0), clutter=(2, 5))


FAST = {
    "tiny": (lambda: PRESETS["tiny"], 3, {},
             "a7b5726450295c2ca7611bbc11680acc5cff1156d53e0887893f356f991df8db"),
    "tiny-byu": (lambda: PRESETS["tiny-byu"], 3, {"has_motor": True},
                 "ec2aa4b2a5745ef26a040c5a5368b98038f4174f9390247041a1cb5b94b0b9c5"),
    "czii-code-small": (_small_czii, 5, {},
                        "08bb80541d3a6ad08758dd7395a99fcc468c9d3b079fe50d7d65937af47651e7"),
    "byu-code-small": (_small_byu, 5, {"has_motor": True},
                       "ac77b7819d3ff7ce33a46a4758a5ea76ee1a2c023c56fa7bdb70b1c0033b2152"),
    "byu-code-small-negative": (
        _small_byu, 5, {"has_motor": False},
        "494408bb5ce6da772d2171e908c4d021aa61b4e67e1302c2e8bd0c1072fa5dd5"),
}


@pytest.mark.parametrize("case", sorted(FAST))
def test_first_generation_code_paths_are_unchanged(case):
    _same_build()
    spec, seed, kwargs, expected = FAST[case]
    assert _hash(generate_tomogram(spec(), seed, **kwargs)) == expected


@pytest.mark.slow
@pytest.mark.parametrize("preset, kwargs, expected", [
    ("czii", {}, "5173c21279f6b4a07048cc129e7e139164250fa45205748725bd517d8150cfbc"),
    ("byu", {"has_motor": True},
     "48cbaa16a3eea0dd171e19bbfdbad208507f8bd8001c5baad34d4125ab9595b4"),
])
def test_first_generation_presets_are_unchanged(preset, kwargs, expected):
    _same_build()
    assert _hash(generate_tomogram(PRESETS[preset], 3, **kwargs)) == expected


def _committed_fingerprints(split: str) -> set[str]:
    found = set()
    for rec in (ROOT / "leaderboards" / "results" / split).rglob("record.json"):
        found.add(json.loads(rec.read_text())["dataset_fingerprint"])
    return found


@pytest.mark.slow
@pytest.mark.parametrize("split", ["byu-synth", "czii-synth"])
def test_committed_records_still_match_their_split(split):
    """Generates the whole split (minutes, GBs): its fingerprint is the records' one."""
    _same_build()
    from cryobench.data import load_split

    committed = _committed_fingerprints(split)
    assert len(committed) == 1
    assert load_split(split).fingerprint in committed
