"""Option types shared by the commands, with the bounds stated once."""

from __future__ import annotations

import click

__all__ = ["SEED", "BOOTSTRAP", "MAX_BOOTSTRAP"]

SEED = click.IntRange(0, 2**32 - 1)
"""A seed NumPy, torch and Python all accept."""

MAX_BOOTSTRAP = 100_000
"""The most bootstrap resamples a command draws (memory grows with resamples x experiments)."""

BOOTSTRAP = click.IntRange(0, MAX_BOOTSTRAP)
