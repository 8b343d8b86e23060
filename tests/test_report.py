"""Split reports and the aggregates behind them (stats, summary, loading)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

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


def test_report_with_data_draws_curves_and_a_slice(tmp_path):
    """On the tiny split (generated in seconds): PR curves, sweep, diagnostics and a slice."""
    from cryobench.data import load_split
    from cryobench.io.picks import write_picks_csv

    sp = load_split("tiny")
    sp.project(progress=False)
    truth = sp.solution("test")
    rng = np.random.default_rng(0)
    noise = truth.sample(frac=1.0, random_state=0).copy()
    noise[["x", "y", "z"]] += rng.normal(0, 300, size=(len(noise), 3))
    picks = pd.concat([truth.assign(score=rng.uniform(0.5, 1, len(truth))),
                       noise.assign(score=rng.uniform(0, 0.6, len(noise)))])
    rec = fake_record("unet3d", "tiny", 0, 0.7, experiments=sp.role_runs("test"))
    path = record_path(tmp_path, rec)
    rec.save(path)
    write_picks_csv(picks, path.parent / "predictions.csv")
    out = tmp_path / "r.html"
    res = write_report([tmp_path], out, n_flips=50)
    html = out.read_text()
    assert [n for n in res.notes if "say little" not in n] == [], res.notes
    for caption in ("Precision-recall per class", "minimum prediction score kept",
                    "ground truth (solid)", "duplicate_rate"):
        assert caption in html
