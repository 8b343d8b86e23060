"""``cryobench run``: train, tune, predict, score one method on one split and write its record."""

from __future__ import annotations

import click

__all__ = ["run", "format_counts_table"]


def format_counts_table(rec: dict) -> str:
    """Per-class table (tp, fp, fn, precision, recall, F-beta, weight) from a record's counts."""
    beta = float(rec.get("params", {}).get("beta", 4 if rec.get("metric") == "czii" else 2))
    weights = rec.get("params", {}).get("weights", {}) or {}
    totals: dict[str, list[int]] = {}
    for row in rec.get("counts", []):
        t = totals.setdefault(row["particle_type"], [0, 0, 0])
        t[0] += row["tp"]
        t[1] += row["fp"]
        t[2] += row["fn"]
    for name in weights:  # classes without any counts still get a row
        totals.setdefault(name, [0, 0, 0])
    header = ["particle_type", "tp", "fp", "fn", "precision", "recall", f"F{beta:g}", "weight"]
    rows = []
    for name in sorted(totals):
        tp, fp, fn = totals[name]
        p = tp / (tp + fp) if tp + fp > 0 else 0.0
        r = tp / (tp + fn) if tp + fn > 0 else 0.0
        f = (1 + beta**2) * p * r / (beta**2 * p + r) if (beta**2 * p + r) > 0 else 0.0
        w = weights.get(name)
        rows.append([name, str(tp), str(fp), str(fn), f"{p:.3f}", f"{r:.3f}", f"{f:.3f}",
                     "-" if w is None else f"{w:g}"])
    widths = [max(len(x[i]) for x in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                       enumerate(zip(r, widths, strict=True))) for r in [header, *rows]]
    return "\n".join(lines)


@click.command("run")
@click.option("--method", "-m", "method", required=True, help="Registered method name.")
@click.option("--split", "-s", "split", required=True, help="Split name (tiny, czii-synth...).")
@click.option("--seed", default=0, show_default=True, type=int)
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
              help="Data directory passed to the split loader.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def run(method: str, split: str, seed: int, budget: str | None, device: str | None,
        sets: tuple[str, ...], out: str, rerun: bool, as_json: bool, data_dir: str | None,
        progress: bool) -> None:
    """Train METHOD on the split's train runs, tune on val, predict and score the test runs.

    Writes predictions (CSV + copick picks) and a run record under --out, then prints the
    per-class table (or, with --json, the record).
    """
    from cryobench.methods.registry import get_method
    from cryobench.runner.overrides import parse_assignments
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

        click.echo(dumps(rec), nl=False)
        return
    if result.skipped:
        click.echo(f"already complete: {result.path} (pass --rerun to run again)")
    click.echo(format_counts_table(rec))
    t = rec["timings"]
    click.echo(f"\n{rec['metric']} score: {rec['score']:.4f}  ({rec['method']} on {rec['split']}, "
               f"budget {rec['budget']}, seed {rec['seed']}, {rec['device']}; "
               f"fit {t['fit_s']:.1f}s, predict {t['predict_s']:.1f}s)")
    if not result.skipped:
        click.echo(f"record: {result.path}")
