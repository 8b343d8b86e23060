"""Shared pytest fixtures."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's cache: every test session gets its own CRYOBENCH_CACHE."""
    if "CRYOBENCH_CACHE" not in os.environ:
        monkeypatch.setenv("CRYOBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
