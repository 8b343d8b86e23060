"""``cryobench report``: a split report (HTML or Markdown) from run records."""

from __future__ import annotations

import click

from cryobench.cli._options import FLIPS

__all__ = ["report"]


@click.command("report", short_help="Write one split's report (HTML or Markdown) from records.")
@click.argument("results", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False),
              help="report.html (self-contained) or report.md (figures beside it).")
@click.option("--split", default=None, help="The split to report (needed when the records "
              "span several).")
@click.option("--flips", "n_flips", type=FLIPS, default=9999, show_default=True,
              help="Random sign flips of a paired comparison when there are too many test "
                   "experiments to enumerate every flip (0: no intervals, no ranks).")
@click.option("--seeds", default=None, help="Seeds every entry should have (default: all "
              "seeds seen in the split); entries missing some are flagged.")
@click.option("--data/--no-data", "use_data", default=True, show_default=True,
              help="Use the split's data (ground truth, tomograms) for precision-recall "
                   "curves, threshold sweeps and the slice image, when it is available.")
@click.option("--data-dir", default=None, type=click.Path(file_okay=False),
              help="Data directory passed to the split loader.")
def report(results: tuple[str, ...], out: str, split: str | None, n_flips: int,
           seeds: str | None, use_data: bool, data_dir: str | None) -> None:
    """Write a report for one split from the run records under RESULTS (directories or
    record files)."""
    from cryobench.report.split_report import write_report
    from cryobench.runner.ablate import parse_seeds

    res = write_report(results, out, split=split, n_flips=n_flips,
                       expected_seeds=parse_seeds(seeds) if seeds else None,
                       use_data=use_data, data_dir=data_dir)
    for path, why in res.bad_files:
        click.echo(f"warning: {path}: skipped ({why})", err=True)
    for note in res.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {res.path} ({res.split}: {res.n_entries} entr"
               f"{'y' if res.n_entries == 1 else 'ies'}, {res.n_records} records)")
