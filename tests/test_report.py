"""Split reports and the aggregates behind them (stats, summary, loading)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cryobench.cli import cli
from cryobench.errors import ResultsError
from cryobench.report import stats
from cryobench.report.loading import load_records
from cryobench.report.split_report import write_report
from cryobench.report.summary import label, rank_entries, summarise
from cryobench.testing.records import fake_record, record_path, write_fake_results

CZII_W = {"apo-ferritin": 1.0, "beta-amylase": 0.0, "beta-galactosidase": 2.0, "ribosome": 1.0,
          "thyroglobulin": 2.0, "virus-like-particle": 1.0}


def _write(results, rec):
    rec.save(record_path(results, rec))


def _random_counts(rng, experiments, classes, neg_fp=False):
    rows = []
    for e in experiments:
        for c in classes:
            tp, fn = int(rng.integers(0, 20)), int(rng.integers(0, 20))
            fp = int(rng.integers(-tp if neg_fp else 0, 20))
            rows.append({"experiment": e, "particle_type": c, "tp": tp, "fp": fp, "fn": fn})
    return rows


# ----- stats ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_vectorised_score_equals_metrics_core(seed):
    from cryobench.metrics import czii_score_from_counts

    rng = np.random.default_rng(seed)
    rows = _random_counts(rng, [f"TS_{i}" for i in range(6)], list(CZII_W), neg_fp=seed % 2)
    if seed == 3:  # a class without references anywhere
        rows = [dict(r, tp=0, fn=0) if r["particle_type"] == "ribosome" else r for r in rows]
    cube = stats.CountCube.from_rows([0], [rows], CZII_W, 4.0)
    expected = czii_score_from_counts(pd.DataFrame(rows), CZII_W, 4).score
    assert cube.seed_scores()[0] == pytest.approx(expected, abs=1e-12)


def test_byu_counts_score_is_f2():
    rows = [{"experiment": f"t{i}", "particle_type": "flagellar-motor", "tp": tp, "fp": fp,
             "fn": fn} for i, (tp, fp, fn) in enumerate([(1, 0, 0), (0, 1, 0), (0, 0, 1),
                                                         (1, 0, 0), (0, 0, 0)])]
    cube = stats.CountCube.from_rows([0], [rows], {"flagellar-motor": 1.0}, 2.0)
    p, r = 2 / 3, 2 / 3
    assert cube.seed_scores()[0] == pytest.approx(5 * p * r / (4 * p + r))


def test_bootstrap_matches_a_naive_loop():
    rng = np.random.default_rng(1)
    exps = [f"TS_{i}" for i in range(7)]
    per_seed = [_random_counts(rng, exps, list(CZII_W)) for _ in range(3)]
    cube = stats.CountCube.from_rows([0, 1, 2], per_seed, CZII_W, 4.0)
    fast = stats.bootstrap_seed_mean(cube, n_resamples=50, seed=7)
    draws = np.random.default_rng(7).integers(0, len(exps), size=(50, len(exps)))
    naive = []
    for d in draws:
        scores = []
        for rows in per_seed:
            picked = [r for e in d for r in rows if r["experiment"] == exps[e]]
            sub = stats.CountCube.from_rows([0], [picked], CZII_W, 4.0,
                                            classes=list(CZII_W), experiments=exps)
            # from_rows adds up duplicate experiments, which is what a resample is
            scores.append(sub.seed_scores()[0])
        naive.append(np.mean(scores))
    np.testing.assert_allclose(fast, naive, atol=1e-12)
    lo, hi = stats.percentile_interval(fast)
    assert lo <= np.median(fast) <= hi


def test_paired_difference_of_a_config_with_itself_is_zero():
    rng = np.random.default_rng(2)
    rows = [_random_counts(rng, ["a", "b", "c", "d"], list(CZII_W)) for _ in range(2)]
    cube = stats.CountCube.from_rows([0, 1], rows, CZII_W, 4.0)
    point, samples = stats.paired_bootstrap_difference(cube, cube, 200)
    assert point == 0.0 and np.all(samples == 0.0)


# ----- loading and summary --------------------------------------------------------------------
def test_loading_reports_bad_files_and_keeps_good_ones(tmp_path):
    write_fake_results(tmp_path, methods=[("unet3d", 0.7)], seeds=[0, 1])
    (tmp_path / "junk.record.json").write_text("{not json")
    (tmp_path / "notes.json").write_text("{}")  # not named like a record: not looked at
    newer = fake_record(seed=5)
    p = record_path(tmp_path, newer)
    p.parent.mkdir(parents=True)
    p.write_text(json.dumps({**newer.to_dict(), "schema_version": 99}))
    records, bad = load_records([tmp_path])
    assert sorted(r.seed for r in records) == [0, 1]
    reasons = {q.name if q.name == "junk.record.json" else "newer": why for q, why in bad}
    assert len(bad) == 2
    assert "JSON" in reasons["junk.record.json"]
    assert "newer" in reasons["newer"]


def test_loading_nothing_is_an_error(tmp_path):
    with pytest.raises(ResultsError, match="no valid run records"):
        load_records([tmp_path])
    with pytest.raises(ResultsError, match="not found"):
        load_records([tmp_path / "missing"])


def test_entries_are_recomputed_from_counts_and_ranked(tmp_path):
    write_fake_results(tmp_path)
    records, _ = load_records([tmp_path])
    entries = summarise(records, n_flips=200)
    assert [e.method for e in entries] == ["unet3d", "deepfindet", "faster_rcnn"]
    for e in entries:
        assert not e.flags
        stored = np.mean([r.score for r in e.records])
        assert e.score == pytest.approx(stored, abs=1e-9)
        assert e.interval[0] <= e.score <= e.interval[1]
        assert e.seeds == [0, 1, 2]
    assert entries[0].rank == 1


def test_missing_seed_and_class_are_flagged_not_ranked(tmp_path):
    write_fake_results(tmp_path, methods=[("unet3d", 0.7)])
    write_fake_results(tmp_path, methods=[("deepfindet", 0.9)], seeds=[0, 1])
    rec = fake_record("faster_rcnn", seed=0, skill=0.5)
    rec.counts = [c for c in rec.counts if c.particle_type != "ribosome"]
    rec.score = float(stats.CountCube.from_rows([0], [rec.count_rows()], CZII_W, 4)
                      .seed_scores()[0])
    for s in (0, 1, 2):
        rec.seed = s
        _write(tmp_path, rec)
    records, _ = load_records([tmp_path])
    by = {e.method: e for e in summarise(records, n_flips=100)}
    assert by["unet3d"].rank == 1 and not by["unet3d"].flags
    assert by["deepfindet"].rank is None
    assert any("missing seed(s) 2" in f for f in by["deepfindet"].flags)
    assert by["faster_rcnn"].rank is None
    assert any("ribosome" in f for f in by["faster_rcnn"].flags)


def test_stored_score_disagreeing_with_counts_is_flagged(tmp_path):
    rec = fake_record(seed=0)
    rec.score = rec.score + 0.1
    rec.metrics["czii"]["score"] = rec.score
    _write(tmp_path, rec)
    records, _ = load_records([tmp_path])
    (e,) = summarise(records, n_flips=0)
    assert any("differs from its counts" in f for f in e.flags)
    assert e.interval is None


def test_ranks_separate_only_what_the_paired_comparison_separates(tmp_path):
    exps = [f"e{i}" for i in range(12)]
    for salt, (name, skill) in enumerate([("a", 0.70), ("b", 0.69), ("c", 0.2)]):
        write_fake_results(tmp_path, methods=[(name, skill)], seeds=[0, 1, 2], experiments=exps,
                           rng_salt=salt)
    records, _ = load_records([tmp_path])
    entries = summarise(records, n_flips=300)
    by = {e.method: e for e in entries}
    assert by["a"].rank == by["b"].rank == 1 and by["c"].rank == 3
    assert by["a"].tied_with == [label(by["b"])] and by["c"].tied_with == []
    assert by["a"].interval_info.includes_seed_spread
    # flagged entries go last, unranked
    entries[0].flags.append("x")
    rank_entries(entries)
    assert entries[-1].rank is None and entries[-1].tied_with == []


def test_one_seed_or_few_tomograms_cannot_rank_and_say_so(tmp_path):
    write_fake_results(tmp_path, methods=[("a", 0.9), ("c", 0.1)], seeds=[0],
                       experiments=[f"e{i}" for i in range(12)])
    records, _ = load_records([tmp_path])
    entries = summarise(records, n_flips=300)
    assert [e.rank for e in entries] == [1, 1]
    assert "fewer than two seeds" in entries[0].rank_note
    assert not entries[0].interval_info.includes_seed_spread
    (tmp_path / "b").mkdir()
    write_fake_results(tmp_path / "b", methods=[("a", 0.9), ("c", 0.1)], seeds=[0, 1, 2],
                       experiments=["e1", "e2", "e3", "e4"])
    records, _ = load_records([tmp_path / "b"])
    entries = summarise(records, n_flips=300)
    assert [e.rank for e in entries] == [1, 1] and entries[0].rank_note


# ----- the report ----------------------------------------------------------------------------
def _no_external_refs(html: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", html)
    assert "<script" not in html
    assert re.findall(r"<link[^>]*>", html) == ['<link rel="icon" href="data:,">']


def test_html_report_is_self_contained(tmp_path):
    write_fake_results(tmp_path / "res")
    out = tmp_path / "report.html"
    res = write_report([tmp_path / "res"], out, n_flips=200, use_data=False)
    html = out.read_text()
    _no_external_refs(html)
    assert res.split == "czii-synth" and res.n_entries == 3 and res.n_records == 9
    for m in ("unet3d", "deepfindet", "faster_rcnn"):
        assert f'id="czii-synth--{m}--' in html
    assert html.count("data:image/png;base64,") >= 5
    for word in ("precision", "recall", "F4", "F1", "AP", "peak memory", "TS_3"):
        assert word in html
    assert "--no-data" in html  # the note saying why curves are missing


def test_markdown_report_links_its_figures(tmp_path):
    write_fake_results(tmp_path / "res", methods=[("unet3d", 0.7)])
    out = tmp_path / "r.md"
    write_report([tmp_path / "res"], out, n_flips=100, use_data=False)
    text = out.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links and all((tmp_path / link).is_file() for link in links)
    assert "| rank | method | score | 95% CI |" in text


def test_several_splits_need_a_choice(tmp_path):
    write_fake_results(tmp_path, methods=[("unet3d", 0.7)])
    write_fake_results(tmp_path, methods=[("cnn_regressor", 0.6)], split="byu-synth",
                       metric="byu")
    with pytest.raises(ResultsError, match="2 splits"):
        write_report([tmp_path], tmp_path / "r.html", use_data=False)
    res = write_report([tmp_path], tmp_path / "r.html", split="byu-synth", n_flips=50,
                       use_data=False)
    assert res.n_entries == 1 and "F2" in (tmp_path / "r.html").read_text()


def test_report_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, ["report", str(tmp_path), "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "no valid run records" in r.output
    write_fake_results(tmp_path, methods=[("unet3d", 0.7)], seeds=[0])
    r = runner.invoke(cli, ["report", str(tmp_path), "-o", str(tmp_path / "r.pdf")])
    assert r.exit_code == 2 and ".html or .md" in r.output
    assert not (tmp_path / "r.pdf").exists()
    r = runner.invoke(cli, ["report", str(tmp_path), "-o", str(tmp_path / "r.html"),
                            "--no-data", "--flips", "50"])
    assert r.exit_code == 0, r.output
    assert "wrote" in r.output and (tmp_path / "r.html").is_file()


@pytest.fixture
def tiny_split():
    """The tiny split, generated (seconds, once) in the session's own cache."""
    from cryobench.data import load_split

    sp = load_split("tiny")
    sp.project(progress=False)
    return sp


