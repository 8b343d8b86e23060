"""Under CRYOBENCH_REQUIRE_EXTRAS=1 (tox) every skip fails, whatever its message, unless the
test is marked allow_skip; without it, skips stay skips."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SKIPS = '''
import pytest

def test_extra_message():
    pytest.skip("extra 'yolo' not installed (missing ultralytics)")

def test_browser_message():
    pytest.skip("headless Chromium not installed")

def test_importorskip():
    pytest.importorskip("a_module_that_does_not_exist_anywhere")

@pytest.mark.allow_skip("platforms without a feature")
def test_allowed():
    pytest.skip("not on this platform")

def test_passes():
    pass
'''


def _run(tmp_path: Path, require: bool) -> str:
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_skips.py").write_text(SKIPS)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    allow_skip(reason): legitimate skip\n")
    env = {k: v for k, v in os.environ.items() if k != "CRYOBENCH_REQUIRE_EXTRAS"}
    if require:
        env["CRYOBENCH_REQUIRE_EXTRAS"] = "1"
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
                          str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    return out.stdout


@pytest.mark.parametrize("require", [True, False])
def test_skip_guard(tmp_path, require):
    out = _run(tmp_path, require)
    if require:
        assert "3 failed, 1 passed, 1 skipped" in out, out
        for name in ("test_extra_message", "test_browser_message", "test_importorskip"):
            assert f"FAILED test_skips.py::{name}" in out, out
    else:
        assert "1 passed, 4 skipped" in out, out
