"""Ablation grids, resumption, and the local and Ray executors."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cryobench.cli import cli
from cryobench.errors import ConfigError, InputError
from cryobench.report.ablation import ablation_text, load_ablation
from cryobench.runner import store
from cryobench.runner.ablate import (
    load_spec,
    make_plan,
    parse_seeds,
    parse_vary,
    run_ablation,
    spec_from_options,
)
from cryobench.runner.executors import Cell, LocalExecutor, RayExecutor, make_executor
from cryobench.testing.records import synthetic_cell

SPECS = sorted((Path(__file__).parents[1] / "leaderboards" / "ablations").glob("*.toml"))


def _plan(**kw):
    spec = spec_from_options("unet3d", "tiny", kw.pop("vary", ["augment=true,false"]),
                             seeds=kw.pop("seeds", "0,1"), budget="smoke", **kw)
    return make_plan(spec)


def _records(results: Path) -> dict[str, str]:
    return {str(p.relative_to(results)): p.read_text() for p in results.rglob("record.json")}


# ----- parsing and planning --------------------------------------------------------------------
def test_parse_vary_and_seeds():
    assert parse_vary(["lr=1e-3,2e-3", "channels=(8,16),(16,32)"]) == {
        "lr": ["1e-3", "2e-3"], "channels": ["(8,16)", "(16,32)"]}
    assert parse_seeds("0-2,5") == [0, 1, 2, 5]
    for bad in (["lr"], ["=1"], ["lr="]):
        with pytest.raises(ConfigError, match="--vary expects"):
            parse_vary(bad)
    with pytest.raises(ConfigError):
        parse_seeds("0,0")
    with pytest.raises(ConfigError):
        parse_seeds("a")


def test_plan_types_values_and_marks_the_base():
    plan = _plan(vary=["augment=true,false", "lr=0.001,0.002"])
    assert [p.label for p in plan.points] == [
        "augment=true, lr=0.001", "augment=true, lr=0.002", "augment=false, lr=0.001",
        "augment=false, lr=0.002"]
    assert [p.is_base for p in plan.points] == [True, False, False, False]
    assert plan.points[2].overrides == {"augment": False, "lr": 0.001}
    assert len({p.config_hash for p in plan.points}) == 4
    assert len(plan.cells()) == 8


def test_plan_hash_is_the_runners_hash():
    """The hash a plan predicts is the one the runner will write (so resumption works)."""
    from cryobench.methods.registry import get_method
    from cryobench.runner.record import config_hash, jsonable

    plan = _plan(vary=["lr=0.003,0.004"])
    cls = get_method("unet3d")
    cfg = cls(cls.default_config("smoke", lr=0.003)).config_dict()
    assert plan.points[0].config_hash == config_hash(jsonable(cfg))


def test_unknown_vary_key_is_a_one_line_error(tmp_path):
    r = CliRunner().invoke(cli, ["ablate", "--method", "unet3d", "--split", "tiny",
                                 "--vary", "dropuot=0,0.3", "--results", str(tmp_path)])
    assert r.exit_code == 2
    assert r.output.startswith("error: unknown --vary key 'dropuot' for method 'unet3d'")
    assert r.output.count("\n") == 1 and not list(tmp_path.iterdir())
    r = CliRunner().invoke(cli, ["ablate", "--method", "unet3d", "--split", "tiny",
                                 "--vary", "lr=fast,slow", "--results", str(tmp_path)])
    assert r.exit_code == 2 and "lr" in r.output and r.output.count("\n") == 1


def test_spec_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("method = 'unet3d'\nsplit = 'tiny'\n[vary]\n")
    with pytest.raises(InputError, match="at least one key"):
        load_spec(bad)
    bad.write_text("method = 'unet3d'\n[vary]\naugment = [true]\ncolour = 'red'\n")
    with pytest.raises(InputError, match="colour"):
        load_spec(bad)
    bad.write_text("not toml = = 1")
    with pytest.raises(InputError, match="invalid TOML"):
        load_spec(bad)
    bad.write_text("method='unet3d'\nsplit='tiny'\n[vary]\naugment=[true, false]\n"
                   "[base]\naugment='maybe'\n")
    with pytest.raises(ConfigError):
        make_plan(load_spec(bad))


PENDING_SPLITS = {"byu-synth-v2": "tiny-motor"}
"""Splits a shipped spec is written against that another branch is building, and a split of
the same task that stands in for it here until it exists (then the spec is planned as is)."""


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_shipped_specs_parse(path):
    from cryobench.data.splits import list_splits

    spec = load_spec(path)
    assert spec.seeds == [0, 1, 2] and spec.budget == "cpu" and spec.title
    values = [v for vs in spec.vary.values() for v in vs]
    assert len(values) >= 2
    if spec.split in PENDING_SPLITS and spec.split not in list_splits():
        import dataclasses

        spec = dataclasses.replace(spec, split=PENDING_SPLITS[spec.split])
    # Every varied key exists in the method's config and every value has the right type.
    plan = make_plan(spec)
    cells = int(np.prod([len(vs) for vs in spec.vary.values()]))
    assert len(plan.points) == cells and sum(p.is_base for p in plan.points) == 1
    if "split" in spec.vary:
        from cryobench.runner.ablate import _split_arg, split_name

        names = [split_name(_split_arg(v, spec)) for v in spec.vary["split"]]
        assert len(set(names)) == len(names)


def test_centernet_spec_plans_on_tiny_motor():
    """The CenterNet ablation (CLAHE, noise + blur, focal + GIoU: a 2 x 2 x 2 grid) plans on any
    motor split; the base cell is the full recipe."""
    import dataclasses

    spec = load_spec(SPECS[[p.stem for p in SPECS].index("centernet")])
    assert spec.method == "centernet_slices" and spec.split == "byu-synth-v2"
    plan = make_plan(dataclasses.replace(spec, split="tiny-motor", budget="smoke"))
    assert len(plan.points) == 8 and len({p.config_hash for p in plan.points}) == 8
    base = [p for p in plan.points if p.is_base]
    assert len(base) == 1 and base[0].overrides == {"clahe": True, "noise_blur": True,
                                                    "giou": True}
    assert base[0].label == "CLAHE, noise + blur, focal + GIoU"


def test_split_curve_resolves_definitions_relative_to_the_spec():
    archive = Path(__file__).parents[1] / "leaderboards" / "archive" / "v1" / "ablations"
    plan = make_plan(load_spec(archive / "train_size.toml"))
    assert [p.split_name for p in plan.points] == [
        f"czii-synth-trainsize/fold{k}" for k in range(3)]
    assert [p.label for p in plan.points] == [f"{n} train tomograms" for n in (6, 12, 24)]
    assert all(Path(p.split_arg.rpartition("/fold")[0]).is_file() for p in plan.points)


# ----- running, resuming, failures --------------------------------------------------------------
def test_sweep_runs_resumes_and_reports(tmp_path):
    plan = _plan()
    calls: list[Cell] = []

    def counting(cell):
        calls.append(cell)
        return synthetic_cell(cell)

    first = run_ablation(plan, tmp_path, LocalExecutor(progress=False), fn=counting)
    assert (first.ran, first.skipped, len(calls)) == (4, 0, 4)
    again = run_ablation(plan, tmp_path, LocalExecutor(progress=False), fn=counting)
    assert (again.ran, again.skipped, len(calls)) == (0, 4, 4)
    abl = load_ablation(tmp_path, first.manifest, n_flips=200)
    base, other = abl.cells
    assert base.is_base and base.entry.seeds == [0, 1] and base.diff is None
    assert other.diff == pytest.approx(other.entry.score - base.entry.score)
    assert other.diff_interval[0] <= other.diff <= other.diff_interval[1]
    # per-seed scores, and the seeds with which the cell beat the base (same seed)
    assert set(other.seed_scores) == {0, 1} and base.seed_wins is None
    wins = sum(other.seed_scores[k] > base.seed_scores[k] for k in (0, 1))
    assert other.seed_wins == (wins, 2)
    row = abl.to_dict()["cells"][1]
    assert row["seed_wins"] == [wins, 2] and set(row["seed_scores"]) == {"0", "1"}
    assert f"{wins} of 2" in ablation_text(abl)


def test_interrupted_sweep_keeps_finished_cells(tmp_path):
    plan = _plan()
    calls: list[Cell] = []

    def interrupted(cell):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(cell)
        return synthetic_cell(cell)

    with pytest.raises(KeyboardInterrupt):
        run_ablation(plan, tmp_path, LocalExecutor(progress=False), fn=interrupted)
    assert len(_records(tmp_path)) == 2
    done = set(calls)
    calls.clear()
    resumed = run_ablation(plan, tmp_path, LocalExecutor(progress=False),
                           fn=lambda c: (calls.append(c), synthetic_cell(c))[1])
    assert (resumed.ran, resumed.skipped) == (2, 2) and not done & set(calls)
    assert len(_records(tmp_path)) == 4


def test_a_failing_cell_does_not_stop_the_sweep(tmp_path):
    plan = _plan()

    def flaky(cell):
        if cell.seed == 1 and not cell.overrides_dict["augment"]:
            raise ConfigError("bad cell")
        return synthetic_cell(cell)

    out = run_ablation(plan, tmp_path, LocalExecutor(progress=False), fn=flaky)
    assert out.ran == 3 and len(out.failures) == 1
    assert out.failures[0].user_error and out.failures[0].message == "bad cell"
    abl = load_ablation(tmp_path, out.manifest, n_flips=50)
    assert any("missing seed(s) 1" in n for n in (c.note for c in abl.cells))


def test_every_record_lands_in_the_store_layout(tmp_path):
    plan = _plan(seeds="3")
    run_ablation(plan, tmp_path, LocalExecutor(progress=False), fn=synthetic_cell)
    for p in plan.points:
        rec = store.read_complete(store.run_dir(tmp_path, "tiny", "unet3d", p.config_hash, 3))
        assert rec is not None and rec.config_hash == p.config_hash
    manifest = json.loads(next(tmp_path.rglob("ablation.json")).read_text())
    assert manifest["kind"] == "cryobench-ablation" and len(manifest["cells"]) == 2


# ----- Ray ------------------------------------------------------------------------------------
def test_ray_gets_the_resource_requests(monkeypatch):
    """GPU and CPU requests per task reach ray.remote (a recording stand-in for ray)."""
    seen = {}
    fake = types.SimpleNamespace()
    fake.is_initialized = lambda: False
    fake.init = lambda **kw: seen.setdefault("init", kw)
    fake.shutdown = lambda: seen.setdefault("shutdown", True)

    def remote(**kw):
        seen["remote"] = kw

        def wrap(fn):
            return types.SimpleNamespace(remote=lambda cell: ("ref", cell))
        return wrap

    fake.remote = remote
    fake.wait = lambda refs, num_returns: ([refs[0]], refs[1:])
    fake.get = lambda ref: synthetic_cell(ref[1])
    monkeypatch.setitem(sys.modules, "ray", fake)
    ex = make_executor("ray", progress=False, address="ray://head:10001", num_gpus=0.5,
                       num_cpus=4)
    got = []
    ex.run(_plan().cells(), got.append)
    assert seen["remote"] == {"num_cpus": 4, "num_gpus": 0.5, "max_retries": 0}
    assert seen["init"]["address"] == "ray://head:10001" and seen["shutdown"]
    assert len(got) == 4
    with pytest.raises(ConfigError, match="only used with --executor ray"):
        make_executor("local", address="auto")


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance (1 CPU) for this module's Ray tests."""
    ray = pytest.importorskip("ray")
    from ray import cloudpickle

    # test-module functions travel by value (Ray workers cannot import this test file)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_ray_and_local_give_identical_records(tmp_path, ray_local):
    plan = _plan(vary=["augment=true,false", "lr=0.001,0.002"], seeds="0")
    local = run_ablation(plan, tmp_path / "local", LocalExecutor(progress=False),
                         fn=synthetic_cell)
    remote = run_ablation(plan, tmp_path / "ray", RayExecutor(progress=False),
                          fn=synthetic_cell)
    assert local.ran == remote.ran == 4 and not remote.failures
    assert ray_local.is_initialized()  # the executor leaves an instance it did not start
    a, b = _records(tmp_path / "local"), _records(tmp_path / "ray")
    assert len(a) == 4 and a == b


