"""Speed of the CZII score: cryobench vs a straightforward per-(experiment, type) loop.

Builds a synthetic solution and an N-pick submission over E experiments (default 1,000,000
picks, 100 experiments), writes both as CSV, then times:

* ``parse``: ``pandas.read_csv`` of the two files (the floor for any CSV scorer), and the same
  with ``engine="pyarrow"`` for comparison (slower than pandas' C parser on the 2-core machine,
  so ``cryobench score`` keeps the C parser);
* ``czii_score``: cryobench's vectorised score on the in-memory DataFrames;
* ``cli (in-process)``: what ``cryobench score`` does: read + validate + score + diagnostics +
  table, without interpreter start-up;
* ``process``: the target's comparison, each a fresh Python process: the real
  ``cryobench score ... --json`` command (with its peak resident memory) against a program
  that only imports pandas and parses the two CSVs;
* ``naive loop``: the Kaggle script's structure — a pandas boolean mask per (experiment, type)
  and a KD-tree ``query_ball_tree`` per group — written out below.

Both scores must agree exactly. Targets: ≥ 20x faster than the loop, the command's
total wall time within 2x of the parse-only program's, peak memory < 1 GB. The in-process
ratio (start-up excluded on both sides) is printed too. ``CRYOBENCH_NUM_THREADS=1`` times the
single-threaded scorer.

Usage::

    python benchmarks/bench_score.py                 # the full 1,000,000-pick run
    python benchmarks/bench_score.py --picks 20000 --experiments 10   # smoke run, seconds
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import KDTree

from cryobench import _threads
from cryobench.cli.score import ScoreOptions, load_tables, render_text, score_tables
from cryobench.metrics import czii_score
from cryobench.particles import CZII_PARTICLES, czii_radii, czii_weights

# tomogram extent of the CZII data (630 x 630 x 184 voxels at 10 Å), in Å
EXTENT = np.array([6300.0, 6300.0, 1840.0])


def make_tables(n_picks: int, n_experiments: int, refs_per_experiment: int, seed: int):
    """A solution and a submission: 60% of picks jittered around references, 40% anywhere."""
    rng = np.random.default_rng(seed)
    names = np.array([p.name for p in CZII_PARTICLES])
    radius = np.array([p.radius for p in CZII_PARTICLES])
    n_ref = n_experiments * refs_per_experiment
    exps = np.array([f"TS_{i:03d}" for i in range(n_experiments)])
    ref_exp = np.repeat(np.arange(n_experiments), refs_per_experiment)
    ref_cls = rng.integers(0, len(names), n_ref)
    ref_xyz = np.round(rng.uniform(0, EXTENT, (n_ref, 3)), 3)
    solution = pd.DataFrame({"experiment": exps[ref_exp], "particle_type": names[ref_cls],
                             "x": ref_xyz[:, 0], "y": ref_xyz[:, 1], "z": ref_xyz[:, 2]})
    solution = solution.drop_duplicates(["experiment", "x", "y", "z"]).reset_index(drop=True)

    n_near = int(0.6 * n_picks)
    src = rng.integers(0, len(solution), n_near)
    near_xyz = solution[["x", "y", "z"]].to_numpy()[src] + rng.normal(
        0, 1, (n_near, 3)) * (0.35 * radius[ref_cls[src]])[:, None]
    n_far = n_picks - n_near
    far_xyz = rng.uniform(0, EXTENT, (n_far, 3))
    submission = pd.DataFrame({
        "experiment": np.concatenate([solution["experiment"].to_numpy()[src],
                                      exps[rng.integers(0, n_experiments, n_far)]]),
        "particle_type": np.concatenate([solution["particle_type"].to_numpy()[src],
                                         names[rng.integers(0, len(names), n_far)]]),
        "x": 0.0, "y": 0.0, "z": 0.0})
    submission[["x", "y", "z"]] = np.round(np.vstack([near_xyz, far_xyz]), 3)
    submission = submission.sample(frac=1, random_state=seed).reset_index(drop=True)
    submission.insert(0, "id", np.arange(len(submission)))
    return submission, solution


def naive_czii(submission: pd.DataFrame, solution: pd.DataFrame, distance_multiplier=0.5,
               beta=4) -> float:
    """The straightforward implementation: a pandas mask and a KD-tree per (experiment, type)."""
    radii = {k: v * distance_multiplier for k, v in czii_radii().items()}
    weights = czii_weights()
    experiments = solution["experiment"].unique()
    submission = submission.loc[submission["experiment"].isin(set(experiments))]
    types = solution["particle_type"].unique()
    totals = {t: [0, 0, 0] for t in types}
    for e in experiments:
        for t in types:
            ref = solution.loc[(solution["experiment"] == e) & (solution["particle_type"] == t),
                               ["x", "y", "z"]].to_numpy()
            cand = submission.loc[(submission["experiment"] == e) &
                                  (submission["particle_type"] == t), ["x", "y", "z"]].to_numpy()
            if len(ref) == 0:
                tp, fp, fn = 0, len(cand), 0
            elif len(cand) == 0:
                tp, fp, fn = 0, 0, len(ref)
            else:
                hits = KDTree(cand).query_ball_tree(KDTree(ref), r=radii[t])
                tp = len({i for h in hits for i in h})
                fp, fn = len(cand) - tp, len(ref) - tp
            totals[t][0] += tp
            totals[t][1] += fp
            totals[t][2] += fn
    score = 0.0
    for t, (tp, fp, fn) in totals.items():
        p = tp / (tp + fp) if tp + fp > 0 else 0
        r = tp / (tp + fn) if tp + fn > 0 else 0
        f = (1 + beta**2) * (p * r) / (beta**2 * p + r) if (p + r) > 0 else 0.0
        score += f * weights.get(t, 1.0)
    return score / sum(weights.values())


def interleaved(fns: dict, repeat: int):
    """Run the functions in turn ``repeat`` times; best wall and CPU (process) time of each.

    Interleaving keeps slow phases of a shared machine from favouring one of them.
    """
    wall = {k: float("inf") for k in fns}
    cpu = dict(wall)
    values = {}
    for _ in range(repeat):
        for k, fn in fns.items():
            w0, c0 = time.perf_counter(), time.process_time()
            values[k] = fn()
            wall[k] = min(wall[k], time.perf_counter() - w0)
            cpu[k] = min(cpu[k], time.process_time() - c0)
    return wall, cpu, values


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--picks", type=int, default=1_000_000, help="submission rows")
    ap.add_argument("--experiments", type=int, default=100)
    ap.add_argument("--refs-per-experiment", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=5, help="best of N for the fast timings")
    ap.add_argument("--skip-naive", action="store_true", help="do not run the slow loop")
    ap.add_argument("--workdir", type=Path, default=None, help="where to write the CSVs")
    args = ap.parse_args(argv)

    tmp = tempfile.TemporaryDirectory() if args.workdir is None else None
    work = Path(tmp.name) if tmp else args.workdir
    work.mkdir(parents=True, exist_ok=True)
    sub_path, sol_path = work / "submission.csv", work / "solution.csv"

    t0 = time.perf_counter()
    submission, solution = make_tables(args.picks, args.experiments, args.refs_per_experiment,
                                       args.seed)
    submission.to_csv(sub_path, index=False)
    solution.to_csv(sol_path, index=False)
    print(f"data: {len(submission):,} picks, {len(solution):,} references, "
          f"{args.experiments} experiments, {sub_path.stat().st_size / 1e6:.1f} MB + "
          f"{sol_path.stat().st_size / 1e6:.1f} MB CSV (built in "
          f"{time.perf_counter() - t0:.1f} s)")
    print(f"machine: {os.cpu_count()} CPU cores, python {sys.version.split()[0]}, "
          f"pandas {pd.__version__}, numpy {np.__version__}")

    def parse():
        return pd.read_csv(sub_path), pd.read_csv(sol_path)

    sub_df, sol_df = parse()

    def cli_in_process():
        s, o, metric = load_tables(sub_path, sol_path)
        result = score_tables(s, o, ScoreOptions(metric=metric))
        with redirect_stdout(io.StringIO()):
            print(render_text(result))
        return result

    def parse_arrow():
        return (pd.read_csv(sub_path, engine="pyarrow"), pd.read_csv(sol_path, engine="pyarrow"))

    wall, cpu, values = interleaved({"parse": parse,
                                     "parse_arrow": parse_arrow,
                                     "score": lambda: czii_score(sub_df, sol_df),
                                     "cli": cli_in_process}, args.repeat)
    report, result = values["score"], values["cli"]
    assert result["score"] == report.score

    tracemalloc.start()
    czii_score(sub_df, sol_df)
    _, peak_score = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    # The target's comparison: the whole command against a program that only parses the two
    # CSVs with pandas, each a fresh process (interpreter start-up and imports on both sides).
    argv = ["cryobench", "score", str(sub_path), "--solution", str(sol_path), "--json"]
    cli_cmd = [sys.executable, "-c", _CHILD.format(argv=argv)]
    parse_cmd = [sys.executable, "-c", "import pandas as pd; "
                 f"pd.read_csv({str(sub_path)!r}); pd.read_csv({str(sol_path)!r})"]
    proc_wall = {"parse": float("inf"), "cli": float("inf")}
    child_rss_mb = 0.0
    for _ in range(args.repeat):
        for k, cmd in (("parse", parse_cmd), ("cli", cli_cmd)):
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            proc_wall[k] = min(proc_wall[k], time.perf_counter() - t0)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 1
            if k == "cli":
                child_rss_mb = max(child_rss_mb, _child_peak_mb(proc.stderr))
                assert json.loads(proc.stdout)["score"] == report.score
    t_import = _import_time()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nbest of {args.repeat} (interleaved); load average {load:.1f}; "
          f"{_threads.num_threads()} scoring thread(s)")
    print(f"{'step':36s} {'wall s':>8s} {'CPU s':>8s}")
    print(f"{'parse both CSVs (pandas)':36s} {wall['parse']:8.3f} {cpu['parse']:8.3f}")
    print(f"{'  same, engine=pyarrow':36s} {wall['parse_arrow']:8.3f} "
          f"{cpu['parse_arrow']:8.3f}")
    print(f"{'czii_score (DataFrames)':36s} {wall['score']:8.3f} {cpu['score']:8.3f}")
    print(f"{'cli in-process (read+score+table)':36s} {wall['cli']:8.3f} {cpu['cli']:8.3f}")
    print(f"{'process: python -c parse both CSVs':36s} {proc_wall['parse']:8.3f}")
    print(f"{'process: cryobench score ... --json':36s} {proc_wall['cli']:8.3f}          "
          f"(interpreter + imports alone: {t_import:.3f})")
    t_score = wall["score"]

    ok = True
    if not args.skip_naive:
        t0 = time.perf_counter()
        naive = naive_czii(sub_df, sol_df)
        t_naive = time.perf_counter() - t0
        print(f"{'naive per-group loop':36s} {t_naive:8.3f}")
        same = naive == report.score
        ok &= same
        print()
        print(f"score: cryobench {report.score!r}, naive {naive!r}: "
              f"{'identical' if same else 'DIFFERENT'}")
        ratio = t_naive / t_score
        print(f"speed-up of czii_score over the loop: {ratio:.0f}x (target >= 20x): "
              f"{'PASS' if ratio >= 20 else 'FAIL'}")
        ok &= ratio >= 20
    else:
        print(f"\nscore: {report.score!r} (naive loop skipped)")
    total_ratio = proc_wall["cli"] / proc_wall["parse"]
    print(f"total wall time, command / parse-only program: {total_ratio:.2f}x (target <= 2x): "
          f"{'PASS' if total_ratio <= 2 else 'FAIL'}")
    print(f"  in-process, start-up excluded on both sides: {wall['cli'] / wall['parse']:.2f}x "
          f"wall, {cpu['cli'] / cpu['parse']:.2f}x CPU; against the pyarrow parse: "
          f"{wall['cli'] / wall['parse_arrow']:.2f}x wall")
    print(f"peak memory: czii_score traced {peak_score / 2**20:.0f} MiB; cli process "
          f"max RSS {child_rss_mb:.0f} MiB (target < 1024): "
          f"{'PASS' if child_rss_mb < 1024 else 'FAIL'}")
    ok &= total_ratio <= 2 and child_rss_mb < 1024
    if tmp:
        tmp.cleanup()
    if args.picks < 1_000_000:
        print("(the targets are for the full 1,000,000-pick run; small runs are smoke tests)")
        return 0
    return 0 if ok else 1


# The scoring command as a child that reports its own peak memory at exit. VmHWM of the new
# process image is exact; ru_maxrss of a child (RUSAGE_CHILDREN, or RUSAGE_SELF after exec)
# also counts the pages of the fork it came from, i.e. this benchmark's own ~1 GB of tables.
_CHILD = """
import atexit, resource, sys
def _peak():
    try:
        kb = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0]
    except OSError:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print('PEAK_KB', kb, file=sys.stderr)
atexit.register(_peak)
sys.argv = {argv!r}
from cryobench.cli import main
main()
"""


def _child_peak_mb(stderr: str) -> float:
    kb = [int(line.split()[1]) for line in stderr.splitlines() if line.startswith("PEAK_KB")]
    return kb[-1] / 1024 if kb else float("nan")


def _import_time() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import cryobench.cli.score, cryobench.metrics"],
                   check=True)
    return time.perf_counter() - t0


if __name__ == "__main__":
    raise SystemExit(main())
