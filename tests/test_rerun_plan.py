"""The official rerun's plan (leaderboards/rerun.py): every baseline of each v2 split with three
seeds, the references, one verification per method and the shipped ablations, in order."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from cryobench.methods.registry import list_methods

ROOT = Path(__file__).resolve().parents[1]


def _rerun():
    spec = importlib.util.spec_from_file_location("rerun", ROOT / "leaderboards" / "rerun.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["rerun"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_the_plan_covers_every_baseline_seed_reference_verification_and_ablation():
    rr = _rerun()
    steps = rr.plan()
    assert [s.phase for s in steps] == sorted(s.phase for s in steps)
    runs = {(s.split, s.method, s.seed) for s in steps if s.argv[0] == "run" and not s.sets}
    names = {i.name for i in list_methods()}
    for split, methods in ((rr.PARTICLES, rr.PARTICLE_METHODS), (rr.MOTOR, rr.MOTOR_METHODS)):
        for m in methods:
            assert m in names and {(split, m, k) for k in (0, 1, 2)} <= runs
    assert (rr.PARTICLES, "template_match", 0) in runs
    assert (rr.PARTICLES, "template_match", 1) not in runs  # it has no seed
    verified = {s.method for s in steps if s.verify}
    assert verified == {m for _, m, _ in runs}
    refs = [s for s in steps if s.out == rr.REFERENCES]
    assert refs and all(s.sets == ("epochs=0",) for s in refs)
    specs = [Path(s.argv[1]) for s in steps if s.argv[0] == "ablate"]
    assert {p.stem for p in specs} == set(rr.ABLATIONS) and all(p.is_file() for p in specs)
    # seed 0 of everything (the calibration runs first) before any seed 1
    first_seed1 = next(i for i, s in enumerate(steps) if s.seed == 1)
    assert all(s.seed in (0, None) for s in steps[:first_seed1])
    assert steps[0].method == "unet_per_particle" and steps[1].method == "cnn_regressor"


def test_a_step_is_done_once_its_exact_record_exists(tmp_path, monkeypatch):
    rr = _rerun()
    step = rr._run(1, "czii-synth-v2", "unet3d", 2, out=tmp_path)
    assert not step.done()
    d = step.run_dir()
    assert d.parent.name == rr.config_hash("unet3d")
    d.mkdir(parents=True)
    (d / "record.json").write_text(json.dumps({}))
    assert step.done()
    other = rr._run(1, "czii-synth-v2", "unet3d", 2, out=tmp_path, sets=("epochs=0",))
    assert not other.done()  # another config, another directory
    monkeypatch.setattr(rr, "VERIFICATION", tmp_path / "verification")
    v = rr._verify(4, "czii-synth-v2", "unet3d")
    assert not v.done()
    monkeypatch.setattr(rr, "ROOT", tmp_path)
    v = rr.Step(4, "verify", ("verify",), "czii-synth-v2", "unet3d", 2, out=tmp_path,
                verify=True)
    rr._write_verification(v, 0, "verified: ...", 12.0)
    assert v.done() and "exit 0;" in v.verification_file().read_text()
    rr._write_verification(rr.Step(4, "x", ("verify",), "s", "m", 0, out=tmp_path, verify=True),
                           2, "error: ...", 1.0)
    assert not (tmp_path / "verification" / "s").exists()  # a failure to rerun is not kept
