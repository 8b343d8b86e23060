"""The leaderboard site and its Markdown/CSV tables."""

from __future__ import annotations

import csv
import html
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cryobench.cli import cli
from cryobench.errors import ConfigError, ResultsError
from cryobench.report.site import build_site
from cryobench.runner.ablate import make_plan, run_ablation, spec_from_options
from cryobench.runner.executors import LocalExecutor
from cryobench.testing.records import fake_record, record_path, synthetic_cell, write_fake_results


@pytest.fixture
def results(tmp_path):
    d = tmp_path / "results"
    write_fake_results(d)
    write_fake_results(d, methods=[("cnn_regressor", 0.6), ("faster_rcnn", 0.5)],
                       split="byu-synth", metric="byu",
                       experiments=[f"tomo_{i:02d}" for i in range(12)])
    # an entry missing seed 2: shown, flagged, unranked
    write_fake_results(d, methods=[("deepfindet", 0.9)], seeds=[0, 1], split="byu-synth",
                       metric="byu", experiments=[f"tomo_{i:02d}" for i in range(12)])
    return d


def _rows(html: str, split: str) -> list[str]:
    table = re.search(rf'<table class="leaderboard" data-split="{split}">(.*?)</table>', html,
                      re.S)
    assert table, f"no leaderboard table for {split}"
    return re.findall(r"<tr class=\"[^\"]*\">", table.group(1))


def test_site_has_a_board_per_split_and_a_page_per_entry(results, tmp_path):
    out = tmp_path / "site"
    res = build_site([results], out, n_flips=100)
    assert res.boards == {"byu-synth": 3, "czii-synth": 3} and res.n_records == 17
    index = (out / "index.html").read_text()
    assert len(_rows(index, "czii-synth")) == 3 and len(_rows(index, "byu-synth")) == 3
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", index)
    for page in res.pages:
        assert (out / page).is_file()
        for ref in re.findall(r'(?:src|href)="(?!data:)([^"#]+)', (out / page).read_text()):
            assert (out / page).parent.joinpath(ref).resolve().exists(), (page, ref)
    assert len([p for p in res.pages if p.startswith("methods/")]) == 6
    flagged = re.search(r'<tr class="flagged">.*?</tr>', index, re.S).group(0)
    assert "deepfindet" in flagged and "unranked" in flagged and "missing seed(s) 2" in flagged
    for col in ("rank", "score", "95% CI", "seeds", "date", "version", "config", "VLP"):
        assert f">{col}<" in index or f">{col}</th>" in index
    method = html.unescape((out / [p for p in res.pages if "czii-synth--unet3d" in p][0])
                           .read_text())
    assert '"epochs": 10' in method and "Per experiment counts" in method
    data = json.loads((out / "data" / "leaderboard.json").read_text())
    assert [e["method"] for e in data["leaderboards"]["czii-synth"]] == [
        "unet3d", "deepfindet", "faster_rcnn"]
    assert data["leaderboards"]["czii-synth"][0]["rank"] == 1
    assert len(json.loads((out / "data" / "records.json").read_text())) == 17


def test_rebuild_replaces_a_site_but_never_another_directory(results, tmp_path):
    out = tmp_path / "site"
    build_site([results], out, n_flips=10)
    (out / "stale.html").write_text("old")
    build_site([results], out, n_flips=10)
    assert not (out / "stale.html").exists()
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    with pytest.raises(ConfigError, match="not a cryobench site"):
        build_site([results], other)
    assert (other / "thesis.tex").read_text() == "keep me"


def test_no_records_is_an_error(tmp_path):
    with pytest.raises(ResultsError, match="no valid run records"):
        build_site([tmp_path], tmp_path / "site")
    assert not (tmp_path / "site").exists()