def test_report_with_data_draws_curves_and_a_slice(tmp_path, tiny_split):
    """On the tiny split: distance table, PR panels, sweep, diagnostics and a TP/FP/FN slice."""
    from cryobench.testing.predictions import write_scored_results

    sp = tiny_split
    write_scored_results(tmp_path / "res", sp.solution("test"), [("unet3d", 0.8)], seeds=(0, 1),
                         split="tiny", fingerprint=sp.fingerprint)
    out = tmp_path / "r.html"
    res = write_report([tmp_path / "res"], out, n_flips=50)
    html = out.read_text()
    _no_external_refs(html)
    assert [n for n in res.notes if "say little" not in n] == [], res.notes
    for caption in ("Precision against recall per class", "minimum prediction score kept",
                    "against the match distance", "marked by outcome (Kaggle rule)",
                    "Metric-gaming diagnostics per class", "mean over 2 seeds"):
        assert caption in html, caption
    assert html.count('<table class="distance">') == 1
    assert html.count('<table class="diagnostics">') == 1
    # the markdown report links every figure, the slice included
    md = tmp_path / "r.md"
    write_report([tmp_path / "res"], md, n_flips=50)
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md.read_text())
    assert any("slice-" in link for link in links)
    assert all((tmp_path / link).is_file() for link in links)
    assert "| **weighted score** |" in md.read_text()
    # the per-class table: F-beta mean ± SD over the 2 seeds, in both
    assert "mean ± SD over seeds" in html and '<span class="sd">± ' in html
    rows = [r for r in md.read_text().splitlines() if r.startswith("| ribosome |")]
    assert rows and re.search(r"\| [0-9.]+ ± [0-9.]+ \|", rows[0]), rows


