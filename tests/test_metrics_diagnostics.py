"""Gaming diagnostics: duplicates, unmatched candidates, the deduplicated score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryobench.metrics import czii_score, czii_score_with_diagnostics, gaming_diagnostics
from cryobench.particles import czii_radii

TYPES = list(czii_radii())


def picks(rows):
    df = pd.DataFrame(rows, columns=["experiment", "particle_type", "x", "y", "z"])
    df[["x", "y", "z"]] = df[["x", "y", "z"]].astype(float)
    return df


def test_hand_worked_duplicates_and_unmatched():
    # ribosome threshold 75 Å. Reference at 0; picks at 10, 20, 30 Å (one first, two
    # duplicates) and one 500 Å away (unmatched).
    sol = picks([("A", "ribosome", 0, 0, 0)])
    sub = picks([("A", "ribosome", 20, 0, 0), ("A", "ribosome", 10, 0, 0),
                 ("A", "ribosome", 30, 0, 0), ("A", "ribosome", 500, 0, 0)])
    d = gaming_diagnostics(sub, sol)
    assert (d.n_candidates, d.n_matched, d.n_duplicates, d.n_unmatched) == (4, 3, 2, 1)
    assert d.duplicate_rate == 0.5 and d.unmatched_rate == 0.25
    # before: tp 1, fp 3 -> P 1/4, R 1; after removing the 2 duplicates: P 1/2, R 1
    f = {p: 17 * p / (16 * p + 1) for p in (0.25, 0.5)}
    assert d.score == pytest.approx(f[0.25] / 7) and d.score == czii_score(sub, sol).score
    assert d.score_deduplicated == pytest.approx(f[0.5] / 7)
    c = d.per_class["ribosome"]
    assert (c.n_candidates, c.n_duplicates, c.n_unmatched) == (4, 2, 1)


def test_a_candidate_first_for_two_references_is_not_a_duplicate():
    sol = picks([("A", "apo-ferritin", 0, 0, 0), ("A", "apo-ferritin", 40, 0, 0)])
    d = gaming_diagnostics(picks([("A", "apo-ferritin", 20, 0, 0)]), sol)
    assert (d.n_duplicates, d.n_unmatched) == (0, 0)
    assert d.score_deduplicated == d.score


def test_equal_distances_keep_the_first_row():
    sol = picks([("A", "ribosome", 0, 0, 0)])
    sub = picks([("A", "ribosome", 10, 0, 0), ("A", "ribosome", -10, 0, 0)])
    d = gaming_diagnostics(sub, sol)
    assert d.n_duplicates == 1


def test_no_candidates():
    d = gaming_diagnostics(picks([]), picks([("A", "ribosome", 0, 0, 0)]))
    assert (d.n_candidates, d.duplicate_rate, d.unmatched_rate) == (0, 0.0, 0.0)


def test_combined_call_equals_separate_calls():
    rng = np.random.default_rng(0)
    n = 200
    sol = pd.DataFrame({"experiment": rng.choice(["a", "b", "c"], n),
                        "particle_type": rng.choice(TYPES, n), "x": rng.uniform(0, 2000, n),
                        "y": rng.uniform(0, 2000, n), "z": rng.uniform(0, 500, n)})
    sub = sol.iloc[rng.integers(0, n, 3 * n)].reset_index(drop=True)
    sub[["x", "y", "z"]] += rng.normal(0, 30, (3 * n, 3))
    rep, diag = czii_score_with_diagnostics(sub, sol, per_experiment=True)
    assert rep.score == czii_score(sub, sol).score
    assert diag == gaming_diagnostics(sub, sol)
    assert diag.to_dict()["per_class"]["ribosome"]["n_candidates"] == int(
        (sub.particle_type == "ribosome").sum())


coord = st.integers(-200, 200).map(float)
point = st.tuples(st.sampled_from(["A", "B"]), st.sampled_from(TYPES[:3]), coord, coord, coord)


@settings(max_examples=30, deadline=None)
@given(st.lists(point, min_size=1, max_size=20), st.lists(point, max_size=40))
def test_deduplicating_never_lowers_the_score(sol_rows, sub_rows):
    sol = picks(sol_rows).drop_duplicates(["experiment", "x", "y", "z"])
    sub = picks(sub_rows)
    d = gaming_diagnostics(sub, sol)
    assert d.score_deduplicated >= d.score - 1e-15
    assert d.n_matched + d.n_unmatched == d.n_candidates
    assert 0 <= d.duplicate_rate <= 1 and 0 <= d.unmatched_rate <= 1
