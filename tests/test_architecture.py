"""The import-direction rules of docs/architecture.md, checked on the source (every import,
function-level ones included).

Layers, bottom to top: the foundations (errors, vocab, particles, coords, io), then metrics and
data (side by side, neither importing the other), methods (and the built-in baselines), the
runner, the reports, and at the top the CLI and the test helpers. Code may import its own layer
and the layers below it, never above.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LAYER = {
    "errors": 0, "vocab": 0, "particles": 0, "coords": 0, "_threads": 0, "_openmp": 0,
    "_cpu_isa": 0, "io": 0,
    "symmetry": 0, "__init__": 0, "__main__": 6,
    "metrics": 1, "data": 1,
    "methods": 2, "baselines": 2, "template_matching": 2,
    "runner": 3,
    "report": 4,
    "cli": 5, "testing": 5,
}
SIDE_BY_SIDE = {frozenset({"metrics", "data"})}


def _package_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "baselines":
        return "baselines"
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1] if len(parts) > 1 else parts
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = _module_name(path)
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((node.lineno, target))
    return [(line, t) for line, t in out if t.split(".")[0] in ("cryobench", "baselines")]


def _sources() -> list[Path]:
    files = sorted((ROOT / "cryobench").rglob("*.py")) + sorted((ROOT / "baselines").rglob("*.py"))
    return [f for f in files if "__pycache__" not in f.parts]


def _violations() -> list[str]:
    bad = []
    for path in _sources():
        mine = _package_of(_module_name(path))
        for line, target in _imports(path):
            theirs = _package_of(target) if target.count(".") or target == "baselines" else (
                "__init__")
            if theirs not in LAYER or mine not in LAYER or theirs == mine:
                continue
            if frozenset({mine, theirs}) in SIDE_BY_SIDE or LAYER[theirs] > LAYER[mine]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {mine} imports {target}")
    return bad


def test_every_package_has_a_layer():
    packages = {p.name for p in (ROOT / "cryobench").iterdir()
                if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in (ROOT / "cryobench").glob("*.py")}
    assert (packages | modules) - set(LAYER) == set()


def test_no_import_runs_up_the_layers():
    assert _violations() == []


@pytest.mark.parametrize("source, target", [
    ("methods/base.py", "cryobench.runner.overrides"),
    ("runner/ablate.py", "cryobench.report.ablation"),
    ("metrics/czii.py", "cryobench.methods.base"),
    ("data/splits.py", "cryobench.metrics.czii"),
])
def test_the_checker_catches_an_upward_import(source, target, tmp_path, monkeypatch):
    """The rule is not vacuous: an upward import planted in a copy of the tree is found."""
    import shutil

    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "cryobench", copy / "cryobench",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "baselines", copy / "baselines",
                    ignore=shutil.ignore_patterns("__pycache__"))
    f = copy / "cryobench" / source
    f.write_text(f.read_text() + f"\n\ndef _planted():\n    import {target}  # noqa\n")
    monkeypatch.setitem(globals(), "ROOT", copy)
    found = _violations()
    assert len(found) == 1 and target in found[0]
