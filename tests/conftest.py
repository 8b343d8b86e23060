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


# Optional packages (pycocotools, torchvision, ultralytics, ray...) let tests skip when they
# are absent, so a bare `pytest` works with the core install. tox installs every extra and
# sets CRYOBENCH_REQUIRE_EXTRAS=1: there such a skip is a failure, so an oracle or a method
# cannot silently drop out of CI.
_REQUIRE_EXTRAS = os.environ.get("CRYOBENCH_REQUIRE_EXTRAS") == "1"
_MISSING = ("could not import", "is not installed")


def _fail_missing_package(report) -> None:
    if not (_REQUIRE_EXTRAS and report.skipped):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if any(m in str(reason) for m in _MISSING):
        report.outcome = "failed"
        report.longrepr = f"{reason} (CRYOBENCH_REQUIRE_EXTRAS=1: every extra should be here)"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_missing_package(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_missing_package(outcome.get_result())
