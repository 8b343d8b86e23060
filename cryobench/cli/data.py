"""``cryobench data synth|import-czii|import-byu|splits|show``: make, import, list and look at data.

Heavy imports (copick, zarr, matplotlib) happen inside the commands.
"""

from __future__ import annotations

import json

import click

__all__ = ["data"]


@click.group("data")
def data() -> None:
    """Make synthetic projects, import real data, list splits, draw slices."""


@data.command("synth")
@click.option("--preset", required=True,
              help="Phantom preset: czii, byu, tiny, tiny-byu (first generation) or czii-v2, "
                   "byu-v2, tiny-v2 (tilt series, crowding).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Output directory (new or empty); the config is OUT/copick.json.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--runs", "n_runs", default=None, type=click.IntRange(min=1),
              help="Number of tomograms [default: 7 for czii(-v2), 10 for byu(-v2), 4 else].")
@click.option("--snr", default=None, type=click.FloatRange(min=0, min_open=True),
              help="Signal-to-noise ratio (default: the preset's).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synth_cmd(preset: str, out: str, seed: int, n_runs: int | None, snr: float | None,
              quiet: bool) -> None:
    """Write a synthetic copick project (tomograms with a 3-level pyramid, ground truth as
    user 'curation', session '0')."""
    from cryobench.data.synth import get_preset, synth_run_names, write_synthetic_project

    get_preset(preset)
    n = n_runs if n_runs is not None else {"czii": 7, "czii-v2": 7, "byu": 10,
                                           "byu-v2": 10}.get(preset, 4)
    names = synth_run_names(preset, n)
    cfg = write_synthetic_project(out, preset, names, seed=seed, snr=snr, progress=not quiet)
    click.echo(f"wrote {len(names)} runs ({names[0]} .. {names[-1]}) to {cfg}")


def _print_summary(summary) -> None:
    picks = ", ".join(f"{k} {v}" for k, v in summary.picks.items())
    click.echo(f"imported {len(summary.runs)} runs into {summary.config}")
    click.echo(f"ground-truth picks: {picks}")
    if summary.skipped:
        click.echo(f"skipped {len(summary.skipped)}: {', '.join(summary.skipped[:8])}"
                   f"{' ...' if len(summary.skipped) > 8 else ''}")


@data.command("import-czii")
@click.argument("train_dir", type=click.Path())
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Output directory (new or empty).")
def import_czii_cmd(train_dir: str, out: str) -> None:
    """Import the Kaggle CZII TRAIN_DIR (static/ + overlay/) as a copick project.

    Tomograms stay in TRAIN_DIR/static (read-only static root); picks are copied as
    curation_0_<object>.json into OUT/overlay.
    """
    from cryobench.data.importers import import_czii

    _print_summary(import_czii(train_dir, out))


@data.command("import-byu")
@click.argument("train_dir", type=click.Path())
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Output directory (new or empty).")
@click.option("--labels", type=click.Path(dir_okay=False), default=None,
              help="train_labels.csv [default: beside TRAIN_DIR's train/].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def import_byu_cmd(train_dir: str, out: str, labels: str | None, quiet: bool) -> None:
    """Import the Kaggle BYU data (train/<tomo_id>/slice_NNNN.jpg + train_labels.csv)."""
    from cryobench.data.importers import import_byu

    _print_summary(import_byu(train_dir, out, labels=labels, progress=not quiet))


@data.command("splits")
@click.option("--json", "as_json", is_flag=True, help="Print the definitions as JSON.")
def splits_cmd(as_json: bool) -> None:
    """List the named splits."""
    from cryobench.data.splits import list_splits, split_definition

    defs = [split_definition(n) for n in list_splits()]
    if as_json:
        click.echo(json.dumps(defs, indent=2))
        return
    rows = []
    for d in defs:
        src = d["source"]
        source = (f"synthetic ({src.get('preset')})" if src["kind"] == "synth"
                  else f"import-{src.get('importer')} (${src.get('env')})")
        if d.get("assign") and not (d["train"] or d["val"] or d["test"]):
            a = d["assign"]
            runs = (f"hash {1 - a['val_fraction'] - a['test_fraction']:.0%}/"
                    f"{a['val_fraction']:.0%}/{a['test_fraction']:.0%}")
        else:
            runs = f"{len(d['train'])}/{len(d['val'])}/{len(d['test'])}"
        folds = len(d.get("folds") or [])
        rows.append([d["name"], d["task"], d["metric"], source, runs, str(folds or "-")])
    header = ["NAME", "TASK", "METRIC", "SOURCE", "TRAIN/VAL/TEST", "FOLDS"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@data.command("show")
@click.argument("config", type=click.Path())
@click.option("--run", "run_name", required=True, help="Run name.")
@click.option("--z", "z", type=int, default=None,
              help="z index of the xy slice [default: the slice cutting most particles].")
@click.option("--y", "y", type=int, default=None,
              help="y index of the xz view [default: the plane cutting most particles].")
@click.option("--tomo-type", default=None, help="Tomogram type [default: the project's].")
@click.option("--voxel-spacing", type=float, default=None, help="Voxel spacing (Å).")
@click.option("--level", type=click.IntRange(min=0), default=0, show_default=True,
              help="Pyramid level.")
@click.option("--predictions", type=click.Path(dir_okay=False), default=None,
              help="Predictions CSV (experiment, particle_type, x, y, z in Å) to overlay.")
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output PNG.")
def show_cmd(config: str, run_name: str, z: int | None, y: int | None, tomo_type: str | None,
             voxel_spacing: float | None, level: int, predictions: str | None, out: str) -> None:
    """Draw an xy slice and an xz view of a run with ground-truth (and predicted) picks."""
    from cryobench.data.project import open_project
    from cryobench.data.show import render_run
    from cryobench.io.picks import read_picks_csv

    project = open_project(config)
    run = project.run(run_name, tomo_type, voxel_spacing)
    preds = None
    if predictions is not None:
        preds = read_picks_csv(predictions, known_types=[p.name for p in project.particles])
    info = render_run(run, out, z=z, y=y, predictions=preds, level=level)
    click.echo(f"wrote {out} (z={info['z']}, y={info['y']})")
