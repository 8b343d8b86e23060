"""``cryobench leaderboard``: the static leaderboard site and Markdown/CSV tables."""

from __future__ import annotations

import click

from cryobench.cli._options import FLIPS

__all__ = ["leaderboard"]


@click.group("leaderboard", short_help="Build leaderboards (a static site, Markdown or CSV).")
def leaderboard() -> None:
    """Leaderboards built from run records."""


@leaderboard.command("build")
@click.argument("results", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--out", default=None,
              type=click.Path(), help="Site directory (default: site), or the md/csv file.")
@click.option("--format", "fmt", type=click.Choice(["site", "md", "csv"]), default="site",
              show_default=True, help="A static site, or one Markdown/CSV table on stdout "
              "(or in --out when it names a file).")
@click.option("--split", default=None, help="Only this split (md/csv).")
@click.option("--flips", "n_flips", type=FLIPS, default=9999, show_default=True,
              help="Random sign flips of a paired comparison when there are too many test "
                   "experiments to enumerate every flip (0: no intervals, no ranks).")
@click.option("--seeds", default=None, help="Seeds every entry should have (default: all "
              "seeds seen in its split); entries missing some are flagged.")
@click.option("--title", default="cryobench leaderboards", show_default=True)
@click.option("--solutions", default=None, type=click.Path(file_okay=False),
              help="A folder of test-part solutions (`cryobench data solution SPLIT "
                   "--fingerprint -o DIR/SPLIT.csv`): records of those splits are rescored from "
                   "their predictions and shown as verified, or flagged on a mismatch.")
def build(results: tuple[str, ...], out: str, fmt: str, split: str | None, n_flips: int,
          seeds: str | None, title: str, solutions: str | None) -> None:
    """Build leaderboards from the run records (and ablation manifests) under RESULTS."""
    from cryobench.runner.ablate import parse_seeds

    expected = parse_seeds(seeds) if seeds else None
    if fmt == "site":
        from cryobench.report.site import build_site

        if split:
            raise click.UsageError("--split applies to --format md|csv; the site shows all")
        res = build_site(results, out or "site", n_flips=n_flips, title=title,
                         expected_seeds=expected, solutions=solutions)
        for path, why in res.bad_files:
            click.echo(f"warning: {path}: skipped ({why})", err=True)
        boards = ", ".join(f"{s}: {n} row(s)" for s, n in res.boards.items())
        click.echo(f"wrote {res.out_dir}/index.html ({res.n_records} records; {boards}; "
                   f"{len(res.pages)} page(s))")
        return
    from cryobench.report.leaderboard import to_csv, to_markdown
    from cryobench.report.site import leaderboard_entries, load_entries

    loaded = load_entries(results, n_flips, expected_seeds=expected, solutions=solutions)
    for path, why in loaded.bad:
        click.echo(f"warning: {path}: skipped ({why})", err=True)
    entries = leaderboard_entries(loaded)
    if split:
        from cryobench.errors import ResultsError

        found = sorted({e.split for e in entries})
        if split not in found:
            raise ResultsError(f"no records of split {split!r} (found: {', '.join(found)})",
                               results[0])
        entries = [e for e in entries if e.split == split]
    text = to_markdown(entries) if fmt == "md" else to_csv(entries)
    if out:
        from cryobench.io.atomic import atomic_write_text

        atomic_write_text(out, text)
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text, nl=False)
