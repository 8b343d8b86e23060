"""Coverage of the score intervals and false-positive rate of the paired test, old beside new.

Simulates benchmark results with a known true score (``cryobench.testing.simulation``: test
tomograms whose particle counts and difficulty vary, trained models whose skill varies from seed
to seed) and measures, at each number of test tomograms and seeds:

* **coverage** of the nominal 95% interval for the entry's score: the old percentile bootstrap
  over tomograms (``bootstrap_seed_mean`` + ``percentile_interval``), a two-level bootstrap
  (seeds, then tomograms) and the new jackknife-t interval (``score_interval``). The target is
  the method's true score (mean over seeds); with one seed the new interval only claims the
  trained model's true score, so that coverage is printed too ("of the model");
* **false-positive rate** at alpha 0.05 of the comparison of two methods of equal true skill:
  the old paired-bootstrap p (``2·min(P*(d ≤ 0), P*(d ≥ 0))``), the exact sign-flip test alone,
  and the new ``paired_comparison`` p (the larger of the sign flip and the seed-aware t-test);
* **power** of the new test against a method whose recall logit is ``--shift`` higher, and the
  smallest attainable p (min p) of the sign flip.

Every replicate's counts can be written out as pick and ground-truth tables and scored with the
real ``czii_score`` / ``byu_score``; ``--picks K`` does that for the first K replicates of each
task and checks that the scorer returns the simulated counts (all statistics are then computed
from the counts, as the leaderboard computes them from run records).

Targets: coverage within 0.93-0.97 and FPR ≤ 0.06 at the split sizes the board uses (24 test
tomograms for czii-synth-v2, 40 for byu-synth-v2, 4 for the old czii-synth) with 3 seeds, or the
board must say it cannot rank.

Usage::

    python benchmarks/bench_coverage.py            # 1000 replicates per setting
    python benchmarks/bench_coverage.py --quick    # 150 replicates, a CI-sized check
    python benchmarks/bench_coverage.py --json out.json; ... --render out.json   # tables again

CPU time (docs/performance.md): ``--quick`` used 50-70 s of CPU (two processes); the default run
is about 7 times that, a few minutes on two idle cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from cryobench.report import stats
from cryobench.testing import simulation as sim

ALPHA = 0.05


@dataclass(frozen=True)
class Task:
    name: str
    scenario: sim.Scenario
    sizes: tuple[int, ...]


TASKS = (Task("czii", sim.czii_scenario(), (4, 8, 24)), Task("byu", sim.byu_scenario(), (8, 40)))
SEEDS = (1, 3)


def _old_p(a: stats.CountCube, b: stats.CountCube, n_boot: int, seed: int) -> float:
    _, d = stats.paired_bootstrap_difference(a, b, n_boot, seed)
    return min(1.0, 2 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0))))


def _covers(bounds, target: float) -> bool:
    return bounds is not None and bounds[0] <= target <= bounds[1]


def one_replicate(args: tuple) -> dict[tuple[int, int], dict[str, float]]:
    """Every statistic of one replicate, per (n tomograms, seeds)."""
    task_i, rep_i, seed, n_boot, n_flips, shift = args
    task = TASKS[task_i]
    rng = np.random.default_rng([seed, task_i, rep_i])
    rep = sim.simulate(task.scenario, max(task.sizes), max(SEEDS), rng,
                       method_shifts=(0.0, 0.0, shift))
    theta = THETA[task_i]
    model_theta = sim.model_true_scores(task.scenario, rep.recall_shift, rep.fp_shift)
    out = {}
    for n in task.sizes:
        for s in SEEDS:
            a, b, c = (sim.cube_of(rep, m, n, s) for m in range(3))
            row: dict[str, float] = {}
            for m, cube in ((0, a), (1, b)):  # the two null methods: two intervals each
                old = stats.percentile_interval(stats.bootstrap_seed_mean(cube, n_boot, rep_i))
                two = stats.percentile_interval(stats.two_level_bootstrap(cube, n_boot, rep_i))
                sat = stats.score_interval(cube, method="satterthwaite")
                new = stats.score_interval(cube)
                for key, val in (("cov_old", _covers(old, theta[m])),
                                 ("cov_old_of_model", _covers(old, model_theta[m, 0])),
                                 ("cov_two_level", _covers(two, theta[m])),
                                 ("cov_satterthwaite", _covers(sat.bounds, theta[m])),
                                 ("cov_new", _covers(new.bounds, theta[m])),
                                 ("cov_new_of_model", _covers(new.bounds, model_theta[m, 0])),
                                 ("width_old", (old[1] - old[0]) if old else np.nan),
                                 ("width_new", (new.high - new.low) if new.bounds else np.nan)):
                    row[f"{key}/{m}"] = float(val)
            null = stats.paired_comparison(a, b, n_flips=n_flips, seed=rep_i)
            alt = stats.paired_comparison(c, a, n_flips=n_flips, seed=rep_i)
            row.update({
                "fpr_old": float(_old_p(a, b, n_boot, rep_i) <= ALPHA),
                "fpr_sign_flip": float(null.p_sign_flip <= ALPHA),
                "fpr_t": float(null.p_t <= ALPHA),
                "fpr_new": float(null.p_value <= ALPHA),
                "power_new": float(alt.p_value <= ALPHA and alt.difference > 0),
                "min_p": null.min_p,
            })
            out[(n, s)] = row
    return out


THETA: list[np.ndarray] = []


def _init(theta: list[np.ndarray]) -> None:
    THETA[:] = theta


def check_pick_tables(task_i: int, k: int, seed: int) -> tuple[int, bool, float]:
    """Score the first ``k`` replicates' pick tables with the real scorer; counts must match."""
    from cryobench.metrics import byu_score, czii_score

    task = TASKS[task_i]
    names = [c.name for c in task.scenario.classes]
    ok, t0 = True, time.perf_counter()
    for r in range(k):
        rng = np.random.default_rng([seed, task_i, r])
        rep = sim.simulate(task.scenario, max(task.sizes), max(SEEDS), rng,
                           method_shifts=(0.0, 0.0, 0.0))
        sub, sol = sim.pick_tables(rep, np.random.default_rng([seed, task_i, r, 1]))
        if task.scenario.task == "byu":
            per = byu_score(sub, sol).per_tomo
            got = {(t, "flagellar-motor"): (int(o == "tp"), int(o == "fp"), int(o == "fn"))
                   for t, o in zip(per["tomo_id"], per["outcome"], strict=True)}
            prefix = "tomo_"
        else:
            pe = czii_score(sub, sol, per_experiment=True).per_experiment
            got = {(e, p): (tp, fp, fn) for e, p, tp, fp, fn in
                   pe[["experiment", "particle_type", "tp", "fp", "fn"]].itertuples(index=False)}
            prefix = "TS_"
        m, s, n, nk, _ = rep.counts.shape
        for mi in range(m):
            for si in range(s):
                for ti in range(n):
                    for j in range(nk):
                        key = (f"m{mi}s{si}|{prefix}{ti:03d}", names[j])
                        want = tuple(int(x) for x in rep.counts[mi, si, ti, j])
                        if got.get(key, (0, 0, 0)) != want:
                            ok = False
    return k, ok, time.perf_counter() - t0


