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
           "pr_curves", "threshold_sweep", "ablation_forest"]

_DPI = 100
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
    fig = _figure(max(5.0, 1.1 * len(classes) + 2), 3.4, bottom=0.8,
                  top=0.35 if title else 0.15)
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
            ax.plot(np.full(len(pts), x[k] + width), pts, "k.", ms=4, zorder=3)
    ax.set_xticks(x, [_short(c) for c in classes], rotation=20, ha="right")
    ax.set_ylim(0, max(1.2, max((per_class[c].get("fbeta") or 0) for c in classes) + 0.2))
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("value")
    ax.legend(loc="upper right", fontsize=8, ncols=3, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    return png_bytes(fig)


def score_forest(labels: Sequence[str], scores: Sequence[float],
                 intervals: Sequence[tuple[float, float] | None], flagged: Sequence[bool],
                 xlabel: str = "score",
                 seed_points: Sequence[Sequence[float]] | None = None) -> bytes:
    """Horizontal score plot: one row per entry, point = seed mean, bar = 95% interval.

    ``seed_points``: each entry's per-seed scores, drawn as small open circles on its row
    (the interval resamples test experiments, so it does not show the seed-to-seed spread).
    """
    n = len(labels)
    fig = _figure(6.0 + _label_inches(labels), 0.9 + 0.32 * max(n, 1),
                  left=_label_inches(labels) + 0.1, bottom=0.6, right=0.25)
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    seed_points = seed_points if seed_points is not None else [()] * n
    for yi, s, iv, fl, pts in zip(y, scores, intervals, flagged, seed_points, strict=True):
        color = "#999999" if fl else _PALETTE[0]
        if iv is not None:
            ax.plot(iv, [yi, yi], color=color, lw=2.2, solid_capstyle="butt")
        ax.plot([s], [yi], "o", color=color, ms=5)
        if len(pts):
            ax.plot(list(pts), [yi - 0.22] * len(pts), "o", ms=4, mfc="none", mec=color,
                    mew=1.0, alpha=0.9)
    if any(len(p) for p in seed_points):
        ax.plot([], [], "o", ms=4, mfc="none", mec=_PALETTE[0], label="one seed")
        ax.plot([], [], "o", ms=5, color=_PALETTE[0], label="seed mean, 95% interval")
        ax.legend(fontsize=7, frameon=False, loc="best")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_xlim(left=0)
    ax.grid(axis="x", alpha=0.3)
    return png_bytes(fig)


def runtime_scatter(labels: Sequence[str], total_s: Sequence[float | None],
                    memory_mb: Sequence[float | None], scores: Sequence[float]) -> bytes:
    """Total run time against score, marker size from peak memory."""
    fig = _figure(5.5, 3.4, left=0.7)
    ax = fig.add_subplot()
    for i, (lab, t, m, s) in enumerate(zip(labels, total_s, memory_mb, scores, strict=True)):
        if t is None:
            continue
        size = 20 + (m or 0) / 40
        ax.scatter([t / 60], [s], s=size, color=_PALETTE[i % len(_PALETTE)], alpha=0.8,
                   label=lab)
    ax.set_xlabel("total time per run (min)")
    ax.set_ylabel("score")
    ax.grid(alpha=0.3)
    if labels:
        ax.legend(fontsize=7, frameon=False, loc="best")
    return png_bytes(fig)


def pr_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str = "") -> bytes:
    """Precision-recall curves, one per class: ``{class: (recall, precision)}``."""
    fig = _figure(5.0, 3.6, left=0.7, top=0.35 if title else 0.15)
    ax = fig.add_subplot()
    for i, (cls, (rec, prec)) in enumerate(curves.items()):
        ax.plot(rec, prec, color=_PALETTE[i % len(_PALETTE)], lw=1.5, label=_short(cls))
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False, loc="lower left")
    if title:
        ax.set_title(title, fontsize=10)
    return png_bytes(fig)


def threshold_sweep(thresholds: np.ndarray, scores: np.ndarray, chosen: float | None = None,
                    ylabel: str = "score", title: str = "") -> bytes:
    """Score as a function of a global score threshold applied to the predictions."""
    fig = _figure(5.0, 3.2, left=0.7, top=0.35 if title else 0.15)
    ax = fig.add_subplot()
    ax.plot(thresholds, scores, color=_PALETTE[0], lw=1.6)
    if chosen is not None:
        ax.axvline(chosen, color="#999999", ls="--", lw=1)
    ax.set_xlabel("minimum prediction score kept")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    return png_bytes(fig)


def ablation_forest(labels: Sequence[str], diffs: Sequence[float | None],
                    intervals: Sequence[tuple[float, float] | None]) -> bytes:
    """Paired differences to the base config, with their 95% intervals and a zero line."""
    n = len(labels)
    fig = _figure(6.0 + _label_inches(labels), 0.9 + 0.34 * max(n, 1),
                  left=_label_inches(labels) + 0.1, bottom=0.6, right=0.25)
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    for yi, d, iv in zip(y, diffs, intervals, strict=True):
        if d is None:
            continue
        color = _PALETTE[2] if iv and iv[0] > 0 else _PALETTE[5] if iv and iv[1] < 0 else "#555555"
        if iv is not None:
            ax.plot(iv, [yi, yi], color=color, lw=2.2)
        ax.plot([d], [yi], "o", color=color, ms=5)
    ax.axvline(0, color="#999999", lw=1)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("difference to base (score)")
    ax.grid(axis="x", alpha=0.3)
    return png_bytes(fig)


def _short(name: str) -> str:
    return {"beta-galactosidase": "β-galactosidase", "beta-amylase": "β-amylase",
            "virus-like-particle": "VLP"}.get(name, name)