def test_ray_reports_a_failing_task(tmp_path, ray_local):
    plan = _plan(seeds="0")
    out = run_ablation(plan, tmp_path, RayExecutor(progress=False), fn=_fails_on_false)
    assert out.ran == 1 and len(out.failures) == 1
    assert out.failures[0].user_error and "no augment" in out.failures[0].message


def _fails_on_false(cell):
    if not cell.overrides_dict["augment"]:
        raise ConfigError("no augment")
    return synthetic_cell(cell)


@pytest.mark.slow
def test_real_tiny_sweep_local_vs_ray(tmp_path):
    """A real (smoke-budget) unet3d sweep on tiny both ways: same records but timings."""
    ray = pytest.importorskip("ray")
    plan = _plan(seeds="0")
    run_ablation(plan, tmp_path / "local", LocalExecutor(progress=False))
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        run_ablation(plan, tmp_path / "ray", RayExecutor(progress=False))
    finally:
        ray.shutdown()
    # what may differ between two runs of the same cell: timings, times, memory, environment,
    # and the git sha (the working tree may change between the two runs)
    volatile = {"timings", "started_at", "finished_at", "peak_memory_mb", "peak_gpu_memory_mb",
                "environment", "git_sha"}
    a, b = _records(tmp_path / "local"), _records(tmp_path / "ray")
    assert len(a) == 2 and a.keys() == b.keys()
    for k in a:
        ra, rb = json.loads(a[k]), json.loads(b[k])
        assert {x: v for x, v in ra.items() if x not in volatile} == {
            x: v for x, v in rb.items() if x not in volatile}
    for p in (tmp_path / "local").rglob("predictions.csv"):
        assert p.read_bytes() == (tmp_path / "ray" / p.relative_to(tmp_path / "local")
                                  ).read_bytes()


