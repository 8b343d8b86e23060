"""``cryobench predict``: a trained model's picks for unlabelled tomograms, as a submission."""

from __future__ import annotations

import click

__all__ = ["predict"]


@click.command("predict", short_help="Predict picks with a trained model, as a submission.")
@click.option("--model", "model", required=True, type=click.Path(path_type=str),
              help="A run directory (runs/<split>/<method>/<hash>/seed-N) or its model/ folder.")
@click.option("--data", "data", required=True,
              help="A copick config (any project, e.g. the Kaggle test tomograms imported with "
                   "`cryobench data import-czii`), or a split name (its --part runs).")
@click.option("--part", default="test", show_default=True,
              help="With a split: which part to predict (train, val, test, all, a named part).")
@click.option("--data-dir", default=None, type=click.Path(file_okay=False),
              help="With an imported split: where its data lives (as `cryobench run --data`).")
@click.option("--runs", "runs", multiple=True, metavar="RUN[,RUN...]",
              help="Predict only these runs (repeatable).")
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False),
              help="The submission CSV (CZII or BYU format, by the task).")
@click.option("--with-score", is_flag=True,
              help="CZII: add the picks' score column (the Kaggle format has none).")
@click.option("--copick-user", default=None,
              help="Also write the picks into the copick project, as this user.")
@click.option("--copick-session", default=None, help="With --copick-user: the session.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def predict(model: str, data: str, part: str, data_dir: str | None, runs: tuple[str, ...],
            out: str, with_score: bool, copick_user: str | None, copick_session: str | None,
            device: str, progress: bool) -> None:
    """Predict picks with a trained model for tomograms without ground truth and write them as
    a Kaggle submission (CZII: id, experiment, particle_type, x, y, z in Å; BYU: tomo_id,
    Motor axis 0/1/2 in voxels, -1 for no motor)."""
    from cryobench.io.atomic import atomic_path
    from cryobench.runner.predict import (
        load_model,
        predict_picks,
        resolve_target,
        submission_table,
    )
    from cryobench.runner.run import resolve_device

    if (copick_user is None) != (copick_session is None):
        raise click.UsageError("give both --copick-user and --copick-session, or neither")
    names = [v.strip() for item in runs for v in item.split(",") if v.strip()]
    loaded = load_model(model)
    target = resolve_target(data, part=part, runs=names or None, data_dir=data_dir)
    picks = predict_picks(loaded, target, device=resolve_device(device), progress=progress)
    table = submission_table(picks, target, with_score=with_score)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    if copick_user is not None:
        for run in target.runs:
            target.project.write_picks(run.name, picks[picks["experiment"] == run.name],
                                       user=copick_user, session=copick_session)
    click.echo(f"wrote {out}: {len(table)} row(s) for {len(target.runs)} run(s) "
               f"({loaded.method.name}, {target.task} task)")
