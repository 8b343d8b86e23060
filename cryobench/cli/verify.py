"""``cryobench verify RECORD``: rerun a record and report byte-identical predictions or the first
difference (exit code 1 when they differ)."""

from __future__ import annotations

import click

__all__ = ["verify"]


@click.command("verify", short_help="Rerun a record and check its predictions are identical.")
@click.argument("record", type=click.Path(path_type=str))
@click.option("--data", "data_dir", default=None, type=click.Path(file_okay=False),
              help="Where an imported split's data lives (as for `cryobench run --data`).")
@click.option("--device", default=None, help="cpu, cuda, cuda:N (default: the record's).")
@click.option("--progress/--no-progress", default=True, show_default=True)
def verify(record: str, data_dir: str | None, device: str | None, progress: bool) -> None:
    """Rerun RECORD (a run directory or its record.json) with its config, seed and data, and
    compare the new predictions with the recorded ones, byte for byte."""
    from cryobench.runner.verify import verify_record

    v = verify_record(record, data_dir=data_dir, device=device, progress=progress)
    if v.note:
        click.echo(f"note: {v.note}", err=True)
    if v.identical:
        click.echo(f"verified: {v.record}: predictions are byte-identical "
                   f"(score {v.rerun_score:.6f})")
        return
    click.echo(f"mismatch: {v.record}: predictions differ from line {v.line} "
               f"(score {v.recorded_score:.6f} recorded, {v.rerun_score:.6f} rerun)")
    click.echo(f"  recorded: {v.recorded_line}")
    click.echo(f"  rerun:    {v.rerun_line}")
    raise SystemExit(1)