def test_report_names_what_it_leaves_out_without_data(tmp_path):
    from cryobench.testing.predictions import fabricate_solution, write_scored_results

    sol = fabricate_solution(["TS_1", "TS_2"], per_class=6)
    write_scored_results(tmp_path / "res", sol, [("unet3d", 0.8)], seeds=(0,))
    out = tmp_path / "r.html"
    res = write_report([tmp_path / "res"], out, n_flips=20, use_data=False)
    html = out.read_text()
    assert any("--no-data" in n for n in res.notes)
    assert "No example slice: data not used (--no-data)." in html
    assert '<table class="distance">' not in html
    assert '<table class="diagnostics">' in html  # the records carry them


# ----- curves, outcomes and the diagnostics table, worked by hand -----------------------------
def _rec(**params):
    from cryobench.metrics.params import MetricParams
    from cryobench.particles import CZII_PARTICLES

    rec = fake_record()
    rec.params = MetricParams.from_particles(CZII_PARTICLES, **params).to_dict("czii")
    return rec


def _truth(table, metric="czii"):
    from cryobench.report.truth import GroundTruth

    return GroundTruth("czii-synth", metric, table, None, "test")


def _refs():
    """Two references of each CZII class in each of two experiments, well apart."""
    from cryobench.particles import CZII_PARTICLES

    rows = []
    for e in ("TS_1", "TS_2"):
        for k, p in enumerate(CZII_PARTICLES):
            for j in range(2):
                rows.append((e, p.name, 1000.0 + 800 * k, 1000.0 + 2000 * j, 500.0))
    return pd.DataFrame(rows, columns=["experiment", "particle_type", "x", "y", "z"])


