"""Matplotlib figures for reports and the leaderboard site, rendered to PNG bytes.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot state, no GUI
backend), so they are safe to build anywhere and fast enough for a site of hundreds of runs.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["png_bytes", "data_uri", "class_bars", "score_forest", "runtime_scatter",
           "pr_panels", "distance_curves", "threshold_sweep", "ablation_forest", "MAX_WIDTH"]

_DPI = 100
MAX_WIDTH = 7.2
"""Widest figure shown beside another (inches; 720 px at 100 dpi: two fit a 1480 px page)."""
TICK_PT, LABEL_PT, LEGEND_PT, TITLE_PT = 9.5, 10.5, 9.5, 11.0
"""Font sizes (points; at 100 dpi and shown unscaled, 9.5 pt is 13 px)."""
_PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
            "#000000"]


def _figure(width: float, height: float, left: float = 0.6, bottom: float = 0.5,
            right: float = 0.15, top: float = 0.15):
    """A figure with fixed margins in inches (a layout engine would double the drawing time)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                        top=1 - top / height)
    return fig


def _label_inches(labels: Sequence[str], fontsize: float = 8) -> float:
    """Roughly the width of the longest label in inches (DejaVu Sans: ~0.6 em per char)."""
    return 0.15 + 0.6 * fontsize / 72 * max((len(s) for s in labels), default=1)


def png_bytes(fig: Any) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, pil_kwargs={"compress_level": 2})
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI (for self-contained HTML)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def class_bars(per_class: dict[str, dict[str, Any]], seed_fbeta: dict[str, Sequence[float]],
               beta: float, title: str = "") -> bytes:
    """Grouped bars of precision, recall and F-beta per class (seed means, seeds as dots)."""
    classes = list(per_class)
    n = max(len(classes), 1)
    fig = _figure(min(MAX_WIDTH, max(5.4, 0.95 * n + 1.6)), 3.6, left=0.7,
                  bottom=0.85 if n > 3 else 0.55, top=0.75 if title else 0.45)
    ax = fig.add_subplot()
    x = np.arange(len(classes))
    width = 0.26
    for i, (key, label) in enumerate((("precision", "precision"), ("recall", "recall"),
                                      ("fbeta", f"F{beta:g}"))):
        vals = [per_class[c].get(key) or 0.0 for c in classes]
        ax.bar(x + (i - 1) * width, vals, width, label=label, color=_PALETTE[i])
    for k, c in enumerate(classes):
        pts = list(seed_fbeta.get(c, []))
        if len(pts) > 1:
            ax.plot(np.full(len(pts), x[k] + width), pts, "k.", ms=6, zorder=3)
    ax.set_xticks(x, [_short(c) for c in classes], rotation=20 if n > 3 else 0,
                  ha="right" if n > 3 else "center", fontsize=TICK_PT)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(0, max(1.05, max((per_class[c].get("fbeta") or 0) for c in classes) + 0.05)
                if classes else 1.05)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.tick_params(axis="y", labelsize=TICK_PT)
    ax.set_ylabel("value", fontsize=LABEL_PT)
    ax.grid(axis="y", alpha=0.3)
    _top_legend(fig, ax, ncols=4, extra=[("k.", f"F{beta:g} of one seed")]
                if any(len(v) > 1 for v in seed_fbeta.values()) else [])
    if title:
        fig.suptitle(title, fontsize=TITLE_PT, y=1 - 0.08 / fig.get_figheight(), va="top")
    return png_bytes(fig)


def _top_legend(fig: Any, ax: Any, ncols: int = 3, extra: Sequence[tuple[str, str]] = ()
                ) -> None:
    """The legend in the band above the axes (never over the data)."""
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    for fmt, label in extra:
        handles.append(Line2D([], [], color="k", marker=fmt[-1], ls="none", ms=6))
        labels.append(label)
    if handles:
        ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0, 1.01, 1, 0.2),
                  ncols=min(ncols, len(handles)), fontsize=LEGEND_PT, frameon=False,
                  borderaxespad=0, handlelength=1.6, columnspacing=1.2)


def _forest_axes(labels: Sequence[str], n_legend_rows: int = 1):
    n = max(len(labels), 1)
    left = _label_inches(labels, TICK_PT) + 0.15
    width = min(MAX_WIDTH + 1.5, max(6.4, 4.8 + left))
    top = 0.2 + 0.25 * n_legend_rows
    fig = _figure(width, 1.0 + top + 0.5 * n, left=left, bottom=0.65, right=0.3, top=top)
    return fig, fig.add_subplot(), n