def test_markdown_and_csv_tables(results):
    runner = CliRunner()
    r = runner.invoke(cli, ["leaderboard", "build", str(results), "--format", "md",
                            "--flips", "50"])
    assert r.exit_code == 0, r.output
    assert "## czii-synth (czii)" in r.output and "## byu-synth (byu)" in r.output
    assert "deepfindet ⚠1" in r.output and "missing seed(s) 2" in r.output
    r = runner.invoke(cli, ["leaderboard", "build", str(results), "--format", "csv",
                            "--split", "czii-synth", "--flips", "50"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert [x["method"] for x in rows] == ["unet3d", "deepfindet", "faster_rcnn"]
    assert rows[0]["rank"] == "1" and float(rows[0]["ci_low"]) <= float(rows[0]["score"])
    assert "F:virus-like-particle" in rows[0]
    r = runner.invoke(cli, ["leaderboard", "build", str(results), "--format", "csv",
                            "--split", "nope"])
    assert r.exit_code == 2 and r.output.startswith("error:") and r.output.count("\n") == 1


def test_cli_build_and_errors(results, tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, ["leaderboard", "build", str(results), "-o", str(tmp_path / "s"),
                            "--flips", "20"])
    assert r.exit_code == 0, r.output
    assert "czii-synth: 3 row(s)" in r.output and (tmp_path / "s" / "index.html").is_file()
    r = runner.invoke(cli, ["leaderboard", "build", str(tmp_path / "empty-does-not-exist"),
                            "-o", str(tmp_path / "s2")])
    assert r.exit_code == 2 and "not found" in r.output and r.output.count("\n") == 1


def test_mismatched_stored_score_is_flagged_on_the_board(tmp_path):
    rec = fake_record(seed=0)
    rec.score += 0.05
    rec.save(record_path(tmp_path / "r", rec))
    res = build_site([tmp_path / "r"], tmp_path / "site", n_flips=10)
    index = (tmp_path / "site" / "index.html").read_text()
    assert res.boards == {"czii-synth": 1} and "differs from its counts" in index


def test_ablation_pages_and_hidden_cells(tmp_path):
    results = tmp_path / "results"
    write_fake_results(results, methods=[("deepfindet", 0.6)], split="tiny")
    spec = spec_from_options("unet3d", "tiny", ["augment=true,false", "lr=0.001,0.002"],
                             seeds="0,1,2", budget="smoke")
    plan = make_plan(spec)
    out = run_ablation(plan, results, LocalExecutor(progress=False), fn=synthetic_cell)
    assert out.ran == 12 and not out.failures
    # the base config also has a seed outside the ablation (as official runs would)
    extra = make_plan(spec_from_options("unet3d", "tiny", ["augment=true", "lr=0.001"],
                                        seeds="5", budget="smoke", name="extra"))
    run_ablation(extra, results, LocalExecutor(progress=False), fn=synthetic_cell)
    res = build_site([results], tmp_path / "site", n_flips=100)
    assert res.ablations == ["extra", "unet3d-augment-lr"]
    (page_file,) = (tmp_path / "site" / "ablations").glob("unet3d-augment-lr-*.html")
    page = page_file.read_text()
    assert page.count("<tr") == 1 + 4 and "base" in page and "Δ to base" in page
    assert len(re.findall(r'class="num">[+-]?0\.\d{3}</td><td class="ci">\[', page)) >= 3
    assert 'class="flagged"' not in page and "4 of 4 cells complete" in page  # not seed 5
    assert "seeds above base" in page and page.count(" of 3</td>") == 3  # seeds 0-2, not 5
    assert len(re.findall(r"0: 0\.\d{3}, 1: 0\.\d{3}, 2: 0\.\d{3}</td>", page)) == 4
    index = (tmp_path / "site" / "index.html").read_text()
    # the board shows deepfindet and the ablation's base cell; the other cells are on its page
    assert res.boards == {"tiny": 2} and "3 ablation configuration(s)" in index


# ----- verification and unique names ----------------------------------------------------------
@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    pytest.importorskip("torch")
    from cryobench.runner.run import run

    root = tmp_path_factory.mktemp("verify")
    res = run("unet3d", "tiny", budget="smoke", out=root / "results", progress=False,
              write_copick=False, save_model=False)
    sols = root / "solutions"
    r = CliRunner().invoke(cli, ["data", "solution", "tiny", "--fingerprint", "--quiet",
                                 "-o", str(sols / "tiny.csv")])
    assert r.exit_code == 0, r.output
    return root, res


def test_the_site_rescores_records_and_flags_a_mismatch(real_run, tmp_path):
    import shutil

    from cryobench.report.site import leaderboard_entries, load_entries

    root, res = real_run
    (e,) = leaderboard_entries(load_entries([root / "results"], solutions=root / "solutions"))
    assert e.verification == "verified" and e.checks[0].rescored == res.record.score
    assert e.rank == 1
    (e,) = leaderboard_entries(load_entries([root / "results"]))
    assert e.verification == "unchecked" and "no ground truth" in e.checks[0].detail
    # edited predictions: the record's score no longer follows from them
    copy = tmp_path / "results"
    shutil.copytree(root / "results", copy)
    pred = next(copy.rglob("predictions.csv"))
    lines = pred.read_text().splitlines(keepends=True)
    pred.write_text("".join(lines[:1] + lines[len(lines) // 2:]))
    (e,) = leaderboard_entries(load_entries([copy], solutions=root / "solutions"))
    assert e.verification == "mismatch" and e.rank is None
    assert any("score mismatch" in f for f in e.flags)
    build_site([copy], tmp_path / "site", solutions=root / "solutions")
    assert "✗ score mismatch" in (tmp_path / "site" / "index.html").read_text()


def test_a_solution_of_other_data_checks_nothing(real_run, tmp_path):
    import json as _json
    import shutil

    from cryobench.report.site import load_entries

    root, _ = real_run
    sols = tmp_path / "sols"
    shutil.copytree(root / "solutions", sols)
    meta = _json.loads((sols / "tiny.json").read_text())
    meta["dataset_fingerprint"] = "0" * 64
    (sols / "tiny.json").write_text(_json.dumps(meta))
    (e,) = load_entries([root / "results"], solutions=sols).entries
    assert e.verification == "unchecked" and "other data" in e.checks[0].detail


def test_page_names_are_unique_whatever_the_split_name(tmp_path):
    write_fake_results(tmp_path / "r1", methods=[("unet3d", 0.7)], seeds=[0], split="czii/synth")
    write_fake_results(tmp_path / "r2", methods=[("unet3d", 0.5)], seeds=[0], split="czii-synth")
    res = build_site([tmp_path / "r1", tmp_path / "r2"], tmp_path / "site", n_flips=10)
    pages = [p for p in res.pages if p.startswith("methods/")]
    assert len(pages) == len(set(pages)) == 2
    figs = list((tmp_path / "site" / "figures").glob("board-*.png"))
    assert len(figs) == 2


# ----- method pages: diagnostics, curves, example slice ----------------------------------------
def _offset_picks(solution, skill, seed):
    """Every reference picked once, 0.75 x its radius away (F-beta 0 up to 0.7 x radius, 1
    from 0.8 x on)."""
    from cryobench.particles import CZII_PARTICLES

    r = solution["particle_type"].map({p.name: p.radius for p in CZII_PARTICLES})
    return solution.assign(x=solution["x"] + 0.75 * r, score=0.5 + 0.1 * seed)


def _page(site, method: str) -> str:
    (page,) = (site / "methods").glob(f"*--{method}--*.html")
    return html.unescape(page.read_text())


def _table(page: str, cls: str) -> list[list[str]]:
    body = re.search(rf'<table class="{cls}">(.*?)</table>', page, re.S).group(1)
    return [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


@pytest.fixture
def scored(tmp_path):
    """Fabricated records scored from their predictions, with a solutions folder: unet3d with
    3 seeds (seed 2's record without diagnostics), deepfindet with seed 1's predictions gone,
    'offset' (the hand-made case), and a BYU entry."""
    from cryobench.testing.predictions import (
        fabricate_solution,
        write_scored_results,
        write_solution,
    )

    res, sols = tmp_path / "results", tmp_path / "solutions"
    sol = fabricate_solution(["TS_1", "TS_2", "TS_3"], per_class=8)
    write_scored_results(res, sol, [("unet3d", 0.85)], seeds=(0, 1))
    write_scored_results(res, sol, [("unet3d", 0.85)], seeds=(2,), diagnostics=False)
    paths = write_scored_results(res, sol, [("deepfindet", 0.6)])
    (paths[1].parent / "predictions.csv").unlink()
    write_scored_results(res, sol, [("offset", 1.0)], seeds=(0, 1), picks_fn=_offset_picks)
    write_solution(sols, "czii-synth", sol)
    bsol = fabricate_solution([f"tomo_{i}" for i in range(10)], metric="byu")
    write_scored_results(res, bsol, [("cnn_regressor", 0.7)], split="byu-synth", metric="byu")
    write_solution(sols, "byu-synth", bsol, metric="byu")
    return res, sols


def test_method_pages_show_diagnostics_curves_and_say_what_is_missing(scored, tmp_path):
    from cryobench.runner.record import RunRecord

    res, sols = scored
    site = tmp_path / "site"
    build_site([res], site, n_flips=20, solutions=sols, use_data=False)
    page = _page(site, "unet3d")
    # diagnostics per class: a table, the mean over ALL three seeds (seed 2 computed)
    rows = _table(page, "diagnostics")
    assert rows[0] == ["class", "candidates", "matched", "duplicates", "unmatched",
                       "duplicate rate", "unmatched rate"]
    assert [r[0] for r in rows[1:]] == ["apo-ferritin", "beta-amylase", "beta-galactosidase",
                                        "ribosome", "thyroglobulin", "virus-like-particle",
                                        "<b>all classes</b>"]
    recs = sorted((RunRecord.load(p) for p in res.rglob("record.json")
                   if "/unet3d/" in str(p)), key=lambda r: r.seed)
    from cryobench.metrics.params import MetricParams
    from cryobench.metrics.registry import get_metric
    from cryobench.report.verification import load_solutions

    table = load_solutions(sols)[0]["czii-synth"].table
    blocks = [r.diagnostics or get_metric("czii").evaluate(
        pd.read_csv(r.predictions_path), table,
        MetricParams.from_record(r.params)).diagnostics.to_dict() for r in recs]
    want = np.mean([b["per_class"]["ribosome"]["n_candidates"] for b in blocks])
    assert rows[4][1] == f"{want:.1f}"
    assert "mean over 3 seeds" in page and "computed from the predictions of seed(s) 2" in page
    # distance curve: a figure and a table, mean over the three seeds
    assert (site / "figures").glob("distance-*unet3d*.png")
    assert len(_table(page, "distance")) == 1 + 6 + 1
    assert "Precision-recall over pick scores" in page
    # deepfindet: seed 1 has no predictions: its curves are over 2 of 3 seeds, and it says so
    page = _page(site, "deepfindet")
    assert "mean over 2 of 3 seeds" in page
    assert "curves over 2 of 3 seeds (seed 1: predictions.csv not found" in page
    assert "No example slice: data not used (--no-data)." in page
    # the JSON has the same
    data = json.loads((site / "data" / "leaderboard.json").read_text())
    by = {e["method"]: e for e in data["entries"]}
    assert by["unet3d"]["diagnostics"]["over"] == "mean over 3 seeds"
    assert by["deepfindet"]["distance_curve"]["seeds_used"] == [0, 2]
    assert by["cnn_regressor"]["diagnostics"] is None and by["cnn_regressor"]["pr_seeds"]


def test_f_beta_against_distance_worked_by_hand_on_the_page(scored, tmp_path):
    res, sols = scored
    site = tmp_path / "site"
    build_site([res], site, n_flips=20, solutions=sols, use_data=False)
    rows = _table(_page(site, "offset"), "distance")
    head = rows[0]
    assert head[1:] == ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1"]
    for row in rows[1:-1]:
        assert row[1:] == ["0.000"] * 7 + ["1.000"] * 3, row
    assert rows[-1][0] == "<b>weighted score</b>"
    assert [re.sub(r"</?b>", "", c) for c in rows[-1][1:]] == ["0.000"] * 7 + ["1.000"] * 3


def test_without_ground_truth_the_page_says_so(scored, tmp_path):
    res, _ = scored
    site = tmp_path / "site"
    build_site([res], site, n_flips=20, use_data=False)
    page = _page(site, "unet3d")
    assert "mean over 2 of 3 seeds" in page  # seed 2 has no diagnostics and none can be made
    assert "seed 2 left out: its record has no diagnostics" in page
    assert "no distance or precision-recall curves (seeds 0, 1, 2: no ground truth" in page
    assert '<table class="distance">' not in page


def test_example_slice_when_the_split_data_is_at_hand(tmp_path):
    from cryobench.data import load_split
    from cryobench.testing.predictions import write_scored_results

    sp = load_split("tiny")
    sp.project(progress=False)
    write_scored_results(tmp_path / "res", sp.solution("test"), [("unet3d", 0.7)],
                         seeds=(0,), split="tiny", fingerprint=sp.fingerprint)
    build_site([tmp_path / "res"], tmp_path / "site", n_flips=10)
    page = _page(tmp_path / "site", "unet3d")
    (fig,) = (tmp_path / "site" / "figures").glob("slice-*.png")
    assert f'src="../figures/{fig.name}"' in page and "marked by outcome (Kaggle rule)" in page
    assert '<table class="distance">' in page  # ground truth from the split's data


def test_example_slice_outcomes_agree_with_the_counts(tmp_path):
    """The slice's TP / FN references of the run are the score's tp / fn for that run."""
    from cryobench.data import load_split
    from cryobench.report.entry_analysis import _outcome_frames
    from cryobench.report.truth import truth_from_split
    from cryobench.testing.predictions import fabricate_picks

    sp = load_split("tiny")
    sp.project(progress=False)
    truth = truth_from_split(sp)
    run = sp.runs("test")[0]
    picks = fabricate_picks(truth.table, 0.6, seed=2)
    rec = fake_record(split="tiny")
    rec.params = {"beta": 4.0, "distance_multiplier": 0.5, "matching": "kaggle",
                  "radii": {p.name: p.radius for p in sp.particles},
                  "weights": {p.name: p.weight for p in sp.particles}}
    refs, mine, _ = _outcome_frames(rec, run, picks, truth)
    from cryobench.metrics.params import MetricParams
    from cryobench.metrics.registry import get_metric

    counts = get_metric("czii").evaluate(picks, truth.table,
                                         MetricParams.from_record(rec.params)).counts
    mine_counts = counts[counts["experiment"] == run.name]
    assert (refs["outcome"] == "tp").sum() == mine_counts["tp"].sum()
    assert (refs["outcome"] == "fn").sum() == mine_counts["fn"].sum()
    assert (mine["outcome"] != "").sum() - mine_counts["tp"].sum() <= mine_counts["fp"].sum()


def test_single_entry_figures_are_not_squashed(tmp_path):
    """One entry on a board: the plot keeps a readable height and its seed points inside."""
    from PIL import Image

    write_fake_results(tmp_path / "r", methods=[("unet3d", 0.7)])
    build_site([tmp_path / "r"], tmp_path / "site", n_flips=10)
    (board,) = (tmp_path / "site" / "figures").glob("board-*.png")
    w, h = Image.open(board).size
    assert h >= 190 and w <= 900
    for fig in (tmp_path / "site" / "figures").glob("class-*.png"):
        w, _ = Image.open(fig).size
        assert w <= 720  # shown unscaled beside another figure


def test_per_class_table_mean_and_spread_over_all_seeds_by_hand(scored, tmp_path):
    """Each class row: F-beta mean ± sample SD over the 3 seeds, precision, recall and mean
    TP/FP/FN per seed, all worked from the records' own counts."""
    import statistics

    from cryobench.metrics.counts import fbeta
    from cryobench.runner.record import RunRecord

    res, sols = scored
    site = tmp_path / "site"
    build_site([res], site, n_flips=20, solutions=sols, use_data=False)
    page = _page(site, "unet3d")
    rows = _table(page, "per-class")
    assert rows[0][:5] == ["class", "weight", "precision", "recall",
                           'F4 <span class="w">mean ± SD over seeds</span>']
    assert rows[0][-3:] == ["TP", "FP", "FN"]
    recs = [RunRecord.load(p) for p in sorted(res.rglob("record.json")) if "/unet3d/" in str(p)]
    assert len(recs) == 3
    by_class = {r[0]: r for r in rows[1:]}
    for cls in ("ribosome", "virus-like-particle"):
        sums = [[sum(getattr(c, k) for c in r.counts if c.particle_type == cls)
                 for k in ("tp", "fp", "fn")] for r in recs]
        per_seed = [fbeta(*s, 4.0, "czii") for s in sums]
        fb = [float(x[2]) for x in per_seed]
        row = by_class[cls]
        assert row[4] == (f"<b>{statistics.mean(fb):.3f}</b> "
                          f'<span class="sd">± {statistics.stdev(fb):.3f}</span>')
        assert row[2] == f"{statistics.mean(float(x[0]) for x in per_seed):.3f}"
        assert row[3] == f"{statistics.mean(float(x[1]) for x in per_seed):.3f}"
        assert row[-3:] == [f"{statistics.mean(s[k] for s in sums):.1f}" for k in range(3)]
    data = json.loads((site / "data" / "leaderboard.json").read_text())
    (e,) = [e for e in data["entries"] if e["method"] == "unet3d"]
    assert e["fbeta_sd"]["ribosome"] == pytest.approx(float(
        re.search(r"± ([0-9.]+)", by_class["ribosome"][4]).group(1)), abs=5e-4)


def test_one_seed_makes_up_no_spread(tmp_path):
    write_fake_results(tmp_path / "r", methods=[("unet3d", 0.7)], seeds=[0])
    build_site([tmp_path / "r"], tmp_path / "site", n_flips=0)
    page = _page(tmp_path / "site", "unet3d")
    rows = _table(page, "per-class")
    assert rows[0][4] == "F4" and len(rows) == 7
    assert not any("±" in r[4] for r in rows[1:])
    assert "one seed: no seed-to-seed spread" in page


def test_every_figure_a_page_references_exists_and_names_are_unique(scored, tmp_path):
    res, sols = scored
    site = tmp_path / "site"
    build_site([res], site, n_flips=20, solutions=sols, use_data=False)
    seen: dict[str, str] = {}
    for page in (site / "methods").glob("*.html"):
        text = page.read_text()
        srcs = re.findall(r'<img src="\.\./figures/([^"]+)"', text)
        kinds = {s.split("-", 1)[0] for s in srcs}
        assert {"class", "distance", "pr"} <= kinds, (page.name, srcs)
        for s in srcs:
            assert (site / "figures" / s).is_file(), s
            assert seen.setdefault(s, page.name) == page.name  # no figure shared by two pages
            assert s.split("-", 1)[1].removesuffix(".png") == page.stem  # named after the page


def test_hostile_record_text_is_escaped_on_method_pages(tmp_path):
    """Config text, method name and split name from a record never reach a page as markup."""
    from cryobench.report.split_report import write_report
    from cryobench.testing.predictions import (
        fabricate_solution,
        write_scored_results,
        write_solution,
    )

    evil = "<script>alert(1)</script>"
    res, sols = tmp_path / "r", tmp_path / "s"
    sol = fabricate_solution(["TS_1", "TS_2"], per_class=4)
    write_scored_results(res, sol, [(f"m{evil}|x", 0.8)], seeds=(0, 1),
                         config={"note": f"{evil}<img src=x onerror=alert(2)>|"})
    write_solution(sols, "czii-synth", sol)
    build_site([res], tmp_path / "site", n_flips=10, solutions=sols, use_data=False)
    pages = list((tmp_path / "site").rglob("*.html"))
    assert len(pages) == 2
    for p in pages:
        text = p.read_text()
        assert "<script>" not in text and "<img src=x" not in text
    method_page = next(p for p in pages if p.parent.name == "methods")
    assert "&lt;script&gt;" in method_page.read_text()
    assert '<table class="per-class">' in method_page.read_text()
    md = tmp_path / "report.md"
    write_report([res], md, n_flips=10, solutions=sols, use_data=False)
    text = md.read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "| ribosome |" in text  # the class table is still a table


def test_a_split_missing_from_the_solutions_degrades_to_a_note(scored, tmp_path):
    """Solutions for the CZII split only, plus a malformed record: the BYU page is built with
    its counts and says why the curves are missing, the CZII pages keep theirs, the malformed
    record is listed and skipped."""
    res, sols = scored
    (sols / "byu-synth.csv").unlink()
    for side in sols.glob("byu-synth*"):
        side.unlink()
    bad = res / "czii-synth" / "broken" / "x" / "seed-0" / "record.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"schema_version": 1, "method": ')
    site = tmp_path / "site"
    out = build_site([res], site, n_flips=20, solutions=sols, use_data=False)
    assert any(p.name == "record.json" and "broken" in str(p) for p, _ in out.bad_files)
    page = _page(site, "cnn_regressor")
    assert "no distance or precision-recall curves" in page
    assert "no ground truth of split 'byu-synth' at hand" in page
    assert '<table class="per-class">' in page and '<table class="distance">' not in page
    assert '<table class="distance">' in _page(site, "unet3d")
    assert "broken" in (site / "index.html").read_text()


def test_an_analysis_that_fails_leaves_the_page_with_its_counts(scored, tmp_path, monkeypatch):
    """An unexpected error while analysing one entry's predictions is named on its page; the
    site, the per-class table and the records' diagnostics are still there."""
    import cryobench.report.curves as curves

    def boom(*args, **kwargs):
        raise RuntimeError("boom <b>")

    monkeypatch.setattr(curves, "distance_curve", boom)
    monkeypatch.setattr("cryobench.report.entry_analysis.distance_curve", boom)
    res, sols = scored
    site = tmp_path / "site"
    build_site([res], site, n_flips=20, solutions=sols, use_data=False)
    raw = next((site / "methods").glob("*--unet3d--*.html")).read_text()
    assert "boom &lt;b&gt;" in raw and "boom <b>" not in raw
    page = _page(site, "unet3d")
    assert "no curves or example slice: analysing its predictions failed (RuntimeError" in page
    assert len(_table(page, "per-class")) == 7
    assert "mean over 2 of 3 seeds" in page  # seed 2's record has no diagnostics