def test_distance_curve_worked_by_hand():
    """Every reference picked once, 0.75 x its radius away: nothing matches up to 0.7 x radius,
    everything from 0.8 x: F-beta 0 then 1 for every class, and so the weighted score."""
    from cryobench.particles import CZII_PARTICLES
    from cryobench.report.curves import MULTIPLIERS, distance_curve

    refs = _refs()
    radius = refs["particle_type"].map({p.name: p.radius for p in CZII_PARTICLES})
    picks = refs.assign(x=refs["x"] + 0.75 * radius, score=1.0)
    dc = distance_curve(_rec(), picks, _truth(refs))
    assert list(dc.multipliers) == list(MULTIPLIERS) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7,
                                                          0.8, 0.9, 1.0]
    expected = [0.0] * 7 + [1.0] * 3
    assert dc.score.tolist() == expected
    assert set(dc.fbeta) == {p.name for p in CZII_PARTICLES}
    for c, v in dc.fbeta.items():
        assert v.tolist() == expected, c
    assert dc.official == 0.5 and dc.unit == "radius"


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 30), matching=st.sampled_from(
    ["kaggle", "one-to-one"]), on_edge=st.booleans())
def test_distance_curve_equals_the_score_at_every_distance(seed, n, matching, on_edge):
    """Each point is what the registry gives with only the distance replaced, also for picks
    lying exactly on a threshold (m x radius along one axis)."""
    from cryobench.metrics.params import MetricParams
    from cryobench.metrics.registry import get_metric
    from cryobench.particles import CZII_PARTICLES
    from cryobench.report.curves import MULTIPLIERS, distance_curve

    rng = np.random.default_rng(seed)
    refs = _refs()
    picks = refs.sample(n=n, replace=True, random_state=seed).reset_index(drop=True)
    if on_edge:
        radius = picks["particle_type"].map({p.name: p.radius for p in CZII_PARTICLES})
        radius = radius.astype(np.float64).to_numpy()
        picks["x"] += radius * rng.choice(MULTIPLIERS, n)
    else:
        picks[["x", "y", "z"]] += rng.normal(0, 60, (n, 3))
    rec = _rec(matching=matching)
    dc = distance_curve(rec, picks, _truth(refs))
    base = MetricParams.from_record(rec.params)
    for k, m in enumerate(MULTIPLIERS):
        ev = get_metric("czii").evaluate(picks, refs, base.replace(distance_multiplier=m),
                                         diagnostics=False)
        assert dc.score[k] == ev.score
        for c, v in dc.fbeta.items():
            assert v[k] == ev.result.per_class[c].fbeta