COVERAGE = ("cov_old", "cov_old_of_model", "cov_two_level", "cov_satterthwaite", "cov_new",
            "cov_new_of_model")
TESTS = ("fpr_old", "fpr_sign_flip", "fpr_t", "fpr_new", "power_new")


def summarise(rows: list[dict], task: Task) -> list[dict]:
    """Rates over replicates per (tomograms, seeds); coverage pools both null methods."""
    table = []
    for n in task.sizes:
        for s in SEEDS:
            got = [r[(n, s)] for r in rows]
            entry: dict[str, float | int | str] = {"task": task.name, "n": n, "seeds": s,
                                                   "reps": len(rows)}
            for key in COVERAGE:
                entry[key] = float(np.mean([g[f"{key}/{m}"] for g in got for m in (0, 1)]))
            w_old = np.nanmedian([g[f"width_old/{m}"] for g in got for m in (0, 1)])
            w_new = np.nanmedian([g[f"width_new/{m}"] for g in got for m in (0, 1)])
            entry["width_new_over_old"] = float(w_new / w_old)
            for key in TESTS:
                entry[key] = float(np.mean([g[key] for g in got]))
            entry["min_p"] = float(got[0]["min_p"])
            table.append(entry)
    return table


def render(table: list[dict]) -> str:
    """Two Markdown tables: interval coverage, and the paired test's error and power."""
    cov = ["| task | tomograms | seeds | percentile bootstrap (old) | old, of the trained model "
           "| two-level bootstrap | t, Satterthwaite df | pivot (new) | new, of the trained model "
           "| width new/old |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    test = ["| task | tomograms | seeds | paired bootstrap (old) | sign flip alone | t alone | "
            "new: max(sign flip, t) | power (new) | min p |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in table:
        lead = f"| {r['task']} | {r['n']} | {r['seeds']} |"
        # "of the trained model" is the target of a one-seed interval only
        cells = [f" {r[k]:.3f} |" if (r["seeds"] == 1 or "of_model" not in k) else " — |"
                 for k in COVERAGE]
        cov.append(lead + "".join(cells) + f" {r['width_new_over_old']:.2f} |")
        test.append(lead + "".join(f" {r[k]:.3f} |" for k in TESTS) + f" {r['min_p']:.2g} |")
    return ("Coverage of the nominal 95% interval (target: the method's true score; 'of the "
            "trained model': the model's own)\n\n" + "\n".join(cov)
            + "\n\nRejections of a true null at alpha 0.05 (FPR), and power\n\n"
            + "\n".join(test))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=1000, help="replicates per task (default 1000)")
    ap.add_argument("--quick", action="store_true", help="150 replicates (a CI-sized check)")
    ap.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (old)")
    ap.add_argument("--flips", type=int, default=999,
                    help="random sign flips beyond exact enumeration (17+ tomograms)")
    ap.add_argument("--shift", type=float, default=0.4,
                    help="recall-logit advantage of the method the power is measured against")
    ap.add_argument("--picks", type=int, default=5,
                    help="replicates per task scored as pick tables by the real scorer")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the table as JSON here")
    ap.add_argument("--render", metavar="JSON", help="print the tables of a saved --json run")
    a = ap.parse_args(argv)
    if a.render:
        with open(a.render) as f:
            print(render(json.load(f)["table"]))
        return 0
    reps = 150 if a.quick else a.reps
    t0 = time.perf_counter()
    theta = [sim.true_scores(t.scenario, (0.0, 0.0, a.shift)) for t in TASKS]
    print("true scores: " + "; ".join(
        f"{t.name} {th[0]:.4f} (shifted {th[2]:.4f}, +{th[2] - th[0]:.4f})"
        for t, th in zip(TASKS, theta, strict=True)))
    for i, t in enumerate(TASKS):
        if a.picks:
            k, ok, dt = check_pick_tables(i, a.picks, a.seed)
            print(f"{t.name}: {k} replicates as pick tables scored by the real scorer in "
                  f"{dt:.1f} s: counts {'identical' if ok else 'DIFFER'}")
            if not ok:
                return 1
    _init(theta)
    table = []
    from tqdm import tqdm

    with mp.get_context("fork").Pool(a.jobs, initializer=_init, initargs=(theta,)) as pool:
        for i, t in enumerate(TASKS):
            jobs = [(i, r, a.seed, a.bootstrap, a.flips, a.shift) for r in range(reps)]
            rows = list(tqdm(pool.imap(one_replicate, jobs, chunksize=10), total=reps,
                             desc=t.name, file=sys.stderr, mininterval=5))
            table += summarise(rows, t)
    elapsed = time.perf_counter() - t0
    print(render(table))
    load = os.getloadavg()
    print(f"\n{reps} replicates per setting, {a.bootstrap} bootstrap resamples, {a.flips} random "
          f"flips beyond exact enumeration, {a.jobs} processes: {elapsed:.0f} s; load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"table": table, "reps": reps, "elapsed_s": elapsed}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
