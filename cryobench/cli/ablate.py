"""``cryobench ablate``: run a grid of config variations and compare each cell with the base."""

from __future__ import annotations

import json

import click

from cryobench.cli._options import FLIPS

__all__ = ["ablate"]


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@click.command("ablate", short_help="Run an ablation grid of one method (a spec file or --vary).")
@click.argument("spec", required=False, type=click.Path(dir_okay=False))
@click.option("--method", "-m", default=None, help="Method (when no SPEC file is given).")
@click.option("--split", "-s", default=None, help="Split name or split JSON file.")
@click.option("--vary", multiple=True, metavar="KEY=V1,V2[,...]",
              help="A config key and its values (repeatable; the grid is every combination). "
                   "'split' varies the split.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A config override for every cell (repeatable).")
@click.option("--seeds", default=None, help="Seeds of every cell, e.g. 0,1,2 or 0-4 "
              "[default: the spec's, else 0,1,2].")
@click.option("--budget", type=click.Choice(["smoke", "cpu", "full"]), default=None,
              help="Default: the spec's; else full on a GPU, cpu otherwise.")
@click.option("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA if available).")
@click.option("--name", default=None, help="Ablation name (folder of its manifest).")
@click.option("--results", "results", default="runs", show_default=True,
              type=click.Path(file_okay=False), help="Results store to run into.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True)
@click.option("--address", default=None,
              help="Ray cluster address (ray://HOST:10001 or auto); default: a local instance.")
@click.option("--cpus-per-task", type=float, default=1.0, show_default=True,
              help="CPUs Ray reserves per cell.")
@click.option("--gpus-per-task", type=float, default=0.0, show_default=True,
              help="GPUs Ray reserves per cell (fractions share a GPU).")
@click.option("--rerun", is_flag=True, help="Run cells again even when their record exists.")
@click.option("--dry-run", is_flag=True, help="Validate and list the cells; run nothing.")
@click.option("--flips", "n_flips", type=FLIPS, default=9999, show_default=True,
              help="Random sign flips of a paired comparison when there are too many test "
                   "experiments to enumerate every flip (0: no intervals, no ranks).")
@click.option("--data", "data_dir", default=None, type=click.Path(file_okay=False),
              help="Data directory passed to the split loader.")
@click.option("--json", "as_json", is_flag=True, help="Print the analysis as JSON.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def ablate(spec: str | None, method: str | None, split: str | None, vary: tuple[str, ...],
           sets: tuple[str, ...], seeds: str | None, budget: str | None, device: str | None,
           name: str | None, results: str, executor: str, address: str | None,
           cpus_per_task: float, gpus_per_task: float, rerun: bool, dry_run: bool, n_flips: int,
           data_dir: str | None, as_json: bool, progress: bool) -> None:
    """Run an ablation grid (SPEC.toml, or --method/--split/--vary) and report each cell's score
    with its 95% interval and the paired difference to the base cell.

    Cells whose record already exists in --results are not run again, so an interrupted
    ablation resumes where it stopped.
    """
    from cryobench.errors import ConfigError, ResultsError
    from cryobench.report.ablation import ablation_text, load_ablation
    from cryobench.runner import ablate as A
    from cryobench.runner.executors import make_executor

    fixed = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        fixed[key.strip()] = value
    if spec:
        if method or split or vary:
            raise ConfigError("give either a SPEC file or --method/--split/--vary, not both")
        sp = A.load_spec(spec)
        sp.fixed.update(fixed)
        if seeds:
            sp.seeds = A.parse_seeds(seeds)
        if budget:
            sp.budget = budget
        if name:
            sp.name = name
    else:
        if not method or not split:
            raise ConfigError("give a SPEC file, or --method, --split and --vary")
        sp = A.spec_from_options(method, split, vary, seeds or "0,1,2", budget, fixed, name)
    plan = A.make_plan(sp, device)
    summary = A.summarise_plan(plan, results, rerun)
    est = ("unknown" if summary.estimate_s is None
           else f"about {_duration(summary.estimate_s)}")
    click.echo(f"ablation {sp.name}: {summary.n_cells} cell(s) x {summary.n_seeds} seed(s) of "
               f"{sp.method} (budget {plan.budget}) into {results}: {summary.todo} run(s) to do, "
               f"{summary.done} already complete; time {est} ({summary.basis})"
               + ("" if dry_run else "; --dry-run lists the cells without running them"),
               err=True)
    if dry_run:
        click.echo(f"{sp.name}: {len(plan.points)} cell(s) x {len(sp.seeds)} seed(s), "
                   f"method {sp.method}, budget {plan.budget}")
        for p in plan.points:
            click.echo(f"  {p.label:<40} split {p.split_name:<24} config {p.config_hash[:12]}"
                       + ("  (base)" if p.is_base else ""))
        return
    ex = make_executor(executor, progress=progress, address=address, num_cpus=cpus_per_task,
                       num_gpus=gpus_per_task)
    outcome = A.run_ablation(plan, results, ex, rerun=rerun, device=device, data_dir=data_dir)
    click.echo(f"{outcome.ran} cell run(s) done, {outcome.skipped} already complete, "
               f"{len(outcome.failures)} failed; manifest {outcome.manifest}", err=True)
    for f in outcome.failures:
        click.echo(f"failed: {f.cell.label()}: {f.message}", err=True)
        if f.traceback:
            click.echo(f.traceback.rstrip(), err=True)
    total = len(plan.points) * len(sp.seeds)
    if outcome.failures and len(outcome.failures) == total:
        raise ResultsError("every cell failed; nothing to report", outcome.manifest)
    abl = load_ablation(results, outcome.manifest, n_flips)
    if as_json:
        click.echo(json.dumps(abl.to_dict(), indent=2, default=str))
    else:
        click.echo(ablation_text(abl))
    if outcome.failures:
        raise SystemExit(1)