def test_distance_curve_byu_scales_the_match_distance():
    from cryobench.report.curves import distance_curve
    from cryobench.report.truth import GroundTruth

    sol = pd.DataFrame({"tomo_id": ["a", "b"], "Motor axis 0": [50.0, -1.0],
                        "Motor axis 1": [50.0, -1.0], "Motor axis 2": [50.0, -1.0],
                        "Voxel spacing": [10.0, 10.0], "Has motor": [1, 0]})
    # the motor of "a" predicted 45 voxels = 450 Å away; nothing predicted in "b"
    picks = pd.DataFrame({"experiment": ["a"], "particle_type": ["flagellar-motor"],
                          "x": [500.0], "y": [500.0], "z": [950.0], "score": [0.9]})
    from types import SimpleNamespace

    truth = GroundTruth("byu-synth", "byu", sol, None, "test",
                        [SimpleNamespace(name="a", voxel_spacing=10.0),
                         SimpleNamespace(name="b", voxel_spacing=10.0)])
    rec = fake_record(metric="byu", split="byu-synth")
    rec.params = {"beta": 2.0, "distance_angstrom": 1000.0}
    dc = distance_curve(rec, picks, truth)
    # within the distance from 0.5 x 1000 Å on: F2 1, below it the motor is missed: F2 0
    assert dc.score.tolist() == [0.0] * 4 + [1.0] * 6
    assert dc.unit == "1000 Å" and dc.official == 1.0


def test_pr_curve_worked_by_hand():
    """Four apo-ferritin references; picks on two of them (scores 0.9, 0.7) and two false
    ones (0.8, 0.6): keeping scores >= 0.9, 0.8, 0.7, 0.6 gives tp 1, 1, 2, 2 of 1, 2, 3, 4
    picks."""
    from cryobench.report.curves import pr_curves

    refs = _refs()
    refs = refs[refs["particle_type"] == "apo-ferritin"].reset_index(drop=True)
    picks = pd.concat([refs.iloc[[0, 1]].assign(score=[0.9, 0.7]),
                       refs.iloc[[0, 1]].assign(x=9000.0, score=[0.8, 0.6])])
    (cv,) = pr_curves(_rec(), picks, _truth(refs)).values()
    np.testing.assert_allclose(cv.levels, [0.9, 0.8, 0.7, 0.6])
    np.testing.assert_allclose(cv.precision, [1.0, 0.5, 2 / 3, 0.5])
    np.testing.assert_allclose(cv.recall, [0.25, 0.25, 0.5, 0.5])
    assert cv.n_references == 4 and cv.n_picks == 4


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 25), matching=st.sampled_from(
    ["kaggle", "one-to-one"]))
