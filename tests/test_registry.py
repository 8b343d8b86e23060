"""The method registry: entry points, lazy metadata, broken plugins, close matches, extras."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from cryobench.cli import cli
from cryobench.errors import MethodError
from cryobench.methods import PickingMethod, registry

ROOT = Path(__file__).resolve().parents[1]


def install_fake_dist(site: Path, dist: str, entry_points: dict[str, str],
                      files: dict[str, str]) -> None:
    """A minimal installed distribution: ``*.dist-info`` with entry points, plus source files."""
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = ["[cryobench.methods]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for rel, text in files.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


GOOD = '''
    import os
    from dataclasses import dataclass

    from cryobench.methods import PickingMethod

    os.environ["FAKEPLUG_IMPORTED"] = "1"   # proves whether listing executed this module


    class Base(PickingMethod):
        tasks = ("particles", "motor")
        extra = None


    class Good(Base):
        """A good method.

        More text.
        """

        name = "good"
        description = "finds everything"

        @dataclass
        class Config:
            k: int = 1

        budgets = {"smoke": {"k": 0}}

        def fit(self, train_runs, val_runs, ctx): pass
        def predict(self, run, ctx): pass
        def save_state(self, d): pass
        def load_state(self, d): pass


    class Dynamic(Good):
        name = "dyn"
        description = "computed " + "at import"
'''

HEAVY = '''
    import not_a_real_module_xyz
    from cryobench.methods import PickingMethod

    class Heavy(PickingMethod):
        name = "heavy"
        description = "needs a module that is not installed"
'''

FANCY = '''
    from dataclasses import dataclass
    from fakeplug.good import Good

    class Fancy(Good):
        name = "fancy"
        description = "needs an extra"
        extra = "fancy"
'''


@pytest.fixture()
def plugins(tmp_path, monkeypatch):
    site = tmp_path / "site"
    install_fake_dist(
        site, "fakeplug",
        {"good": "fakeplug.good:Good", "dyn": "fakeplug.good:Dynamic",
         "heavy": "fakeplug.heavy:Heavy", "syntax": "fakeplug.syntax:Bad",
         "missing": "fakeplug.nope:Nothing", "noclass": "fakeplug.good:Absent",
         "notmethod": "fakeplug.good:os", "fancy": "fakeplug.fancy:Fancy"},
        {"fakeplug/__init__.py": "import os\nos.environ['FAKEPLUG_IMPORTED'] = '1'\n",
         "fakeplug/good.py": GOOD, "fakeplug/heavy.py": HEAVY,
         "fakeplug/syntax.py": "class Bad(:\n", "fakeplug/fancy.py": FANCY},
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("FAKEPLUG_IMPORTED", raising=False)
    importlib.invalidate_caches()
    yield site
    for mod in [m for m in sys.modules if m == "fakeplug" or m.startswith("fakeplug.")]:
        del sys.modules[mod]


def by_name(infos):
    return {i.name: i for i in infos}


def test_listing_reads_metadata_without_importing(plugins, monkeypatch):
    import os

    infos = by_name(registry.list_methods("good"))
    assert "FAKEPLUG_IMPORTED" not in os.environ and "fakeplug" not in sys.modules
    good = infos["good"]
    assert not good.broken
    assert good.description == "finds everything"
    assert good.tasks == ("particles", "motor")  # inherited from Base, read from source
    assert good.dist == "fakeplug"
    # the built-in baselines are registered through the same group
    assert {"unet3d", "cnn_regressor"} <= {i.name for i in registry.list_methods()}


def test_non_literal_metadata_falls_back_to_import(plugins):
    import os

    dyn = by_name(registry.list_methods())["dyn"]
    assert dyn.description == "computed at import"
    assert os.environ.get("FAKEPLUG_IMPORTED") == "1"


def test_broken_plugins_are_reported_and_the_rest_work(plugins):
    infos = by_name(registry.list_methods())
    assert "not_a_real_module_xyz" in infos["heavy"].error
    assert "SyntaxError" in infos["syntax"].error
    assert "ModuleNotFoundError" in infos["missing"].error
    assert "no class 'Absent'" in infos["noclass"].error
    with pytest.raises(MethodError, match="failed to import.*not_a_real_module_xyz"):
        registry.get_method("heavy")
    with pytest.raises(MethodError, match="not a PickingMethod"):
        registry.get_method("notmethod")
    cls = registry.get_method("good")
    assert issubclass(cls, PickingMethod) and cls.name == "good"


def test_unknown_name_lists_close_matches(plugins):
    with pytest.raises(MethodError, match="unknown method 'unet_3d'.*did you mean unet3d"):
        registry.get_method("unet_3d")
    with pytest.raises(MethodError, match="registered: "):
        registry.method_info("zzzzzzzz")


def test_missing_extra_names_the_pip_command(plugins, monkeypatch):
    real = importlib.metadata.requires

    def requires(dist):
        reqs = list(real(dist) or [])
        if dist == "cryobench":
            reqs.append('not-installed-pkg-xyz>=1; extra == "fancy"')
        return reqs

    monkeypatch.setattr(importlib.metadata, "requires", requires)
    fancy = by_name(registry.list_methods())["fancy"]
    assert fancy.extra == "fancy" and fancy.extra_missing == ("not-installed-pkg-xyz",)
    with pytest.raises(MethodError, match=r"pip install 'cryobench\[fancy\]'"):
        registry.get_method("fancy")
    assert registry.missing_extra("test") == ()  # pytest & co are installed here


@pytest.mark.parametrize("pattern, expected", [
    ("goo*", ["good"]), ("*ood", ["good"]), ("oo", ["good"]), ("G?OD", ["good"]),
    ("nothing*", []),
])
def test_wildcard_patterns(plugins, pattern, expected):
    assert [i.name for i in registry.list_methods(pattern)] == expected


def test_in_process_registration():
    @dataclass
    class Cfg:
        a: int = 1

    class Local(PickingMethod):
        name = "local-toy"
        description = "registered in-process"
        Config = Cfg

        def fit(self, *a): pass
        def predict(self, *a): pass
        def save_state(self, d): pass
        def load_state(self, d): pass

    registry.register(Local)
    try:
        assert registry.get_method("local-toy") is Local
        assert by_name(registry.list_methods("local*"))["local-toy"].description == \
            "registered in-process"
    finally:
        registry.unregister("local-toy")
    with pytest.raises(MethodError):
        registry.get_method("local-toy")


def test_cli_list_shows_broken_rows_and_info(plugins):
    runner = CliRunner()
    res = runner.invoke(cli, ["methods", "list"])
    assert res.exit_code == 0, res.output
    lines = {ln.split()[0]: ln for ln in res.output.splitlines()[1:]}
    assert "BROKEN" in lines["heavy"] and "not_a_real_module_xyz" in lines["heavy"]
    assert "finds everything" in lines["good"] and "particles,motor" in lines["good"]
    res = runner.invoke(cli, ["methods", "info", "good"])
    assert res.exit_code == 0, res.output
    row = next(ln for ln in res.output.splitlines() if ln.startswith("k "))
    assert row.split() == ["k", "int", "0", "1", "1"]  # smoke, cpu, full defaults
    res = runner.invoke(cli, ["methods", "info", "goood"])
    assert res.exit_code == 2 and "did you mean good" in res.output


def test_methods_list_does_not_import_torch():
    code = ("import sys\nfrom cryobench.cli import main\n"
            "try:\n    main(['methods', 'list'])\nexcept SystemExit as e:\n"
            "    assert not e.code, e.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "print('TORCH-FREE')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "TORCH-FREE" in out.stdout and "unet3d" in out.stdout