def score_forest(labels: Sequence[str], scores: Sequence[float],
                 intervals: Sequence[tuple[float, float] | None], flagged: Sequence[bool],
                 xlabel: str = "score",
                 seed_points: Sequence[Sequence[float]] | None = None) -> bytes:
    """Horizontal score plot: one row per entry, point = seed mean, bar = 95% interval.

    ``seed_points``: each entry's per-seed scores, drawn as small open circles just below its
    row (the interval does not always contain the seed-to-seed spread). The height grows with
    the rows, so one entry is drawn as legibly as thirty.
    """
    fig, ax, n = _forest_axes(labels)
    y = np.arange(len(labels))[::-1]
    seed_points = seed_points if seed_points is not None else [()] * len(labels)
    hi = 1.0
    for yi, s, iv, fl, pts in zip(y, scores, intervals, flagged, seed_points, strict=True):
        color = "#999999" if fl else _PALETTE[0]
        if iv is not None:
            ax.plot(iv, [yi, yi], color=color, lw=2.4, solid_capstyle="butt")
            hi = max(hi, float(iv[1]))
        ax.plot([s], [yi], "o", color=color, ms=7)
        if len(pts):
            ax.plot(list(pts), [yi - 0.25] * len(pts), "o", ms=5, mfc="none", mec=color,
                    mew=1.2, alpha=0.9)
            hi = max(hi, max(float(p) for p in pts))
    ax.plot([], [], "o", ms=7, color=_PALETTE[0], label="seed mean with its 95% interval")
    if any(len(p) for p in seed_points):
        ax.plot([], [], "o", ms=5, mfc="none", mec=_PALETTE[0], mew=1.2, label="one seed")
    if any(flagged):
        ax.plot([], [], "o", ms=7, color="#999999", label="flagged (not ranked)")
    _top_legend(fig, ax, ncols=3)
    ax.set_yticks(y, labels, fontsize=TICK_PT)
    ax.set_ylim(-0.6, n - 0.4)
    ax.tick_params(axis="x", labelsize=TICK_PT)
    ax.set_xlabel(xlabel, fontsize=LABEL_PT)
    ax.set_xlim(0, hi * 1.02)
    ax.grid(axis="x", alpha=0.3)
    return png_bytes(fig)


def runtime_scatter(labels: Sequence[str], total_s: Sequence[float | None],
                    memory_mb: Sequence[float | None], scores: Sequence[float]) -> bytes:
    """Total run time against score, marker size from peak memory."""
    fig = _figure(MAX_WIDTH, 3.8, left=0.75, bottom=0.65, right=2.4)
    ax = fig.add_subplot()
    for i, (lab, t, m, s) in enumerate(zip(labels, total_s, memory_mb, scores, strict=True)):
        if t is None:
            continue
        size = 30 + (m or 0) / 30
        ax.scatter([t / 60], [s], s=size, color=_PALETTE[i % len(_PALETTE)], alpha=0.8,
                   label=lab)
    ax.set_xlabel("total time per run (min)", fontsize=LABEL_PT)
    ax.set_ylabel("score", fontsize=LABEL_PT)
    ax.tick_params(labelsize=TICK_PT)
    ax.grid(alpha=0.3)
    if labels:
        ax.legend(fontsize=LEGEND_PT, frameon=False, loc="upper left",
                  bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return png_bytes(fig)


def pr_panels(curves: dict[str, dict[int, Any]], title: str = "") -> bytes:
    """Precision-recall over pick scores: one panel per class, one line per seed.

    ``curves``: ``{class: {seed: curve}}``, each curve with ``recall``, ``precision`` (in
    descending order of the score level, so the last point keeps every pick: the method's own
    operating point, drawn as a dot) and ``n_references``.
    """
    classes = list(curves)
    n = max(len(classes), 1)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    pw, ph = 2.25, 2.0
    top = 0.95 if title else 0.7
    width = max(3.8, cols * pw + 0.75)
    fig = _figure(width, rows * ph + top + 0.15, left=0.7, bottom=0.6, top=top, right=0.15)
    fig.subplots_adjust(wspace=0.12 * 3 / cols + 0.05, hspace=0.42)
    seeds = sorted({s for per in curves.values() for s in per})
    color = {s: _PALETTE[i % len(_PALETTE)] for i, s in enumerate(seeds)}
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    for k in range(rows * cols):
        ax = axes[k // cols][k % cols]
        if k >= len(classes):
            ax.set_visible(False)
            continue
        c = classes[k]
        n_ref = 0
        for s, cv in curves[c].items():
            n_ref = max(n_ref, int(cv.n_references))
            if len(cv.recall) == 0:
                continue
            ax.plot(cv.recall, cv.precision, color=color[s], lw=1.5, drawstyle="steps-post")
            ax.plot([cv.recall[-1]], [cv.precision[-1]], "o", color=color[s], ms=5)
        ax.set_title(f"{_short(c)} ({n_ref} ref.)", fontsize=LABEL_PT)
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.05)
        ax.set_xticks([0, 0.5, 1])
        ax.set_yticks([0, 0.5, 1])
        ax.tick_params(labelsize=TICK_PT)
        ax.grid(alpha=0.3)
        if k % cols == 0:
            ax.set_ylabel("precision", fontsize=LABEL_PT)
        if k // cols == rows - 1 or k + cols >= len(classes):
            ax.set_xlabel("recall", fontsize=LABEL_PT)
            ax.xaxis.set_tick_params(labelbottom=True)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=color[s], lw=1.5, label=f"seed {s}") for s in seeds]
    handles.append(Line2D([], [], color="k", marker="o", ls="none", ms=5,
                          label="all picks kept"))
    fig.legend(handles=handles, loc="upper center", ncols=min(len(handles), 2 * cols),
               fontsize=LEGEND_PT, frameon=False,
               bbox_to_anchor=(0.5, 1 - (0.3 if title else 0.02) / fig.get_figheight()))
    if title:
        fig.suptitle(title, fontsize=TITLE_PT, y=1 - 0.05 / fig.get_figheight(), va="top")
    return png_bytes(fig)


