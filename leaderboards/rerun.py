"""The official rerun: every record behind docs/results.md, one run at a time, resumable.

Usage (from the repository root, on an otherwise idle machine)::

    python leaderboards/rerun.py            # run whatever is not complete yet, in plan order
    python leaderboards/rerun.py --list     # what is done and what is left (runs nothing)
    python leaderboards/rerun.py --phase 1  # only one phase

Each step is one ``cryobench run`` or ``cryobench ablate`` in a fresh process; both reuse a
complete record, so a killed rerun resumes where it stopped. The plan's order puts the runs the
calibration of the v2 splits needs first (docs/phantoms.md), then seed 0 of every baseline, the
untrained references, ``cryobench verify`` of each method's seed-0 record (its output is kept
in ``leaderboards/verification/``), seeds 1 and 2, and last the ablations. The driver re-reads
this file after every step, so an edited plan applies from the next step on; after every step it
stores predictions over 1 MB compressed (``predictions.csv.gz``), as they are committed. The
whole rerun's duration is the sum of the records' ``timings.total_s`` plus split generation;
``--list`` prints the first.

In a new session (a fresh machine: the split caches are gone and are generated again, with the
same bytes): ``git pull``, then ``nohup python leaderboards/rerun.py > rerun.log &`` from the
repository root; an interrupted run resumes from its kept fit and test-run picks
(docs/running.md). Commit the new record folders as they appear.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "leaderboards" / "results"
REFERENCES = ROOT / "leaderboards" / "references" / "untrained"
VERIFICATION = ROOT / "leaderboards" / "verification"
SPECS = ROOT / "leaderboards" / "ablations"

PARTICLES = "czii-synth-v2"
MOTOR = "byu-synth-v2"
SEEDS = (0, 1, 2)
# every baseline of each task; template matching has no seed (it is run once, with seed 0)
PARTICLE_METHODS = ("unet3d", "unet_per_particle", "vnet_per_particle", "deepfindet",
                    "yolo_unet", "faster_rcnn", "centernet_slices")
MOTOR_METHODS = ("cnn_regressor", "yolo_unet", "faster_rcnn", "centernet_slices")
# the baselines with an ``epochs=0`` mode (the untrained references)
UNTRAINED = ((PARTICLES, "unet3d"), (PARTICLES, "unet_per_particle"),
             (PARTICLES, "vnet_per_particle"), (PARTICLES, "deepfindet"),
             (MOTOR, "cnn_regressor"))
ABLATIONS = ("loss", "augment", "dropout", "centernet", "snr_v2")


@dataclass(frozen=True)
class Step:
    """One ``cryobench`` invocation of the plan."""

    phase: int
    label: str
    argv: tuple[str, ...]
    split: str = ""
    method: str = ""
    seed: int | None = None
    out: Path = RESULTS
    sets: tuple[str, ...] = field(default=())
    verify: bool = False

    def run_dir(self) -> Path:
        from cryobench.runner import store

        return store.run_dir(self.out, self.split, self.method,
                             config_hash(self.method, self.sets), self.seed or 0)

    def verification_file(self) -> Path:
        return VERIFICATION / self.split / f"{self.method}-{self.run_dir().parent.name}.txt"

    def done(self) -> bool:
        """Whether the complete record of this run (its exact config hash) exists, or for a
        verify step, whether its verification was written."""
        if self.seed is None:
            return False
        if self.verify:
            return self.verification_file().is_file()
        from cryobench.runner import store

        return (self.run_dir() / store.RECORD_NAME).is_file()


def config_hash(method: str, sets: tuple[str, ...] = ()) -> str:
    """The cpu-budget config hash of ``method`` with ``sets`` (as ``cryobench run`` makes it)."""
    from cryobench.methods.config import parse_assignments, validate_overrides
    from cryobench.methods.registry import get_method
    from cryobench.runner import record

    cls = get_method(method)
    typed = validate_overrides(cls.Config, parse_assignments(cls.Config, sets, method), method)
    obj = cls(cls.default_config("cpu", **typed))
    return record.config_hash(record.jsonable(obj.config_dict()))[:12]


def _run(phase: int, split: str, method: str, seed: int, *, out: Path = RESULTS,
         sets: tuple[str, ...] = ()) -> Step:
    argv = ("run", "--method", method, "--split", split, "--budget", "cpu", "--seed", str(seed),
            "--out", str(out), "--no-progress", *(a for s in sets for a in ("--set", s)))
    tag = "".join(f" {s}" for s in sets)
    return Step(phase, f"{method} on {split}, seed {seed}{tag}", argv, split, method, seed, out,
                sets)


def _verify(phase: int, split: str, method: str) -> Step:
    run = _run(phase, split, method, 0)
    return Step(phase, f"verify {method} on {split}, seed 0",
                ("verify", str(run.run_dir()), "--no-progress"), split, method, 0, verify=True)


def _write_verification(step: Step, rc: int, out: str, seconds: float) -> None:
    """Keep what ``cryobench verify`` said (exit 0 verified, 1 differs; anything else is a
    failure to rerun and is not kept, so the step runs again)."""
    if rc not in (0, 1):
        return
    from cryobench.io.atomic import atomic_write_text

    f = step.verification_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    rel = step.run_dir().relative_to(ROOT)
    out = out.replace(f"{ROOT}/", "")  # paths relative to the repository, as committed
    atomic_write_text(f, f"$ cryobench verify {rel}\n{out.rstrip()}\n"
                         f"exit {rc}; {seconds:.0f} s; {time.strftime('%Y-%m-%d')}\n")


def plan() -> list[Step]:
    """The official runs in the order they are made."""
    steps = [_run(1, PARTICLES, "unet_per_particle", 0), _run(1, MOTOR, "cnn_regressor", 0)]
    first = {(PARTICLES, "unet_per_particle"), (MOTOR, "cnn_regressor")}
    pairs = [(PARTICLES, m) for m in PARTICLE_METHODS] + [(MOTOR, m) for m in MOTOR_METHODS]
    steps += [_run(2, s, m, 0) for s, m in pairs if (s, m) not in first]
    steps.append(_run(2, PARTICLES, "template_match", 0))
    steps += [_run(3, s, m, 0, out=REFERENCES, sets=("epochs=0",)) for s, m in UNTRAINED]
    # one record per method: the particle task's, and the motor-only cnn_regressor's
    steps += [_verify(4, PARTICLES, m) for m in (*PARTICLE_METHODS, "template_match")]
    steps.append(_verify(4, MOTOR, "cnn_regressor"))
    steps += [_run(5, s, m, seed) for seed in SEEDS[1:] for s, m in pairs]
    steps += [Step(6, f"ablation {name}", ("ablate", str(SPECS / f"{name}.toml"), "--results",
                                           str(RESULTS), "--no-progress"))
              for name in ABLATIONS]
    return steps


def _prune_reference(step: Step) -> None:
    """The untrained references keep only record.json and config.json (see their README)."""
    for d in (step.out / step.split / step.method).glob(f"*/seed-{step.seed}"):
        for p in d.iterdir():
            if p.name not in ("record.json", "config.json"):
                shutil.rmtree(p) if p.is_dir() else p.unlink()


def _compress_predictions() -> None:
    """Predictions over 1 MB are kept as ``predictions.csv.gz`` (docs/records.md)."""
    from cryobench.runner.store import compress_predictions

    for rec in RESULTS.rglob("record.json"):
        compress_predictions(rec.parent)


def _records_time() -> tuple[int, float]:
    n, total = 0, 0.0
    for base in (RESULTS, REFERENCES):
        for rec in base.glob("*-v2*/**/record.json"):
            n += 1
            total += float(json.loads(rec.read_text())["timings"]["total_s"])
    return n, total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true", help="show the plan and what is done")
    ap.add_argument("--phase", type=int, action="append", help="only these phases")
    ap.add_argument("--after", type=int, help="first wait for this process to end")
    ap.add_argument("--skip", action="append", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    steps = [s for s in plan() if not args.phase or s.phase in args.phase]
    exe = shutil.which("cryobench") or str(Path(sys.executable).with_name("cryobench"))
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    if args.list:
        for s in steps:
            state = "done" if s.done() else ("ablate" if s.seed is None else "todo")
            if s.verify and s.done():
                state = "ok" if "\nexit 0;" in s.verification_file().read_text() else "DIFFER"
            print(f"phase {s.phase}  {state:<6}  {s.label}")
        n, total = _records_time()
        print(f"{n} v2 record(s), {total / 3600:.2f} h of run time (timings.total_s)")
        return 0
    if args.after:
        while Path(f"/proc/{args.after}").exists():
            time.sleep(10)
    failed = set(args.skip or ())
    for s in steps:
        if s.done() or s.label in failed:
            continue
        t0 = time.time()
        print(f"[{time.strftime('%H:%M:%S')}] phase {s.phase}: {s.label}", flush=True)
        if s.verify:
            res = subprocess.run([exe, *s.argv], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                 text=True)
            print(res.stdout, end="", flush=True)
            rc = res.returncode
            _write_verification(s, rc, res.stdout, time.time() - t0)
        else:
            rc = subprocess.call([exe, *s.argv], cwd=ROOT, env=env)
        print(f"[{time.strftime('%H:%M:%S')}] exit {rc} after {time.time() - t0:.0f} s",
              flush=True)
        if rc == 0 and s.out == REFERENCES:
            _prune_reference(s)
        _compress_predictions()
        # start again from the file, so that an edited plan applies from the next step on; a
        # failed step is not retried in this pass
        skip = [a for f in sorted(failed | ({s.label} if rc not in (0, 1) else set()))
                for a in ("--skip", f)]
        phases = [a for p in args.phase or () for a in ("--phase", str(p))]
        os.execv(sys.executable, [sys.executable, str(Path(__file__).resolve()), *phases, *skip])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
