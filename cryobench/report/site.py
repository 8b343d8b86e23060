"""The static leaderboard site: ``cryobench leaderboard build RESULTS_DIR -o SITE_DIR``.

Everything the site needs is written into ``SITE_DIR`` (HTML with inline CSS, PNG figures, the
JSON it was built from); nothing is fetched at view time and there is no JavaScript. The
directory is built beside the destination and moved into place only when complete.

Layout::

    index.html                 one leaderboard per split (+ links to ablations)
    methods/<entry id>.html    config, per-class table and plot, seeds, per-experiment counts
    ablations/<name>.html      cells, scores and paired differences to the base
    figures/*.png
    data/leaderboard.json      the aggregated tables; data/records.json: the records used
    leaderboard.md, leaderboard.csv
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryobench import __version__
from cryobench.errors import ConfigError
from cryobench.io.atomic import atomic_dir
from cryobench.report import figures as F
from cryobench.report.ablation import Ablation, analyse
from cryobench.report.leaderboard import classes_of, to_csv, to_markdown
from cryobench.report.loading import load_records
from cryobench.report.render import environment, short_name
from cryobench.report.summary import Entry, config_json, group_by_split, rank_entries, summarise
from cryobench.runner.manifest import MANIFEST_NAME, find_manifests
from cryobench.runner.record import RunRecord

__all__ = ["SiteResult", "build_site", "SITE_MARKER", "load_entries"]

SITE_MARKER = ".cryobench-site"


@dataclass
class SiteResult:
    """What :func:`build_site` wrote."""

    out_dir: Path
    n_records: int
    boards: dict[str, int]
    """Rows per split leaderboard."""
    pages: list[str] = field(default_factory=list)
    bad_files: list[tuple[Path, str]] = field(default_factory=list)
    ablations: list[str] = field(default_factory=list)


@dataclass
class Loaded:
    records: list[RunRecord]
    bad: list[tuple[Path, str]]
    entries: list[Entry]
    ablations: list[Ablation]
    hidden: set[tuple[str, str, str]]
    n_flips: int = 9999
    test_seed: int = 0


def load_entries(results: Sequence[str | os.PathLike[str]], n_flips: int = 9999,
                 test_seed: int = 0, expected_seeds: Sequence[int] | None = None,
                 solutions: str | os.PathLike[str] | None = None) -> Loaded:
    """Records, entries and ablations under ``results`` (shared by the site and the tables).

    With ``solutions`` (a folder of solution CSVs with their ``.json`` sidecars), every record
    of a split found there is rescored from its predictions; a mismatch flags its entry.
    """
    from cryobench.report.verification import check_record, load_solutions

    records, bad = load_records(results)
    sols, bad_sols = load_solutions(solutions)
    bad += bad_sols
    manifests, bad_manifests = find_manifests(results)
    ok_manifests = {p.resolve() for p, _ in manifests}
    bad = [(p, why) for p, why in bad
           if not (p.name == MANIFEST_NAME and Path(p).resolve() in ok_manifests)]
    bad += bad_manifests
    entries = summarise(records, expected_seeds, n_flips, test_seed, rank=False)
    for e in entries:
        e.checks = [check_record(r, sols) for r in e.records]
        for r, c in zip(e.records, e.checks, strict=True):
            if c.status == "mismatch":
                e.flags.append(f"seed {r.seed}: score mismatch ({c.detail})")
    by_key = {(e.split, e.method, e.config_hash): e for e in entries}
    ablations = [analyse(m, by_key, n_flips, test_seed, str(p)) for p, m in manifests]
    base_keys = {(c.split, a.method, c.config_hash) for a in ablations for c in a.cells
                 if c.is_base}
    hidden = {(c.split, a.method, c.config_hash) for a in ablations for c in a.cells
              if not c.is_base} - base_keys
    return Loaded(records, bad, entries, ablations, hidden, n_flips, test_seed)


def leaderboard_entries(loaded: Loaded) -> list[Entry]:
    """Entries shown on leaderboards: everything but non-base ablation cells, re-ranked."""
    shown = [e for e in loaded.entries if (e.split, e.method, e.config_hash) not in loaded.hidden]
    for e in loaded.entries:
        if (e.split, e.method, e.config_hash) in loaded.hidden:
            e.rank = e.tie_group = None
    out: list[Entry] = []
    for split_entries in group_by_split(shown).values():
        out += rank_entries(split_entries, loaded.n_flips, loaded.test_seed)
    return out


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir())
                                              and not (out / SITE_MARKER).exists())):
        raise ConfigError("output exists and is not a cryobench site; choose a new or empty "
                          "directory", out)


def _rel(path: str | os.PathLike[str], roots: Sequence[Path]) -> str:
    p = Path(path).resolve()
    for r in roots:
        try:
            return str(p.relative_to(r.resolve().parent if r.is_file() else r.resolve()))
        except ValueError:
            continue
    return str(path)


def _seed_fbeta(e: Entry) -> dict[str, list[float]]:
    from cryobench.report.stats import class_metrics

    fb = class_metrics(e.cube.sums(), e.cube.beta, e.cube.rule)["fbeta"]
    return {c: [float(x) for x in fb[:, k]] for k, c in enumerate(e.cube.classes)}


def _exp_rows(e: Entry) -> list[tuple[str, list[str]]]:
    tot = e.cube.counts.sum(axis=0)  # (experiments, classes, 3)
    return [(exp, [f"{t[0]} / {t[1]} / {t[2]}" for t in tot[i]])
            for i, exp in enumerate(e.cube.experiments)]


def build_site(results: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
               n_flips: int = 9999, test_seed: int = 0, title: str = "cryobench leaderboards",
               expected_seeds: Sequence[int] | None = None,
               solutions: str | os.PathLike[str] | None = None) -> SiteResult:
    """Build the static site from the records (and ablation manifests) under ``results``.

    Raises:
        ResultsError: no valid record at all, or records of mixed schema versions.
        ConfigError: ``out_dir`` exists and is not a previous site.
    """
    out = Path(out_dir)
    _check_out(out)
    roots = [Path(r) for r in results]
    loaded = load_entries(results, n_flips, test_seed, expected_seeds, solutions)
    shown = leaderboard_entries(loaded)
    env = environment()
    built_at = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    common = {"version": __version__, "built_at": built_at, "n_flips": n_flips, "short": short_name,
              "nav": [("Leaderboards", "index.html")]
              + ([("Ablations", "index.html#ablations")] if loaded.ablations else [])}
    result = SiteResult(out, len(loaded.records), {}, bad_files=loaded.bad,
                        ablations=[a.name for a in loaded.ablations])
    with atomic_dir(out) as tmp:
        for sub in ("methods", "ablations", "figures", "data"):
            (tmp / sub).mkdir()
        boards = []
        for split, entries in group_by_split(shown).items():
            fig = f"board-{_safe(split)}.png"
            (tmp / "figures" / fig).write_bytes(F.score_forest(
                [f"{e.method} ({e.config_hash[:6]})" for e in entries],
                [e.score for e in entries], [e.interval for e in entries],
                [e.flagged for e in entries], xlabel=f"{entries[0].metric} score",
                seed_points=[e.seed_scores for e in entries]))
            hidden = sum(1 for k in loaded.hidden if k[0] == split)
            boards.append({"split": split, "entries": entries, "classes": classes_of(entries),
                           "metric": entries[0].metric, "beta": entries[0].cube.beta,
                           "figure": fig, "hidden": hidden,
                           "weights": {c: w for e in entries
                                       for c, w in zip(e.cube.classes, e.cube.weights.tolist(),
                                                       strict=True)}})
            result.boards[split] = len(entries)
        page = env.get_template("site_index.html.j2").render(
            title=title, heading=title, root="", boards=boards, ablations=loaded.ablations,
            n_records=len(loaded.records),
            bad_files=[(_rel(p, roots), why) for p, why in loaded.bad], **common)
        (tmp / "index.html").write_text(page, encoding="utf-8")
        result.pages.append("index.html")
        tmpl = env.get_template("site_method.html.j2")
        for e in loaded.entries:
            fig = f"class-{e.id}.png"
            (tmp / "figures" / fig).write_bytes(F.class_bars(
                e.per_class, _seed_fbeta(e), e.cube.beta, f"{e.method} on {e.split}"))
            params = e.records[0].params
            seed_rows = list(zip(e.records, e.seed_scores, strict=True))
            page = tmpl.render(title=f"{e.method} on {e.split} – cryobench", root="../", e=e,
                               class_figure=fig, seed_rows=seed_rows,
                               diagnostics=e.diagnostics(), exp_rows=_exp_rows(e),
                               config_text=config_json(e.config),
                               params_text=config_json(params), **common)
            (tmp / "methods" / f"{e.id}.html").write_text(page, encoding="utf-8")
            result.pages.append(f"methods/{e.id}.html")
        tmpl = env.get_template("site_ablation.html.j2")
        for a in loaded.ablations:
            labels = [c.label + (" (base)" if c.is_base else "") for c in a.cells]
            diff_fig = score_fig = None
            if any(c.diff is not None for c in a.cells):
                diff_fig = f"ablation-{a.page_name}-diff.png"
                (tmp / "figures" / diff_fig).write_bytes(F.ablation_forest(
                    labels, [c.diff for c in a.cells], [c.diff_interval for c in a.cells]))
            run = [c for c in a.cells if c.entry is not None]
            if run:
                score_fig = f"ablation-{a.page_name}-scores.png"
                (tmp / "figures" / score_fig).write_bytes(F.score_forest(
                    [c.label for c in run], [c.entry.score for c in run],
                    [c.entry.interval for c in run], [c.entry.flagged for c in run],
                    seed_points=[list(c.seed_scores.values()) for c in run]))
            page = tmpl.render(title=f"{a.title} – cryobench", root="../", a=a,
                               figure=diff_fig, score_figure=score_fig, **common)
            (tmp / "ablations" / f"{a.page_name}.html").write_text(page, encoding="utf-8")
            result.pages.append(f"ablations/{a.page_name}.html")
        data = {
            "built_at": built_at, "cryobench_version": __version__, "n_flips": n_flips,
            "test_seed": test_seed,
            "leaderboards": {s: [e.to_dict() for e in es]
                             for s, es in group_by_split(shown).items()},
            "entries": [e.to_dict() for e in loaded.entries],
            "ablations": [a.to_dict() for a in loaded.ablations],
            "skipped_files": [{"path": _rel(p, roots), "reason": why} for p, why in loaded.bad],
        }
        (tmp / "data" / "leaderboard.json").write_text(json.dumps(data, indent=1, default=str),
                                                       encoding="utf-8")
        recs = [{"source": _rel(r.path or "", roots), **r.to_dict()} for r in loaded.records]
        (tmp / "data" / "records.json").write_text(json.dumps(recs, default=str),
                                                   encoding="utf-8")
        (tmp / "leaderboard.md").write_text(to_markdown(shown), encoding="utf-8")
        (tmp / "leaderboard.csv").write_text(to_csv(shown), encoding="utf-8")
        (tmp / SITE_MARKER).write_text(f"cryobench {__version__}\n", encoding="utf-8")
    return result


def _safe(name: str) -> str:
    from cryobench.report.summary import safe_name

    return safe_name(name)