def test_pr_curve_equals_the_score_at_every_level(seed, n, matching):
    """Each PR point is what the metric itself gives for the picks kept at that level."""
    from cryobench.metrics.params import MetricParams
    from cryobench.metrics.registry import get_metric
    from cryobench.report.curves import pr_curves

    rng = np.random.default_rng(seed)
    refs = _refs()
    picks = refs.sample(n=n, replace=True, random_state=seed).reset_index(drop=True)
    picks[["x", "y", "z"]] += rng.normal(0, 40, (n, 3))
    picks["score"] = rng.choice([0.1, 0.3, 0.5, 0.7, 0.9], n)
    rec = _rec(matching=matching)
    curves = pr_curves(rec, picks, _truth(refs))
    params = MetricParams.from_record(rec.params)
    for c, cv in curves.items():
        for t, p, r in zip(cv.levels, cv.precision, cv.recall, strict=True):
            st_ = get_metric("czii").evaluate(picks[picks["score"] >= t], refs, params,
                                              diagnostics=False).result.per_class[c]
            assert p == pytest.approx(st_.precision) and r == pytest.approx(st_.recall)


def test_byu_pr_curve_equals_the_score_at_every_level():
    from types import SimpleNamespace

    from cryobench.metrics.params import MetricParams
    from cryobench.metrics.registry import get_metric
    from cryobench.report.curves import pr_curves
    from cryobench.report.truth import GroundTruth
    from cryobench.testing.predictions import fabricate_picks, fabricate_solution

    sol = fabricate_solution([f"t{i}" for i in range(12)], metric="byu", seed=3)
    picks = fabricate_picks(sol, 0.6, seed=1, metric="byu")
    runs = [SimpleNamespace(name=t, voxel_spacing=10.0) for t in sol["tomo_id"]]
    truth = GroundTruth("byu-synth", "byu", sol, None, "test", runs)
    rec = fake_record(metric="byu", split="byu-synth")
    rec.params = {"beta": 2.0, "distance_angstrom": 1000.0}
    (cv,) = pr_curves(rec, picks, truth).values()
    assert len(cv.levels) >= 3
    m = get_metric("byu")
    for t, p, r in zip(cv.levels, cv.precision, cv.recall, strict=True):
        kept = picks[picks["score"] >= t]
        ev = m.evaluate(m.submission_from_picks(kept, runs), sol, MetricParams(),
                        diagnostics=False)
        assert (p, r) == pytest.approx((ev.result.precision, ev.result.recall))


def test_pick_outcomes_follow_the_kaggle_counts():
    """Reference 0 has two picks in range (the closer is TP, the other a duplicate), a pick
    near nothing is FP, reference 1 is missed (FN); the counts agree with the score's."""
    from cryobench.metrics.params import MetricParams
    from cryobench.metrics.registry import get_metric
    from cryobench.report.curves import pick_outcomes

    refs = _refs()
    refs = refs[(refs["particle_type"] == "ribosome") & (refs["experiment"] == "TS_1")]
    refs = refs.reset_index(drop=True)  # two references, threshold 75 Å
    picks = pd.DataFrame({"experiment": ["TS_1"] * 4 + ["TS_9"],
                          "particle_type": ["ribosome"] * 5,
                          "x": refs["x"][0] + np.array([60.0, 10.0, 3000.0, 0.0, 0.0]),
                          "y": [refs["y"][0]] * 3 + [refs["y"][1] + 76.0, 0.0],
                          "z": [500.0] * 5})
    params = MetricParams()
    pk, rk = pick_outcomes(picks, refs, params)
    assert pk.tolist() == ["duplicate", "tp", "fp", "fp", ""]  # TS_9 is not in the solution
    assert rk.tolist() == ["tp", "fn"]
    st_ = get_metric("czii").evaluate(picks, refs, params).result.per_class["ribosome"]
    assert (st_.tp, st_.fp, st_.fn) == ((rk == "tp").sum(), (pk == "tp").sum()
                                        + (pk == "duplicate").sum() + (pk == "fp").sum()
                                        - (rk == "tp").sum(), (rk == "fn").sum())