def distance_curves(multipliers: np.ndarray, per_class: dict[str, np.ndarray],
                    score: np.ndarray, official: float, beta: float, unit: str = "radius",
                    seed_scores: Sequence[np.ndarray] = (), title: str = "") -> bytes:
    """F-beta per class (thin lines) and the weighted score (thick) against the distance
    multiplier; the official multiplier dashed; each seed's score as faint lines."""
    fig = _figure(MAX_WIDTH, 3.8, left=0.75, bottom=0.65, right=2.35,
                  top=0.45 if title else 0.15)
    ax = fig.add_subplot()
    for i, (c, v) in enumerate(per_class.items()):
        ax.plot(multipliers, v, color=_PALETTE[i % len(_PALETTE)], lw=1.4, marker=".",
                ms=5, label=f"F{beta:g} {_short(c)}")
    for v in seed_scores:
        ax.plot(multipliers, v, color="k", lw=0.8, alpha=0.35)
    if len(per_class) != 1:
        ax.plot(multipliers, score, color="k", lw=2.6, label="weighted score")
    if len(seed_scores) > 1:
        ax.plot([], [], color="k", lw=0.8, alpha=0.35, label="score of one seed")
    ax.axvline(official, color="#777777", ls="--", lw=1.2, label=f"scored at {official:g}")
    ax.set_xlim(float(multipliers[0]) - 0.02, float(multipliers[-1]) + 0.02)
    ax.set_ylim(0, max(1.05, float(np.nanmax([np.nanmax(v) for v in per_class.values()]
                                              + [np.nanmax(score)])) + 0.05))
    ax.set_xlabel(f"match distance (× {unit})", fontsize=LABEL_PT)
    ax.set_ylabel("score", fontsize=LABEL_PT)
    ax.tick_params(labelsize=TICK_PT)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=LEGEND_PT, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0),
              borderaxespad=0)
    if title:
        ax.set_title(title, fontsize=TITLE_PT)
    return png_bytes(fig)


def threshold_sweep(thresholds: np.ndarray, scores: np.ndarray, chosen: float | None = None,
                    ylabel: str = "score", title: str = "") -> bytes:
    """Score as a function of a global score threshold applied to the predictions."""
    fig = _figure(5.4, 3.6, left=0.75, bottom=0.65, top=0.45 if title else 0.15, right=0.25)
    ax = fig.add_subplot()
    ax.plot(thresholds, scores, color=_PALETTE[0], lw=1.8, marker=".", ms=5)
    if chosen is not None:
        ax.axvline(chosen, color="#999999", ls="--", lw=1)
    ax.set_xlabel("minimum prediction score kept", fontsize=LABEL_PT)
    ax.set_ylabel(ylabel, fontsize=LABEL_PT)
    ax.tick_params(labelsize=TICK_PT)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=TITLE_PT)
    return png_bytes(fig)


def ablation_forest(labels: Sequence[str], diffs: Sequence[float | None],
                    intervals: Sequence[tuple[float, float] | None]) -> bytes:
    """Paired differences to the base config, with their 95% intervals and a zero line."""
    fig, ax, n = _forest_axes(labels)
    y = np.arange(len(labels))[::-1]
    for yi, d, iv in zip(y, diffs, intervals, strict=True):
        if d is None:
            continue
        color = _PALETTE[2] if iv and iv[0] > 0 else _PALETTE[5] if iv and iv[1] < 0 else "#555555"
        if iv is not None:
            ax.plot(iv, [yi, yi], color=color, lw=2.4)
        ax.plot([d], [yi], "o", color=color, ms=7)
    for color, label in ((_PALETTE[2], "better than base"), (_PALETTE[5], "worse than base"),
                         ("#555555", "interval covers 0")):
        ax.plot([], [], "o", color=color, ms=7, label=label)
    _top_legend(fig, ax, ncols=3)
    ax.axvline(0, color="#999999", lw=1)
    ax.set_yticks(y, labels, fontsize=TICK_PT)
    ax.set_ylim(-0.6, n - 0.4)
    ax.tick_params(axis="x", labelsize=TICK_PT)
    ax.set_xlabel("difference to base (score)", fontsize=LABEL_PT)
    ax.grid(axis="x", alpha=0.3)
    return png_bytes(fig)


def _short(name: str) -> str:
    return {"beta-galactosidase": "β-galactosidase", "beta-amylase": "β-amylase",
            "virus-like-particle": "VLP"}.get(name, name)
