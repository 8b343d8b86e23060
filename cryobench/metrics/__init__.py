"""Exact, vectorised scoring of particle picks: pure functions returning small report objects.

* :func:`czii_score` / :func:`czii_score_from_counts`: the Kaggle CZII weighted F-beta.
* :func:`byu_score`: the Kaggle BYU flagellar-motor F-beta.
* :func:`map_boxes` / :func:`map_picks`: COCO-style mAP (2D boxes; 3D picks with sphere IoU).
* :func:`bootstrap_ci` / :func:`paired_bootstrap`: confidence intervals over experiments.
* :func:`gaming_diagnostics`: duplicates, unmatched candidates and the deduplicated score.

Nothing here prints; every parameter that changes a number is recorded in the report.
See docs/metrics.md for the exact rules.
"""

from cryobench.metrics.bootstrap import bootstrap_ci, paired_bootstrap
from cryobench.metrics.byu import byu_score
from cryobench.metrics.czii import czii_score, czii_score_from_counts
from cryobench.metrics.diagnostics import czii_score_with_diagnostics, gaming_diagnostics
from cryobench.metrics.map import map_boxes, map_picks, sphere_iou
from cryobench.metrics.results import (
    BootstrapResult,
    ByuReport,
    ClassDiagnostics,
    ClassStats,
    CziiReport,
    Diagnostics,
    MapReport,
    PairedBootstrapResult,
)

__all__ = [
    "czii_score",
    "czii_score_from_counts",
    "czii_score_with_diagnostics",
    "byu_score",
    "map_boxes",
    "map_picks",
    "sphere_iou",
    "bootstrap_ci",
    "paired_bootstrap",
    "gaming_diagnostics",
    "ClassStats",
    "CziiReport",
    "ByuReport",
    "MapReport",
    "BootstrapResult",
    "PairedBootstrapResult",
    "Diagnostics",
    "ClassDiagnostics",
]