def test_diagnostics_table_means_over_all_seeds_or_says_which():
    from cryobench.report.diagnostics_table import diagnostics_table

    def block(n, dup, unm, score, dedup):
        per = {"ribosome": {"n_candidates": n, "n_matched": n - unm, "n_duplicates": dup,
                            "n_unmatched": unm, "duplicate_rate": dup / n,
                            "unmatched_rate": unm / n}}
        return {**per["ribosome"], "score": score, "score_deduplicated": dedup,
                "per_class": per}

    blocks = {0: block(10, 2, 3, 0.5, 0.6), 2: block(20, 0, 5, 0.7, 0.7)}
    t = diagnostics_table([0, 1, 2], blocks, {1: "its record has no diagnostics"})
    assert t.over == "mean over 2 of 3 seeds" and not t.complete
    assert "seed 1 left out: its record has no diagnostics" in t.note
    (row,) = t.rows
    assert row.values["n_candidates"] == 15 and row.values["n_duplicates"] == 1
    assert row.values["duplicate_rate"] == pytest.approx(0.1)  # mean of 0.2 and 0
    assert row.values["unmatched_rate"] == pytest.approx((0.3 + 0.25) / 2)
    assert (t.score, t.score_deduplicated) == pytest.approx((0.6, 0.65))
    full = diagnostics_table([0, 2], blocks, {}, computed=[2])
    assert full.over == "mean over 2 seeds" and full.complete
    assert "computed from the predictions of seed(s) 2" in full.note
    assert diagnostics_table([0], {}, {0: "x"}) is None


def test_entry_diagnostics_are_a_table_not_a_key_dump(tmp_path):
    from cryobench.testing.predictions import fabricate_solution, write_scored_results

    sol = fabricate_solution(["TS_1", "TS_2"], per_class=6)
    write_scored_results(tmp_path, sol, [("unet3d", 0.8)], seeds=(0, 1))
    write_scored_results(tmp_path, sol, [("unet3d", 0.8)], seeds=(2,), diagnostics=False)
    records, _ = load_records([tmp_path])
    (e,) = summarise(records, n_flips=0)
    d = e.diagnostics()
    assert d.over == "mean over 2 of 3 seeds" and list(d.missing) == [2]
    blocks = [r.diagnostics for r in e.records if r.diagnostics]
    assert d.total.values["n_candidates"] == np.mean([b["n_candidates"] for b in blocks])
    assert e.to_dict()["diagnostics"]["over"] == "mean over 2 of 3 seeds"


def test_report_with_a_solutions_folder_lacking_the_split(tmp_path):
    """--solutions of another split: the report is written, with the per-class table, and says
    the curves need ground truth of this split; the other split's solution fills nothing in."""
    from cryobench.testing.predictions import (
        fabricate_solution,
        write_scored_results,
        write_solution,
    )

    sol = fabricate_solution(["TS_1", "TS_2"], per_class=5)
    write_scored_results(tmp_path / "res", sol, [("unet3d", 0.8)], seeds=(0, 1))
    write_solution(tmp_path / "sols", "byu-synth",
                   fabricate_solution(["t1", "t2"], metric="byu"), metric="byu")
    out = tmp_path / "r.html"
    res = write_report([tmp_path / "res"], out, n_flips=10, use_data=False,
                       solutions=tmp_path / "sols")
    html = out.read_text()
    assert any("no ground truth of split 'czii-synth' at hand" in n for n in res.notes), res.notes
    assert '<table class="per-class">' in html and '<table class="distance">' not in html
    assert "Precision against recall per class" not in html
