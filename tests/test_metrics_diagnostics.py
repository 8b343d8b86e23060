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


def test_one_to_one_diagnostics_score_with_the_one_to_one_rule():
    # apo-ferritin threshold 30 Å; references at 0 and 40; one candidate at 20 is in range of
    # both: the Kaggle rule counts 2 tp, one-to-one 1 tp and 1 fn.
    sol = picks([("A", "apo-ferritin", 0, 0, 0), ("A", "apo-ferritin", 40, 0, 0)])
    sub = picks([("A", "apo-ferritin", 20, 0, 0)])
    d = gaming_diagnostics(sub, sol, matching="one-to-one")
    assert d.params["matching"] == "one-to-one"
    assert d.score == czii_score(sub, sol, matching="one-to-one").score
    assert d.score == pytest.approx((17 * 0.5 / 16.5) / 7)  # P 1, R 1/2
    assert d.score_deduplicated == d.score  # nothing to remove
    # the Kaggle rule: tp 2, fp = 1 candidate - 2 tp = -1, so P 2 and F4 34/33
    assert gaming_diagnostics(sub, sol).score == pytest.approx((34 / 33) / 7)


def test_one_to_one_deduplicated_submission_is_matched_again():
    # A (x=20) is the closest candidate of both references (20 Å each); B (x=65) is 25 Å from
    # the second, so a duplicate. One-to-one pairs A and B with one reference each (tp 2);
    # without B only one reference can be matched (tp 1, fn 1). Kaggle: tp 2 either way,
    # fp = candidates - tp: 0 before, -1 after (P 2, F4 34/33), exactly as rescoring A alone.
    sol = picks([("A", "apo-ferritin", 0, 0, 0), ("A", "apo-ferritin", 40, 0, 0)])
    sub = picks([("A", "apo-ferritin", 20, 0, 0), ("A", "apo-ferritin", 65, 0, 0)])
    one = gaming_diagnostics(sub, sol, matching="one-to-one")
    assert one.n_duplicates == 1
    assert one.score == pytest.approx(1 / 7)
    assert one.score_deduplicated == pytest.approx((17 * 0.5 / 16.5) / 7)
    kaggle = gaming_diagnostics(sub, sol)
    assert kaggle.score == pytest.approx(1 / 7)
    assert kaggle.score_deduplicated == pytest.approx((34 / 33) / 7)
    assert kaggle.score_deduplicated == czii_score(sub.iloc[:1], sol).score
    assert one.score_deduplicated == czii_score(sub.iloc[:1], sol, matching="one-to-one").score
    rep, diag = czii_score_with_diagnostics(sub, sol, matching="one-to-one")
    assert diag == one and rep.score == one.score


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


def _duplicate_rows(sub: pd.DataFrame, sol: pd.DataFrame) -> set[int]:
    """Brute force: rows in range of a reference of their group but the closest of none."""
    thresholds = {k: 0.5 * r for k, r in czii_radii().items()}
    in_range, first = set(), set()
    for _, ref in sol.iterrows():
        same = sub[(sub.experiment == ref.experiment) & (sub.particle_type == ref.particle_type)]
        d = np.sqrt(((same[["x", "y", "z"]].to_numpy() - ref[["x", "y", "z"]].to_numpy(float))
                     ** 2).sum(axis=1))
        near = d <= thresholds[ref.particle_type]
        if near.any():
            in_range |= set(same.index[near])
            first.add(int(same.index[near][np.argmin(d[near])]))  # ties: the lowest row
    return in_range - first


@pytest.mark.parametrize("matching", ["kaggle", "one-to-one"])
@settings(max_examples=25, deadline=None)
@given(sol_rows=st.lists(point, min_size=1, max_size=12), sub_rows=st.lists(point, max_size=25))
def test_deduplicated_score_is_the_score_of_the_submission_without_duplicates(
        matching, sol_rows, sub_rows):
    sol = picks(sol_rows).drop_duplicates(["experiment", "x", "y", "z"])
    sub = picks(sub_rows)
    d = gaming_diagnostics(sub, sol, matching=matching)
    dups = _duplicate_rows(sub, sol)
    assert d.n_duplicates == len(dups)
    assert d.score == czii_score(sub, sol, matching=matching).score
    assert d.score_deduplicated == pytest.approx(
        czii_score(sub.drop(index=sorted(dups)), sol, matching=matching).score, abs=1e-12)
