"""``cryobench convert IN -o OUT``: pick files between the Kaggle CSV, copick CSV, RELION 4/5,
pytom-match-pick, Dynamo and TOM formats (:mod:`cryobench.io.formats`)."""

from __future__ import annotations

import click

__all__ = ["convert"]

_FORMATS = ("kaggle", "copick-csv", "relion4", "relion5", "pytom", "dynamo", "tom")


@click.command("convert",
               short_help="Convert pick files (RELION, pytom, Dynamo, TOM, copick, CSV).")
@click.argument("src", metavar="IN", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output file.")
@click.option("--to", "to", type=click.Choice(_FORMATS), default=None,
              help="Output format [default: from OUT's extension: .csv kaggle, .star relion4, "
                   ".tbl dynamo, .em tom].")
@click.option("--from", "from_", type=click.Choice(_FORMATS), default=None,
              help="Input format [default: from IN's extension and columns].")
@click.option("--voxel-spacing", type=float, default=None,
              help="Å per pixel of pixel coordinates (and of --tomogram-shape).")
@click.option("--tomogram-shape", default=None, metavar="Z,Y,X",
              help="Tomogram shape in voxels, for RELION 5 centred coordinates.")
@click.option("--copick", "copick_config", type=click.Path(dir_okay=False), default=None,
              help="copick project: voxel spacing and tomogram shape per run, particle types.")
@click.option("--particle-type", default=None,
              help="Particle type of a file that has none; of one that has them, the one to "
                   "convert.")
@click.option("--experiment", default=None,
              help="Experiment (run) of a file that names none; of one that names them, the "
                   "one to convert.")
@click.option("--tomo-map", type=click.Path(dir_okay=False), default=None,
              help="Dynamo/TOM tomogram numbers: 'index name' per line [default: IN's .doc].")
def convert(src: str, out: str, to: str | None, from_: str | None, voxel_spacing: float | None,
            tomogram_shape: str | None, copick_config: str | None, particle_type: str | None,
            experiment: str | None, tomo_map: str | None) -> None:
    """Convert the pick file IN to OUT.

    Coordinates are Å inside cryobench; a format that stores pixels needs --voxel-spacing (or
    --copick), RELION 5 centred coordinates also --tomogram-shape. Orientations are kept.
    Dynamo tables and TOM motive lists hold one particle type and number their tomograms: the
    numbers (--tomo-map, else IN's .doc, else 1, 2, ... in sorted order) are written to OUT's
    .doc beside it.
    """
    from pathlib import Path

    from cryobench.errors import InputError
    from cryobench.io.formats import format_for_output, read_picks, write_picks
    from cryobench.io.formats._base import tomo_map_path

    src_path, out_path = Path(src), Path(out)
    if src_path.resolve() == out_path.resolve():
        raise InputError("IN and OUT are the same file", out_path)
    fmt = format_for_output(out_path, to)
    project = None
    if copick_config is not None:
        from cryobench.data.project import open_project

        project = open_project(copick_config)
    picks = read_picks(src_path, format=from_, voxel_spacing=voxel_spacing,
                       tomogram_shape=tomogram_shape, project=project,
                       particle_type=particle_type, experiment=experiment, tomo_map=tomo_map)
    numbers = tomo_map
    if numbers is None and tomo_map_path(src_path).is_file() and src_path.suffix.lower() in (
            ".tbl", ".em"):
        numbers = str(tomo_map_path(src_path))  # keep IN's tomogram numbers
    written = write_picks(picks, out_path, fmt, voxel_spacing=voxel_spacing,
                          tomogram_shape=tomogram_shape, project=project, tomo_map=numbers)
    n_exp = picks["experiment"].nunique()
    n_types = picks["particle_type"].nunique()
    click.echo(f"wrote {len(picks)} picks ({n_exp} experiment(s), {n_types} particle type(s)) "
               f"as {fmt} to {', '.join(str(p) for p in written)}")
