"""Shared pytest fixtures."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

# The CPU kernels the command line uses (AVX2 everywhere, see cryobench/_cpu_isa.py), set before
# any test imports numpy or torch, so in-process runs give the bytes a subprocess CLI gives.
from cryobench._cpu_isa import portable_cpu_kernels  # noqa: E402

portable_cpu_kernels()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's cache: every test session gets its own CRYOBENCH_CACHE."""
    if "CRYOBENCH_CACHE" not in os.environ:
        monkeypatch.setenv("CRYOBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


# Optional packages (pycocotools, torchvision, ultralytics, ray, selenium...) and tools
# (headless Chromium) let tests skip when they are absent, so a bare `pytest` works with the core
# install. tox installs every extra and sets CRYOBENCH_REQUIRE_EXTRAS=1: there *every* skip is a
# failure, whatever its message says, so an oracle, a method or the browser check cannot
# silently drop out of CI. A test whose skip is legitimate everywhere (a platform without
# os.fork, an old Python) says so with @pytest.mark.allow_skip("why").
_REQUIRE_EXTRAS = os.environ.get("CRYOBENCH_REQUIRE_EXTRAS") == "1"


def _fail_skips(node, report) -> None:
    if not (_REQUIRE_EXTRAS and report.skipped) or hasattr(report, "wasxfail"):
        return
    if node is not None and node.get_closest_marker("allow_skip") is not None:
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"skipped ({reason}), but CRYOBENCH_REQUIRE_EXTRAS=1: every extra and "
                       "tool should be here (mark the test allow_skip if the skip is legitimate "
                       "on every machine)")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_skips(collector, outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_skips(item, outcome.get_result())
