"""A third-party method package (the one in docs/plugins.md) works with no edit to cryobench.

The package's files are extracted from docs/plugins.md, placed on a temporary path with a
``*.dist-info`` carrying its entry point (what ``pip install`` would write), and driven through
the real command line in subprocesses: ``methods list``, ``methods validate``, ``run`` on the
``tiny`` split, and the package's own pytest conformance test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cryobench.data import load_split
from cryobench.io import read_picks_csv
from cryobench.runner import record

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "plugins.md"
BLOCK = re.compile(r"```(?:toml|python)\n# (?P<path>[\w./-]+)\n(?P<body>.*?)```", re.S)


def doc_files() -> dict[str, str]:
    """``relative path -> text`` of every code block in docs/plugins.md that names a file."""
    return {m["path"]: m["body"] for m in BLOCK.finditer(DOC.read_text(encoding="utf-8"))}


def entry_points_of(pyproject: str) -> tuple[str, str, dict[str, str]]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    data = tomllib.loads(pyproject)
    project = data["project"]
    return project["name"], project["version"], project["entry-points"]["cryobench.methods"]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The docs' package 'installed' into a fresh directory (sources + dist-info)."""
    files = doc_files()
    assert {"pyproject.toml", "cryobench_blobs/picker.py", "tests/test_conformance.py"} <= \
        set(files), f"docs/plugins.md lost an example file: {sorted(files)}"
    site = tmp_path_factory.mktemp("site")
    for rel, text in files.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (site / "cryobench_blobs" / "__init__.py").write_text("")
    name, version, eps = entry_points_of(files["pyproject.toml"])
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(
        "[cryobench.methods]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
    return site


def run_cli(site: Path, *args: str, cwd: Path | None = None,
            timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          cwd=cwd or site, timeout=timeout)


def test_plugin_appears_in_methods_list_without_importing_torch(plugin_site):
    code = ("import sys\nfrom cryobench.cli import main\n"
            "try:\n    main(['methods', 'list'])\nexcept SystemExit as e:\n"
            "    assert not e.code\n"
            "assert 'torch' not in sys.modules and 'cryobench_blobs' not in sys.modules\n")
    out = run_cli(plugin_site, "-c", code)
    assert out.returncode == 0, out.stderr
    row = next(ln for ln in out.stdout.splitlines() if ln.startswith("blobs "))
    assert row.split()[1:3] == ["particles", "-"]
    assert "Difference-of-Gaussians peaks" in row


def test_plugin_runs_through_cryobench_run(plugin_site, tmp_path):
    out = run_cli(plugin_site, "-m", "cryobench", "run", "--method", "blobs", "--split", "tiny",
                  "--budget", "smoke", "--out", str(tmp_path), "--no-progress", "--json",
                  "--set", "sigma=1.0")
    assert out.returncode == 0, out.stderr
    rec = json.loads(out.stdout)
    path = next(tmp_path.rglob("record.json"))
    assert record.load(path).to_dict() == rec
    assert rec["method"] == "blobs" and rec["split"] == "tiny" and rec["budget"] == "smoke"
    assert rec["config"] == {"sigma": 1.0, "min_distance": 3, "max_picks": 50}
    assert rec["metric"] == "czii" and 0 <= rec["score"] <= 1
    assert rec["n_predictions"] > 0
    csv = read_picks_csv(path.parent / rec["predictions"])
    assert len(csv) == rec["n_predictions"]
    # the same picks were written into the split's copick project, readable via the data layer
    copick = load_split("tiny").project().read_picks(
        None, user=rec["copick"]["user"], session=rec["copick"]["session"], with_score=True)
    assert len(copick) == len(csv)
    key = ["experiment", "particle_type", "x", "y", "z"]
    np.testing.assert_allclose(copick.sort_values(key)[["x", "y", "z"]].to_numpy(),
                               csv.sort_values(key)[["x", "y", "z"]].to_numpy(), atol=1e-3)


def test_plugin_passes_the_conformance_suite(plugin_site):
    out = run_cli(plugin_site, "-m", "cryobench", "methods", "validate", "blobs")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "blobs: all checks passed" in out.stdout
    assert out.stdout.count("PASS") == 5


def test_plugin_own_pytest_conformance_test(plugin_site):
    """The example's tests/test_conformance.py (parametrize_with_checks) passes under pytest."""
    out = run_cli(plugin_site, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                  "tests/test_conformance.py")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "5 passed" in out.stdout


def test_the_example_package_builds_beside_a_runs_folder(plugin_site, tmp_path):
    """The example's pyproject names its package, so a `runs/` folder beside it (the default
    results directory) does not break the build (setuptools' flat-layout discovery would)."""
    import shutil

    pkg = tmp_path / "cryobench-blobs"
    shutil.copytree(plugin_site / "cryobench_blobs", pkg / "cryobench_blobs")
    shutil.copy(plugin_site / "pyproject.toml", pkg / "pyproject.toml")
    (pkg / "runs" / "tiny").mkdir(parents=True)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                          "--no-build-isolation", "-w", str(tmp_path / "dist"), str(pkg)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert list((tmp_path / "dist").glob("cryobench_blobs-0.1.0-*.whl"))
