"""The leaderboard site and its Markdown/CSV tables."""

from __future__ import annotations

import csv
import html
import io
import json
import re

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
