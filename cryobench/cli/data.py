"""``cryobench data synth|import-czii|import-byu|fetch-portal|init-split|splits|show|solution``:
make, import, fetch, split, list, look at and export data.

Heavy imports (copick, zarr, matplotlib) happen inside the commands.
"""

from __future__ import annotations

import json

import click

from cryobench.cli._options import SEED

__all__ = ["data"]


@click.group("data", short_help="Splits, synthetic data, importers, the CryoET Data Portal.")
def data() -> None:
    """Make synthetic projects, import real data, list splits, draw slices."""


@data.command("synth")
@click.option("--preset", required=True,
              help="Phantom preset: czii, byu, tiny, tiny-byu (first generation) or czii-v2, "
                   "byu-v2, tiny-v2 (tilt series, crowding).")
@click.option("--out", "out", required=True, type=click.Path(),
              help="Output directory (new or empty); the config is OUT/copick.json.")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Random seed.")
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
@click.argument("kaggle_dir", metavar="KAGGLE_DIR", type=click.Path())
@click.option("--out", "out", required=True, type=click.Path(),
              help="Output directory (new or empty).")
def import_czii_cmd(kaggle_dir: str, out: str) -> None:
    """Import the Kaggle CZII training data as a copick project.

    KAGGLE_DIR is the competition folder or its train/ folder (the one holding static/ and
    overlay/). Tomograms stay in train/static (a read-only static root); picks are copied as
    curation_0_<object>.json into OUT/overlay. Kaggle's test/ has no picks: predict on it with
    `cryobench predict`.
    """
    from cryobench.data.importers import import_czii

    _print_summary(import_czii(kaggle_dir, out))


@data.command("import-byu")
@click.argument("kaggle_dir", metavar="KAGGLE_DIR", type=click.Path())
@click.option("--out", "out", required=True, type=click.Path(),
              help="Output directory (new or empty).")
