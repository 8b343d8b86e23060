"""An interrupted run resumes from what it finished (cryobench/runner/resume.py) and writes the
bytes an uninterrupted run writes: the fit is kept, and, for methods whose picks depend only on
the fitted state and the run, each finished test run's picks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cryobench.methods.registry import get_method, list_methods
from cryobench.runner import store
from cryobench.runner.run import run

pytest.importorskip("torch")

# one method of each family: segmentation engine, template matching, slice detector, regressor
CASES = {"unet3d": "particles", "template_match": "particles", "faster_rcnn": "particles",
         "cnn_regressor": "motor"}


def _two_test_runs(tmp_path: Path, task: str) -> str:
    """A split definition with two test runs (the built-in ``tiny`` has one)."""
    root = Path(__file__).resolve().parents[1] / "cryobench" / "splits"
    d = json.loads((root / ("tiny.json" if task == "particles" else "tiny-motor.json")).read_text())
    if task == "particles":
        d.update(name="tiny-resume", train=["TS_tiny_1"], val=["TS_tiny_2"],
                 test=["TS_tiny_3", "TS_tiny_4"])
    else:
        d["name"] = "tiny-motor-resume"
    path = tmp_path / f"{d['name']}.json"
    path.write_text(json.dumps(d))
    return str(path)


class _Interrupt(BaseException):
    """Stands in for a kill between two test runs."""


TASKS = {"unet3d": "particles", "unet_per_particle": "particles",
         "vnet_per_particle": "particles", "deepfindet": "particles", "yolo_unet": "particles",
         "faster_rcnn": "particles", "centernet_slices": "particles",
         "template_match": "particles", "cnn_regressor": "motor"}
ALL = [pytest.param(n, marks=() if n in CASES else pytest.mark.slow) for n in sorted(TASKS)]


@pytest.mark.parametrize("name", ALL)
def test_an_interrupted_run_resumes_to_the_same_bytes(name, tmp_path, monkeypatch):
    info = {i.name: i for i in list_methods()}[name]
    if info.extra_missing:
        pytest.skip(f"extra {info.extra!r} not installed")
    split = _two_test_runs(tmp_path, TASKS[name])
    whole = run(name, split, budget="smoke", out=tmp_path / "whole", progress=False,
                write_copick=False)
    cls = get_method(name)
    real, calls = cls.predict, []

    def predict_then_die(self, run_, ctx):
        calls.append(run_.name)
        if len(calls) == 2:
            raise _Interrupt
        return real(self, run_, ctx)

    monkeypatch.setattr(cls, "predict", predict_then_die)
    out = tmp_path / "resumed"
    with pytest.raises(_Interrupt):
        run(name, split, budget="smoke", out=out, progress=False, write_copick=False)
    monkeypatch.setattr(cls, "predict", real)
    (d,) = out.glob("*/*/*/seed-0")
    assert not (d / store.RECORD_NAME).exists() and (d / store.RESUME_DIR).is_dir()
    again = run(name, split, budget="smoke", out=out, progress=False, write_copick=False)
    assert again.record.predictions_path.read_bytes() == whole.record.predictions_path.read_bytes()
    assert again.record.score == whole.record.score
    assert again.record.counts == whole.record.counts
    assert again.record.metrics == whole.record.metrics
    t = again.record.timings
    assert t["resumed_fit"] == 1.0
    assert t["resumed_test_runs"] == (1.0 if cls.resumable_predictions else 0.0)
    assert "resumed_fit" not in whole.record.timings
    assert not (d / store.RESUME_DIR).exists()  # gone once the record is written


def test_a_stale_resume_folder_is_discarded(tmp_path, monkeypatch):
    """Another seed's (or config's, or data's) kept fit is never reused."""
    split = _two_test_runs(tmp_path, "particles")
    cls = get_method("unet3d")
    real = cls.predict

    def die(self, run_, ctx):
        raise _Interrupt

    monkeypatch.setattr(cls, "predict", die)
    with pytest.raises(_Interrupt):
        run("unet3d", split, budget="smoke", out=tmp_path / "r", progress=False,
            write_copick=False)
    monkeypatch.setattr(cls, "predict", real)
    (d,) = (tmp_path / "r").glob("*/*/*/seed-0")
    stamp = d / store.RESUME_DIR / "stamp.json"
    data = json.loads(stamp.read_text())
    data["stamp"]["dataset_fingerprint"] = "something else"
    stamp.write_text(json.dumps(data))
    again = run("unet3d", split, budget="smoke", out=tmp_path / "r", progress=False,
                write_copick=False)
    assert "resumed_fit" not in again.record.timings  # fitted afresh
    rerun = run("unet3d", split, budget="smoke", out=tmp_path / "r", progress=False,
                write_copick=False, rerun=True)
    assert rerun.record.predictions_path.read_bytes() == \
        again.record.predictions_path.read_bytes()
