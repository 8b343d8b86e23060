"""Draw a tomogram slice and an orthogonal view with picks (``cryobench data show``).

:func:`slice_figure` draws the figure, :func:`slice_png` renders it to PNG bytes and
:func:`render_run` writes it to a file. Picks are
coloured by class; when the ground truth and the predictions carry an ``outcome`` column
(``tp`` / ``fn`` for references, ``tp`` / ``duplicate`` / ``fp`` for picks, as
:func:`cryobench.report.curves.pick_outcomes` decides them), they are drawn by outcome instead,
so a reader sees where a method fails.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cryobench.coords import picks_to_voxels
from cryobench.data.project import RunHandle
from cryobench.errors import ConfigError
from cryobench.io.atomic import atomic_path
from cryobench.particles import ParticleType

__all__ = ["render_run", "slice_figure", "slice_png", "busiest_slice", "OUTCOME_STYLES"]

OUTCOME_STYLES: dict[tuple[str, str], dict[str, object]] = {
    ("truth", "tp"): {"color": "#009E73", "lw": 1.3, "ls": "-",
                      "label": "reference found (TP)"},
    ("truth", "fn"): {"color": "#F0E442", "lw": 2.2, "ls": "-",
                      "label": "reference missed (FN)"},
    ("pred", "tp"): {"color": "#009E73", "marker": "+", "label": "pick on a reference (TP)"},
    ("pred", "duplicate"): {"color": "#CC79A7", "marker": "x",
                            "label": "duplicate pick (FP by the Kaggle rule)"},
    ("pred", "fp"): {"color": "#D55E00", "marker": "x", "lw": 1.2, "ls": "--",
                     "label": "pick near no reference (FP)"},
}
"""How each outcome is drawn (colour-blind-safe colours) and named in the legend."""


def _rgb(p: ParticleType) -> tuple[float, ...]:
    c = tuple(p.color) + (255,) * (4 - len(p.color))
    return tuple(v / 255.0 for v in c[:3])


def busiest_slice(picks: pd.DataFrame, spacing: float, particles: tuple[ParticleType, ...],
                  n: int, axis: int = 0) -> int:
    """The index along ``axis`` (0 = z, 1 = y) that shows the most particle cross-section: each
    particle adds ``1 - (d / r)²`` to the planes it cuts (so centres win ties); middle if none."""
    radii = {p.name: p.radius for p in particles}
    if len(picks) == 0:
        return n // 2
    centres = picks_to_voxels(picks, spacing)[:, axis]
    r = picks["particle_type"].map(radii).fillna(0).to_numpy(np.float64) / spacing
    score = np.zeros(n, dtype=np.float64)
    planes = np.arange(n, dtype=np.float64)
    for c, rr in zip(centres, r, strict=True):
        if rr > 0:
            score += np.clip(1.0 - ((planes - c) / rr) ** 2, 0.0, None)
    return int(np.argmax(score)) if score.max() > 0 else n // 2


def _circles(ax, picks: pd.DataFrame, spacing: float, particles: tuple[ParticleType, ...],
             cut: float, cut_axis: int, style: str, project: bool = False) -> dict[str, int]:
    """Draw the cross-section circle of each pick cut by the plane ``cut_axis == cut``
    (``project``: the centre marker of every pick, cut or not).

    Returns how many were drawn, per class (or per outcome when ``picks`` has ``outcome``).
    """
    from matplotlib.patches import Circle

    byname = {p.name: p for p in particles}
    shown: dict[str, int] = {}
    if len(picks) == 0:
        return shown
    zyx = picks_to_voxels(picks, spacing)
    outcomes = (picks["outcome"].astype(str).to_numpy() if "outcome" in picks.columns
                else [None] * len(picks))
    for t, c, oc in zip(picks["particle_type"].astype(str), zyx, outcomes, strict=True):
        p = byname.get(t)
        if p is None:
            continue
        d = (c[cut_axis] - cut) * spacing
        cuts = abs(d) < p.radius
        if not (cuts or (project and oc is not None)):
            continue
        rr = np.sqrt(max(p.radius ** 2 - d * d, 0.0)) / spacing
        col, row = (c[2], c[1]) if cut_axis == 0 else (c[2], c[0])
        if oc is not None:
            st = OUTCOME_STYLES.get((style, oc))
            if st is None:  # not scored (a class or experiment the solution lacks)
                continue
            if "ls" in st and cuts:
                ax.add_patch(Circle((col, row), rr, edgecolor=st["color"], fill=False,
                                    lw=st["lw"], ls=st["ls"]))
            if "marker" in st:
                ax.plot([col], [row], marker=st["marker"], ms=7, mew=1.8, color=st["color"],
                        ls="none")
            shown[oc] = shown.get(oc, 0) + 1
            continue
        kw = (dict(fill=False, lw=1.4, ls="-") if style == "truth"
              else dict(fill=False, lw=1.2, ls="--"))
        ax.add_patch(Circle((col, row), rr, edgecolor=_rgb(p), **kw))
        if style != "truth":
            ax.plot([col], [row], marker="x", ms=5, color=_rgb(p))
        shown[t] = shown.get(t, 0) + 1
    return shown


def _legend_handles(particles: Sequence[ParticleType], truth: pd.DataFrame,
                    predictions: pd.DataFrame | None, drawn: dict[str, dict[str, int]],
                    by_outcome: bool, labels: dict[tuple[str, str], str] | None = None
                    ) -> list:
    from matplotlib.lines import Line2D

    if by_outcome:
        handles = []
        for (kind, oc), st in OUTCOME_STYLES.items():
            if labels is not None and (kind, oc) not in labels:
                continue
            n = drawn.get(kind, {}).get(oc, 0)
            label = f"{(labels or {}).get((kind, oc), st['label'])}: {n}"
            if "marker" in st:
                handles.append(Line2D([], [], color=st["color"], marker=st["marker"], ms=7,
                                      mew=1.8, ls=st.get("ls", "none"),
                                      lw=st.get("lw", 0), label=label))
            else:
                handles.append(Line2D([], [], color=st["color"], lw=st["lw"], ls=st["ls"],
                                      label=label))
        return handles
    counts = truth["particle_type"].value_counts().to_dict() if len(truth) else {}
    handles = [Line2D([], [], color=_rgb(p), lw=2, label=f"{p.name} ({counts.get(p.name, 0)})")
               for p in particles]
    if predictions is not None:
        handles += [Line2D([], [], color="k", lw=1.4, label="ground truth"),
                    Line2D([], [], color="k", lw=1.2, ls="--", marker="x", label="predictions")]
    return handles


def slice_png(run: RunHandle, *, dpi: int = 100, **kwargs) -> tuple[bytes, dict[str, object]]:
    """:func:`slice_figure` as PNG bytes (and what was drawn)."""
    fig, info = slice_figure(run, dpi=dpi, **kwargs)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 2})
    return buf.getvalue(), info


def slice_figure(run: RunHandle, *, z: int | None = None, y: int | None = None,
                 predictions: pd.DataFrame | None = None, truth: pd.DataFrame | None = None,
                 level: int = 0, dpi: int = 100, xz: bool = True, width: float = 7.5,
                 title: str | None = None, project_picks: bool = False,
                 outcome_labels: dict[tuple[str, str], str] | None = None):
    """The xy slice at ``z`` (and, with ``xz``, the xz slice at ``y``) with the ground truth
    (solid circles) and predictions (dashed, ``x`` at the centre), as a matplotlib Figure.

    Args:
        truth: the ground truth to draw (default: the run's own); with ``predictions``, an
            ``outcome`` column in both switches to drawing by outcome (see module docstring).
        width: figure width in inches (the PNG is ``width x dpi`` pixels wide).
        project_picks: when drawing by outcome, mark every pick's centre even where its
            sphere does not cut the plane (a rule with a match distance beyond the radius).
        outcome_labels: the legend's outcomes and their names (default: all, as
            :data:`OUTCOME_STYLES` names them).

    ``z`` / ``y`` default to the plane cutting the most ground-truth particles. Returns the
    figure and what was drawn (planes, and counts per class or outcome).
    """
    from matplotlib.figure import Figure

    particles = run.particles
    spacing = run.voxel_spacing * 2 ** level
    shape = run.level_shape(level)
    truth = run.picks() if truth is None else truth[truth["experiment"].astype(str) == run.name]
    if z is None:
        z = busiest_slice(truth, spacing, particles, shape[0], axis=0)
    if y is None:
        y = busiest_slice(truth, spacing, particles, shape[1], axis=1)
    if not 0 <= z < shape[0]:
        raise ConfigError(f"z={z} is outside the tomogram (0..{shape[0] - 1})")
    if not 0 <= y < shape[1]:
        raise ConfigError(f"y={y} is outside the tomogram (0..{shape[1] - 1})")
    xy = run.tomogram(level, (slice(z, z + 1), slice(None), slice(None)))[0]
    lo, hi = np.percentile(xy, [1, 99])
    if predictions is not None:
        predictions = predictions[predictions["experiment"].astype(str) == run.name]
    by_outcome = (predictions is not None and "outcome" in predictions.columns
                  and "outcome" in truth.columns)

    views = [(xy, z, 0, f"xy slice z={z}")]
    if xz:
        img = run.tomogram(level, (slice(None), slice(y, y + 1), slice(None)))[:, 0, :]
        views.append((img, y, 1, f"xz slice y={y}"))
    aspect = [v[0].shape[0] / v[0].shape[1] for v in views]
    n_out = len(outcome_labels) if outcome_labels is not None else len(OUTCOME_STYLES)
    legend_rows = (int(np.ceil(n_out / 2)) if by_outcome
                   else int(np.ceil((len(particles) + 2) / 3)))
    axes_w = width - 0.9
    top_in, gap_in, label_in = 0.45, 0.75, 0.5
    heights = [a * axes_w for a in aspect]
    legend_in = 0.15 + 0.23 * legend_rows
    height = top_in + sum(heights) + gap_in * (len(views) - 1) + label_in + legend_in
    fig = Figure(figsize=(width, height), dpi=dpi)
    info: dict[str, object] = {"z": z, "y": y, "level": level}
    drawn: dict[str, dict[str, int]] = {}
    top = height - top_in
    for (img, cut, cut_axis, label), h in zip(views, heights, strict=True):
        ax = fig.add_axes((0.7 / width, (top - h) / height, axes_w / width, h / height))
        top -= h + gap_in
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, origin="upper", interpolation="nearest")
        gt = _circles(ax, truth, spacing, particles, cut, cut_axis, "truth")
        info[f"truth_{label.split()[0]}"] = gt
        if cut_axis == 0:
            drawn["truth"] = gt
        if predictions is not None:
            pr = _circles(ax, predictions, spacing, particles, cut, cut_axis, "pred",
                          project=project_picks and cut_axis == 0)
            info[f"pred_{label.split()[0]}"] = pr
            if cut_axis == 0:
                drawn["pred"] = pr
        if len(views) > 1:
            ax.set_title(label, fontsize=10)
        ax.set_xlabel("x (voxels)", fontsize=10)
        ax.set_ylabel("y (voxels)" if cut_axis == 0 else "z (voxels)", fontsize=10)
        ax.tick_params(labelsize=9)
        ax.set_xlim(-0.5, img.shape[1] - 0.5)
        ax.set_ylim(img.shape[0] - 0.5, -0.5)
    handles = _legend_handles(particles, truth, predictions, drawn, by_outcome, outcome_labels)
    fig.legend(handles=handles, loc="lower center", ncols=2 if by_outcome else 3, fontsize=9,
               frameon=False, bbox_to_anchor=(0.5, 0.02 / height))
    head = title or f"{run.name}  ({run.tomo_type}, {spacing:g} Å/voxel, shape {shape})"
    if len(views) == 1:
        head += f", {views[0][3]}"
    fig.suptitle(head, fontsize=11, y=1 - 0.1 / height, va="top")
    return fig, info


def render_run(run: RunHandle, out: str | os.PathLike[str], *, z: int | None = None,
               y: int | None = None, predictions: pd.DataFrame | None = None,
               level: int = 0, dpi: int = 110, truth: pd.DataFrame | None = None
               ) -> dict[str, object]:
    """Write a PNG: the xy slice at ``z`` and the xz slice at ``y`` with ground-truth circles
    (solid) and predictions (dashed, ``x`` at the centre), coloured by class (or by outcome, see
    :func:`slice_png`), with a legend.

    ``z`` / ``y`` default to the plane cutting the most ground-truth particles. Returns what was
    drawn (planes and counts). The file is written atomically.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    out = Path(out)
    fmt = out.suffix.lstrip(".").lower() or "png"
    formats = FigureCanvasAgg.get_supported_filetypes()
    if fmt not in formats:
        raise ConfigError(f"cannot draw a {out.suffix!r} file; use one of "
                          f"{', '.join('.' + f for f in sorted(formats))}", out)
    if out.is_dir():
        raise ConfigError("is a directory; give the output image file", out)
    fig, info = slice_figure(run, z=z, y=y, predictions=predictions, truth=truth, level=level,
                             dpi=dpi)
    with atomic_path(out, suffix=out.suffix or ".png") as tmp:
        fig.savefig(tmp, dpi=dpi, format=fmt)
    return info
