"""Option types shared by the commands, with the bounds stated once."""

from __future__ import annotations

import click

__all__ = ["SEED", "BOOTSTRAP", "MAX_BOOTSTRAP", "FLIPS", "MAX_FLIPS"]

SEED = click.IntRange(0, 2**32 - 1)
"""A seed NumPy, torch and Python all accept."""

MAX_BOOTSTRAP = 100_000
"""The most bootstrap resamples a command draws (memory grows with resamples x experiments)."""

BOOTSTRAP = click.IntRange(0, MAX_BOOTSTRAP)

MAX_FLIPS = 1_000_000
"""The most random sign flips of one paired comparison (below 18 tomograms they are all
enumerated instead)."""

FLIPS = click.IntRange(0, MAX_FLIPS)
