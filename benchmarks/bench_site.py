"""Speed of the leaderboard site and the split report (targets: a 40-entry site with curves
well under a minute on 2 cores; the site for 100 runs without predictions <= 10 s; a report for
one split <= 5 s).

Fabricates, in a temporary directory:

* **records with predictions** (:mod:`cryobench.testing.predictions`): 26 configurations x 3
  seeds on a CZII-like split (10 test tomograms, about 1,000 references, about 1,000 picks per
  seed) and 14 BYU configurations x 3 seeds (40 tomograms), each record scored from its
  ``predictions.csv``, with a solutions folder: 40 entries whose method pages get the
  diagnostics table, F-beta against the match distance (10 multipliers, each a full score) and
  precision-recall curves per class, and 120 records verified by rescoring;
* **records without predictions** (:mod:`cryobench.testing.records`, realistic counts): the
  site of 100 records, 34 configurations (the pages without curves), and one split's report.

Then times, in this process: ``build_site`` with the solutions on 1 worker process and on
``CRYOBENCH_NUM_THREADS`` (default: the usable CPUs), side by side; the site without
predictions; ``write_report`` for one split. Prints the figures, the ratio, the load average.

Run: ``python benchmarks/bench_site.py``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")


def _fabricate_counts(root: Path) -> int:
    from cryobench.testing.records import write_fake_results

    czii_exps = [f"TS_synth_{i}" for i in range(6, 16)]
    byu_exps = [f"tomo_{i:03d}" for i in range(40)]
    n = 0
    for k in range(20):  # 20 configurations x 3 seeds on czii-synth
        method = ["unet3d", "unet_per_particle", "vnet_per_particle", "deepfindet",
                  "faster_rcnn", "yolo_unet", "plugin"][k % 7]
        n += len(write_fake_results(root, methods=[(method, 0.3 + 0.03 * k)], seeds=(0, 1, 2),
                                    experiments=czii_exps, config={"lr": 1e-3, "variant": k}))
    for k in range(13):  # 13 configurations x 3 seeds on byu-synth
        method = ["cnn_regressor", "faster_rcnn", "yolo_unet"][k % 3]
        n += len(write_fake_results(root, methods=[(method, 0.3 + 0.04 * k)], seeds=(0, 1, 2),
                                    split="byu-synth", metric="byu", experiments=byu_exps,
                                    config={"lr": 1e-3, "variant": k}))
    n += len(write_fake_results(root, methods=[("cnn_regressor", 0.5)], seeds=(0,),
                                split="byu-synth", metric="byu", experiments=byu_exps,
                                config={"lr": 2e-3}))
    return n


def _fabricate_predictions(root: Path) -> tuple[Path, Path, int]:
    from cryobench.testing.predictions import (
        fabricate_solution,
        write_scored_results,
        write_solution,
    )

    results, sols = root / "results", root / "solutions"
    czii = fabricate_solution([f"TS_synth_{i}" for i in range(6, 16)], per_class=20)
    byu = fabricate_solution([f"tomo_{i:03d}" for i in range(40)], metric="byu")
    n = 0
    methods = ["unet3d", "unet_per_particle", "vnet_per_particle", "deepfindet",
               "faster_rcnn", "yolo_unet", "plugin"]
    for k in range(26):
        n += len(write_scored_results(results, czii, [(methods[k % 7], 0.45 + 0.018 * k)],
                                      config={"variant": k}))
    for k in range(14):
        n += len(write_scored_results(results, byu, [(methods[k % 3], 0.4 + 0.04 * k)],
                                      split="byu-synth", metric="byu", config={"variant": k}))
    write_solution(sols, "czii-synth", czii)
    write_solution(sols, "byu-synth", byu, metric="byu")
    return results, sols, n


def _timed(fn, *args, **kwargs):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    from cryobench._threads import num_threads
    from cryobench.report.site import build_site
    from cryobench.report.split_report import write_report
    from cryobench.testing.records import write_fake_results

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        import jinja2  # noqa: F401
        import matplotlib.figure  # noqa: F401
        imports = time.perf_counter() - t0

        results, sols, n_pred = _fabricate_predictions(tmp / "pred")
        workers = num_threads()
        timings = {}
        for w in (1, workers) if workers > 1 else (1,):
            os.environ["CRYOBENCH_NUM_THREADS"] = str(w)
            res, wall, cpu = _timed(build_site, [results], tmp / f"site-{w}", n_flips=1000,
                                    solutions=sols, use_data=False)
            timings[w] = wall
            verified = sum(1 for p in res.pages if p.startswith("methods/"))
            print(f"site with curves, {w} process(es): {n_pred} records with predictions, "
                  f"{verified} entries: {wall:.1f} s wall ({cpu:.1f} s CPU in the main "
                  "process)")
        os.environ.pop("CRYOBENCH_NUM_THREADS", None)
        if len(timings) > 1:
            print(f"  {workers} processes / 1 process: {timings[workers] / timings[1]:.2f}")

        n = _fabricate_counts(tmp / "results")
        res, site_s, _ = _timed(build_site, [tmp / "results"], tmp / "site", n_flips=1000)

        one = tmp / "one-split"
        for method, skill in [("unet3d", 0.75), ("unet_per_particle", 0.6),
                              ("vnet_per_particle", 0.55), ("deepfindet", 0.65),
                              ("faster_rcnn", 0.45), ("yolo_unet", 0.7), ("plugin", 0.3)]:
            write_fake_results(one, methods=[(method, skill)], seeds=(0, 1, 2),
                               experiments=[f"TS_synth_{i}" for i in range(6, 16)])
        _, report_s, _ = _timed(write_report, [one], tmp / "report.html", n_flips=1000,
                                use_data=False)
        size_kb = (tmp / "report.html").stat().st_size / 1024

    print(f"site without predictions: {n} records, {len(res.boards)} splits, "
          f"{len(res.pages)} pages: {site_s:.1f} s (target <= 10 s)")
    print(f"report: one split, 7 methods x 3 seeds, HTML {size_kb:.0f} KB: {report_s:.2f} s "
          f"(target <= 5 s)")
    print(f"imports (matplotlib, jinja2): {imports:.2f} s")
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
