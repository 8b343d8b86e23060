"""Speed of the leaderboard site and the split report (targets: site for 100 runs <= 10 s,
report for one split <= 5 s).

Builds fabricated run records (schema v1, realistic counts; see
:mod:`cryobench.testing.records`) in a temporary directory, then times, in this process:

* ``build_site`` over 100 records (2 splits, 34 configurations, 1000 bootstrap resamples each),
* ``write_report`` for one split (7 methods x 3 seeds) as HTML, without the data-dependent
  figures (those depend on the split's data, not on the report code).

Run: ``python benchmarks/bench_site.py``. Prints the measured figures.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")


def _fabricate(root: Path) -> int:
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


def main() -> None:
    from cryobench.report.site import build_site
    from cryobench.report.split_report import write_report
    from cryobench.testing.records import write_fake_results

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = _fabricate(tmp / "results")
        # warm the imports (matplotlib, jinja2) so the figures time the work itself
        t0 = time.perf_counter()
        import jinja2  # noqa: F401
        import matplotlib.figure  # noqa: F401
        imports = time.perf_counter() - t0

        t0 = time.perf_counter()
        res = build_site([tmp / "results"], tmp / "site", n_flips=1000)
        site_s = time.perf_counter() - t0
        pages = len(res.pages)

        one = tmp / "one-split"
        for method, skill in [("unet3d", 0.75), ("unet_per_particle", 0.6),
                              ("vnet_per_particle", 0.55), ("deepfindet", 0.65),
                              ("faster_rcnn", 0.45), ("yolo_unet", 0.7), ("plugin", 0.3)]:
            write_fake_results(one, methods=[(method, skill)], seeds=(0, 1, 2),
                               experiments=[f"TS_synth_{i}" for i in range(6, 16)])
        t0 = time.perf_counter()
        write_report([one], tmp / "report.html", n_flips=1000, use_data=False)
        report_s = time.perf_counter() - t0
        size_kb = (tmp / "report.html").stat().st_size / 1024

    print(f"imports (matplotlib, jinja2): {imports:.2f} s")
    print(f"site: {n} runs, {len(res.boards)} splits, {pages} pages: {site_s:.2f} s "
          f"(target <= 10 s)")
    print(f"report: one split, 7 methods x 3 seeds, HTML {size_kb:.0f} KB: {report_s:.2f} s "
          f"(target <= 5 s)")


if __name__ == "__main__":
    main()