def test_the_plan_is_printed_before_anything_runs(tmp_path):
    from cryobench.runner.ablate import summarise_plan
    from cryobench.testing.records import fake_record

    r = CliRunner().invoke(cli, ["ablate", "--method", "unet3d", "--split", "tiny", "--vary",
                                 "lr=0.001,0.002", "--seeds", "0,1", "--budget", "smoke",
                                 "--results", str(tmp_path), "--dry-run"])
    assert r.exit_code == 0, r.output
    first = r.output.splitlines()[0]
    assert "2 cell(s) x 2 seed(s) of unet3d (budget smoke)" in first
    assert "4 run(s) to do, 0 already complete" in first and "time unknown" in first
    # an estimate from earlier real runs of the method at that budget (synthetic ones ignored)
    plan = _plan(vary=["lr=0.001,0.002"], seeds="0,1")
    for seed, secs in ((7, 100.0), (8, 300.0)):
        rec = fake_record("unet3d", "tiny", seed)
        rec.budget, rec.device, rec.timings["total_s"] = "smoke", "cpu", secs
        rec.save(tmp_path / "tiny" / "unet3d" / "x" / f"seed-{seed}" / "record.json")
    s = summarise_plan(plan, tmp_path)
    assert s.todo == 4 and s.seconds_per_run == 200.0 and s.estimate_s == 800.0
    assert "median of 2 earlier unet3d smoke-budget run(s)" in s.basis
