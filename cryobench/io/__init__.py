"""Thin file adapters: CZII/BYU CSV, atomic writes, validation."""

from cryobench.io.atomic import atomic_path, atomic_write_text
from cryobench.io.picks import PICKS_COLUMNS, read_picks_csv, validate_picks, write_picks_csv

__all__ = [
    "atomic_path",
    "atomic_write_text",
    "PICKS_COLUMNS",
    "read_picks_csv",
    "validate_picks",
    "write_picks_csv",
]
