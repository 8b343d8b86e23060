"""Reading run records for reports and leaderboards (through the results store).

Valid records come back as :class:`~cryobench.runner.record.RunRecord` objects (older schemas
upgraded); every corrupt or foreign file, and every directory that cannot be read, comes back as
``(path, reason)`` so the caller lists it: nothing is dropped or averaged over silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from cryobench.errors import ResultsError
from cryobench.runner import store
from cryobench.runner.record import RunRecord

__all__ = ["load_records"]


def load_records(paths: Iterable[str | os.PathLike[str]]
                 ) -> tuple[list[RunRecord], list[tuple[Path, str]]]:
    """All valid records under ``paths`` (result directories or record files) and the bad files.

    Raises:
        ResultsError: a path does not exist, or no valid record was found at all.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ResultsError("no results directory given")
    records: list[RunRecord] = []
    bad: list[tuple[Path, str]] = []
    for p in paths:
        if not p.exists():
            raise ResultsError("results path not found", p)
        errors: list[tuple[Path, str]] = []
        records += [rec for _, rec in store.iter_records(p, errors)]
        bad += errors
    if not records:
        where = paths[0] if len(paths) == 1 else ", ".join(map(str, paths))
        why = f" ({len(bad)} unreadable: {bad[0][0]}: {bad[0][1]})" if bad else ""
        raise ResultsError(f"no valid run records found{why}", where)
    return records, bad
