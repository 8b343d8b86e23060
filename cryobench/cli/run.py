"""``cryobench run``: train, tune, predict, score one method on one split and write its record."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cryobench.cli._options import SEED

if TYPE_CHECKING:
    from cryobench.runner.record import RunRecord

__all__ = ["run", "format_counts_table"]


def format_counts_table(rec: RunRecord) -> str:
    """The per-class table of a record (the same layout as `cryobench score`, with AP), its
    legend, and the localization (and orientation) table of the matched picks."""
    from cryobench.cli._tables import class_table, legend, localization_table
    from cryobench.metrics.counts import summarise_counts

    weights = rec.weights
    classes = [c for c in weights] + sorted({c.particle_type for c in rec.counts} - set(weights))
    _, per_class = summarise_counts(rec.count_rows(), weights, rec.beta, classes=classes)
    ap = {c: rec.class_ap(c) for c in per_class}
    has_ap = any(v is not None for v in ap.values())
    lines = class_table(per_class, rec.beta, ap if has_ap else None)
    zero = [c for c, v in per_class.items() if v["weight"] == 0]
    lines.append(legend(rec.metric, rec.beta, has_ap=has_ap, zero_weight=zero,
                        distance_multiplier=float(rec.params.get("distance_multiplier", 0.5)),
                        distance_angstrom=float(rec.params.get("distance_angstrom", 1000))))
    loc = rec.metrics.get("localization")
    if isinstance(loc, dict) and loc.get("per_class"):
        lines += ["", *localization_table(loc)]
    return "\n".join(lines)


@click.command("run", short_help="Train, tune, predict and score one method on one split.")
@click.option("--method", "-m", "method", required=True, help="Registered method name.")
@click.option("--split", "-s", "split", required=True, help="Split name (tiny, czii-synth...).")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--budget", type=click.Choice(["smoke", "cpu", "full"]), default=None,
              help="Default: full on a GPU, cpu otherwise.")
@click.option("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA if available).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a config field (repeatable); see `cryobench methods info`.")
@click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Results directory.")
@click.option("--rerun", is_flag=True, help="Run again even if a complete record exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON.")
@click.option("--data", "data_dir", default=None, type=click.Path(file_okay=False),
              help="Where an imported split's data lives (the folder `cryobench data "
                   "import-czii/import-byu/fetch-portal` wrote); synthetic splits need none.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def run(method: str, split: str, seed: int, budget: str | None, device: str | None,
        sets: tuple[str, ...], out: str, rerun: bool, as_json: bool, data_dir: str | None,
        progress: bool) -> None:
    """Train METHOD on the split's train runs, tune on val, predict and score the test runs.

    Writes predictions (CSV + copick picks) and a run record under --out, then prints the
    per-class table (or, with --json, the record).
    """
    from cryobench.methods.config import parse_assignments
    from cryobench.methods.registry import get_method
    from cryobench.runner.run import run as run_one

    cls = get_method(method)
    overrides = parse_assignments(cls.Config, sets, method)

    def log(msg: str) -> None:
        if not as_json:
            click.echo(msg, err=True)

    result = run_one(method, split, seed=seed, budget=budget, device=device,
                     overrides=overrides, out=out, rerun=rerun, data_dir=data_dir,
                     progress=progress, log=log)
    rec = result.record
    if as_json:
        from cryobench.runner.record import dumps

        click.echo(dumps(rec.to_dict()), nl=False)
        return
    if result.skipped:
        click.echo(f"already complete: {result.path} (pass --rerun to run again)")
    click.echo(format_counts_table(rec))
    t = rec.timings
    click.echo(f"\n{rec.metric} score: {rec.score:.4f}  ({rec.method} on {rec.split}, "
               f"budget {rec.budget}, seed {rec.seed}, {rec.device}; "
               f"fit {t['fit_s']:.1f}s, predict {t['predict_s']:.1f}s)")
    if not result.skipped:
        click.echo(f"record: {result.path}")
    if rec.model_path is not None:
        click.echo(f"model: {rec.model_path} (cryobench predict --model {result.directory} "
                   "--data ...)")
