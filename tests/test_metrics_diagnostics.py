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


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("seed", range(4))
def test_group_kind_counts_agree_with_the_kind_of_every_candidate(seed, threads, monkeypatch):
    """The pair-space counting used for speed equals counting the per-candidate kinds."""
    from cryobench.metrics import diagnostics
    from cryobench.metrics._matching import pairs_within
    from cryobench.metrics.czii import prepare
    from cryobench.metrics.diagnostics import candidate_kinds, group_kind_counts

    rng = np.random.default_rng(seed)
    n, m = 120, 900
    sol = pd.DataFrame({"experiment": rng.choice(["A", "B", "C"], n),
                        "particle_type": rng.choice(TYPES, n),
                        "x": rng.integers(0, 30, n) * 10.0, "y": rng.integers(0, 30, n) * 10.0,
                        "z": rng.integers(0, 8, n) * 10.0})
    sol = sol.drop_duplicates(["experiment", "x", "y", "z"]).reset_index(drop=True)
    src = rng.integers(0, len(sol), m)
    sub = sol.iloc[src].reset_index(drop=True)
    # on a 10 Å grid: many exact ties between distances, and candidates near two references
    sub[["x", "y", "z"]] += rng.integers(-6, 7, (m, 3)) * 10.0
    monkeypatch.setenv("CRYOBENCH_NUM_THREADS", threads)
    monkeypatch.setattr(diagnostics, "_PARALLEL_MIN", 0)
    prep = prepare(sub, sol, czii_radii(), 0.5)
    ri, ci, d2 = pairs_within(prep.ref_xyz, prep.ref_group, prep.cand_xyz, prep.cand_group,
                              prep.group_radius)
    kind = candidate_kinds(len(prep.cand_group), ri, ci, d2)
    by_kind = np.bincount(prep.cand_group * 3 + kind, minlength=3 * prep.n_groups)
    by_kind = by_kind.reshape(prep.n_groups, 3)
    n_g, dup_g, unm_g = group_kind_counts(prep, ri, ci, d2)
    assert np.array_equal(n_g, by_kind.sum(axis=1))
    assert np.array_equal(dup_g, by_kind[:, 2])
    assert np.array_equal(unm_g, by_kind[:, 0])
    assert by_kind[:, 1].sum() > 0 and by_kind[:, 2].sum() > 0