@click.option("--labels", type=click.Path(), default=None,
              help="train_labels.csv [default: KAGGLE_DIR/train_labels.csv].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def import_byu_cmd(kaggle_dir: str, out: str, labels: str | None, quiet: bool) -> None:
    """Import the Kaggle BYU training data as a copick project.

    KAGGLE_DIR is the competition folder (train/<tomo_id>/slice_NNNN.jpg and
    train_labels.csv) or its train/ folder (the labels then beside it). Kaggle's test/ has
    no labels: predict on it with `cryobench predict`.
    """
    from cryobench.data.importers import import_byu

    _print_summary(import_byu(kaggle_dir, out, labels=labels, progress=not quiet))


def _source_label(src: dict) -> str:
    kind = src["kind"]
    if kind == "synth":
        return f"synthetic ({src.get('preset')})"
    if kind == "portal":
        return f"fetch-portal (${src.get('env')})"
    if kind == "copick":
        return f"copick {src.get('config')}"
    return f"import-{src.get('importer')} (${src.get('env')})"


def _runs_label(d: dict) -> str:
    if d.get("assign") and not (d["train"] or d["val"] or d["test"]):
        a = d["assign"]
        return (f"hash {1 - a['val_fraction'] - a['test_fraction']:.0%}/"
                f"{a['val_fraction']:.0%}/{a['test_fraction']:.0%}")
    by, parts = d.get("by_dataset") or {}, d.get("parts") or {}

    def one(role: str) -> str:
        ids = ",".join(map(str, by.get(role, [])))
        n = len(d[role]) if role in d else len(parts.get(role, []))
        label = f"dataset {ids}" if ids else ""
        return " + ".join(x for x in (label, str(n) if n or not label else "") if x)

    return "/".join(one(r) for r in ("train", "val", "test")) + "".join(
        f" ({k}: {one(k)})" for k in parts)


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
        source, runs = _source_label(d["source"]), _runs_label(d)
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
@click.option("--predictions", type=click.Path(), default=None,
              help="Predictions CSV (experiment, particle_type, x, y, z in Å) to overlay.")
@click.option("-o", "--out", "out", required=True, type=click.Path(),
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


def _comma_list(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@data.command("init-split")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Split JSON to write.")
@click.option("--train", multiple=True, help="Training runs (comma-separated; repeatable).")
@click.option("--val", multiple=True, help="Validation runs (comma-separated; repeatable).")
@click.option("--test", multiple=True, help="Test runs (comma-separated; repeatable).")
@click.option("--fractions", default=None,
              help="Draw the roles at random instead: train,val,test fractions, e.g. 0.6,0.2,0.2.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of --fractions.")
@click.option("--name", default=None, help="Split name [default: the --out file name].")
@click.option("--metric", type=click.Choice(["czii", "byu"]), default=None,
              help="Metric (and task) [default: byu for a motor project, else czii].")
@click.option("--tomo-type", default=None, help="Tomogram type [default: the project's].")
@click.option("--voxel-spacing", type=float, default=None,
              help="Voxel spacing in Å [default: the project's].")
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
def init_split_cmd(config: str, out: str, train: tuple[str, ...], val: tuple[str, ...],
                   test: tuple[str, ...], fractions: str | None, seed: int, name: str | None,
                   metric: str | None, tomo_type: str | None, voxel_spacing: float | None,
                   force: bool) -> None:
    """Write a split JSON for the copick project CONFIG (a copick config or a Croissant
    metadata.json): runs by name, by --fractions, or from a Croissant's split column."""
    from pathlib import Path

    from cryobench.data.project import open_project
    from cryobench.data.split_init import make_split_definition
    from cryobench.errors import ConfigError
    from cryobench.io.atomic import atomic_write_text

    out_path = Path(out)
    if out_path.exists() and not force:
        raise ConfigError("exists (pass --force to overwrite)", out_path)
    if out_path.suffix != ".json":
        raise ConfigError("the split file must end in .json", out_path)
    roles = None
    if train or val or test:
        roles = {"train": _comma_list(train), "val": _comma_list(val),
                 "test": _comma_list(test)}
    fracs = None
    if fractions is not None:
        try:
            fracs = [float(f) for f in fractions.split(",")]
        except ValueError:
            raise ConfigError(f"--fractions needs numbers, got {fractions!r}") from None
    project = open_project(config)
    definition = make_split_definition(
        project, name if name is not None else out_path.stem, roles=roles, fractions=fracs,
        seed=seed, metric=metric, tomo_type=tomo_type, voxel_spacing=voxel_spacing, out=out_path)
    atomic_write_text(out_path, json.dumps(definition, indent=2) + "\n")
    counts = "/".join(str(len(definition[r])) for r in ("train", "val", "test"))
    parts = "".join(f", part {k}: {len(v)}" for k, v in definition.get("parts", {}).items())
    click.echo(f"wrote split {definition['name']!r} ({definition['metric']}; train/val/test "
               f"{counts}{parts}) to {out_path}; use --split {out_path}")


@data.command("fetch-portal")
@click.option("--dataset", "datasets", multiple=True, required=True,
              help="CryoET Data Portal dataset id (comma-separated; repeatable), e.g. 10440.")
@click.option("--runs", multiple=True,
              help="Only these runs: portal run names or ids (comma-separated; repeatable).")
@click.option("--voxel-spacing", type=float, default=10.0, show_default=True,
              help="Voxel spacing in Å (10 finds the portal's 10.012).")
@click.option("--tomo-type", default=None,
              help="Portal tomogram type [default: wbp-denoised-denoiset-ctfdeconv for the CZII "
                   "datasets, else the only one].")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Output folder (new, empty, or an earlier fetch to resume).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def fetch_portal_cmd(datasets: tuple[str, ...], runs: tuple[str, ...], voxel_spacing: float,
                     tomo_type: str | None, out: str, quiet: bool) -> None:
    """Materialise CryoET Data Portal datasets as a local copick project (tomograms of one type
    and the ground-truth picks as curation/0); resumable. Needs the network."""
    from cryobench.data.portal import fetch_portal
    from cryobench.errors import ConfigError

    try:
        ids = [int(d) for d in _comma_list(datasets)]
    except ValueError:
        raise ConfigError(f"--dataset needs numeric ids, got {', '.join(datasets)}") from None
    summary = fetch_portal(ids, out, runs=_comma_list(runs) or None, voxel_spacing=voxel_spacing,
                           tomo_type=tomo_type, progress=not quiet)
    click.echo(f"fetched {len(summary.fetched)} runs ({len(summary.already)} already there) "
               f"into {summary.config}")
    if summary.picks:
        click.echo("ground-truth picks: " + ", ".join(f"{k} {v}"
                                                      for k, v in summary.picks.items()))
    if summary.skipped_objects:
        click.echo(f"objects not fetched: {', '.join(summary.skipped_objects)}")
    if summary.placeholder_radii:
        click.echo(f"warning: {', '.join(summary.placeholder_radii)} carry copick's placeholder "
                   f"radius (50 Å); set the real radius (and metadata.score_weight) in "
                   f"{summary.config} before scoring")


@data.command("solution")
@click.argument("split_name", metavar="SPLIT")
@click.option("--part", default="test", show_default=True,
              help="Which runs: train, val, test, all, or one of the split's parts.")
@click.option("--data", "data_dir", type=click.Path(), default=None,
              help="Imported data directory (or its copick.json) [default: the split's "
                   "environment variable].")
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output CSV.")
@click.option("--quiet", is_flag=True, help="No progress bar (synthetic splits generate first).")
@click.option("--fingerprint", is_flag=True,
              help="Also write OUT.json naming the split, part, metric and dataset "
                   "fingerprint, so `cryobench leaderboard build --solutions DIR` can rescore "
                   "records made on exactly these data.")
def solution_cmd(split_name: str, part: str, data_dir: str | None, out: str,
                 quiet: bool, fingerprint: bool) -> None:
    """Write the ground truth of a split's runs in the Kaggle solution format.

    Particle splits (CZII): id, experiment, particle_type, x, y, z (Å). Motor splits (BYU):
    tomo_id, Motor axis 0, Motor axis 1, Motor axis 2 (voxels z, y, x; -1 without a motor),
    Voxel spacing, Has motor. Either can be scored by the official Kaggle script.
    """
    from cryobench.data.splits import load_split
    from cryobench.io.atomic import atomic_path
    from cryobench.io.picks import PICKS_COLUMNS, write_picks_csv

    split = load_split(split_name, data_dir)
    split.project(progress=not quiet)
    if fingerprint:
        from cryobench.report.verification import write_sidecar

        write_sidecar(out, split=split.name, part=part, metric=split.metric,
                      fingerprint=split.fingerprint)
    if split.task == "motor":
        table = split.byu_solution(part)
        with atomic_path(out, suffix=".csv") as tmp:
            table.to_csv(tmp, index=False)
        motors = int(table["Has motor"].sum())
        click.echo(f"wrote the {part} solution of {split.name} ({len(table)} tomograms, "
                   f"{motors} with a motor) to {out}")
        return
    table = split.solution(part)
    write_picks_csv(table[list(PICKS_COLUMNS)], out)  # the Kaggle layout: no orientations
    counts = table["particle_type"].value_counts().sort_index()
    per = ", ".join(f"{k} {v}" for k, v in counts.items()) or "no picks"
    click.echo(f"wrote the {part} solution of {split.name} ({table['experiment'].nunique()} "
               f"runs: {per}) to {out}")
