"""Write docs/results.md from the official records (leaderboards/results, the untrained
references, leaderboards/verification and the ablation manifests).

Usage (from the repository root)::

    python leaderboards/results_page.py [--flips 9999] [-o docs/results.md]

Everything on the page is computed from the committed files; nothing is typed in by hand except
the prose below. The page says how far the rerun of leaderboards/rerun.py has come.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "leaderboards" / "results"
REFERENCES = ROOT / "leaderboards" / "references" / "untrained"
VERIFICATION = ROOT / "leaderboards" / "verification"

INTRO = """\
# Baseline results at the cpu budget (second-generation splits)

Test-set scores of every built-in method on the second-generation synthetic splits
(`czii-synth-v2`: 24 test tomograms; `byu-synth-v2`: 40, half without a motor; see
[phantoms.md](phantoms.md)) at the `cpu` budget, from the official run records in
`leaderboards/results/`. Each record is one `cryobench run --method M --split S --budget cpu
--seed N`; `python leaderboards/rerun.py` makes them all, one at a time, and resumes where it
stopped. This page is written by `python leaderboards/results_page.py` from those records; the
leaderboard site renders the same records (`cryobench leaderboard build leaderboards/results
-o site`). The first-generation records and their table are archived
([results-v1.md](results-v1.md), `leaderboards/archive/v1/`).

Scores are means over seeds; the 95% interval is over test tomograms and seeds, and a rank is
one more than the number of entries a paired sign-flip test over tomograms separates from it
(Holm-corrected), so entries it cannot separate share a rank
([leaderboards.md](leaderboards.md)). "untrained" is the same pipeline with `--set epochs=0`
(initial random weights, thresholds still tuned on the validation runs; records in
`leaderboards/references/untrained/`): the floor each trained network must clear. Times depend
on the machine and its load (each record stores its environment); scores do not.
"""


def _rerun_module():
    spec = importlib.util.spec_from_file_location("rerun", ROOT / "leaderboards" / "rerun.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("rerun", mod)
    spec.loader.exec_module(mod)
    return mod


def _records(root: Path) -> list[Any]:
    from cryobench.errors import ResultsError
    from cryobench.report.loading import load_records

    try:
        recs, _ = load_records([root])
    except ResultsError:
        return []
    return recs


def _fmt(x: float | None, d: int = 3) -> str:
    return "–" if x is None else f"{x:.{d}f}"


def _median(values: Sequence[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return statistics.median(vals) if vals else None


def progress_text() -> str:
    """How far the official rerun has come (from the plan and the files on disk)."""
    rr = _rerun_module()
    steps = rr.plan()
    runs = [s for s in steps if s.seed is not None and not s.verify]
    done = [s for s in runs if s.done()]
    ver = [s for s in steps if s.verify]
    ver_done = [s for s in ver if s.done()]
    abl = [s for s in steps if s.argv[0] == "ablate"]
    recs = _records(RESULTS) + _records(REFERENCES)
    v2 = [r for r in recs if r.split.endswith("-v2") or "-v2-" in r.split]
    total = sum(float(r.timings.get("total_s", 0.0)) for r in v2)
    started = min((r.started_at for r in v2), default=None)
    finished = max((r.finished_at for r in v2), default=None)
    lines = ["## The rerun", "",
             f"{len(done)} of the {len(runs)} planned baseline and reference runs are recorded, "
             f"{len(ver_done)} of {len(ver)} verifications, and the {len(abl)} ablations "
             "follow them (`python leaderboards/rerun.py --list` shows each step). "
             f"The {len(v2)} records of the second-generation splits (ablation cells included) "
             f"took {total / 3600:.1f} h of run time (the sum of their `timings.total_s`)"
             + (f", made between {started[:16]} and {finished[:16]} UTC" if started else "")
             + "; generating `czii-synth-v2` adds about 4 min per machine, `byu-synth-v2` "
             "about 2 min, and each SNR split of the SNR ablation 4 min."]
    machines = sorted({(r.environment.get("device_name"), r.environment.get("cpu_count"),
                        r.environment.get("torch"), r.environment.get("numpy_simd"))
                       for r in v2})
    if machines:
        lines += ["", "Machines: " + "; ".join(
            f"{n} CPUs ({name}), torch {torch}, numpy kernels {simd or 'unrecorded'}"
            for name, n, torch, simd in machines) + ". Every run used float32 on CPU with the "
            "kernels capped at AVX2 ([running.md](running.md#the-same-bytes-on-any-cpu))."]
    return "\n".join(lines)


def verification_table() -> str:
    files = sorted(VERIFICATION.rglob("*.txt")) if VERIFICATION.is_dir() else []
    if not files:
        return ("## Verification\n\nNo record has been rerun with `cryobench verify` yet (the "
                "rerun's phase 4).")
    rows = ["| split | method | record | result | rerun time |", "| --- | --- | --- | --- | ---: |"]
    differs = False
    for f in files:
        text = f.read_text().splitlines()
        rec = text[0].removeprefix("$ cryobench verify ").strip() if text else "?"
        result = next((t for t in text if t.startswith(("verified:", "mismatch:"))), "?")
        identical = result.startswith("verified:")
        differs = differs or not identical
        verdict = "byte-identical" if identical else "**differs**"
        tail = text[-1] if text else ""
        secs = tail.split(";")[1].strip() if tail.count(";") >= 2 else "?"
        method = f.stem.rsplit("-", 1)[0]
        rows.append(f"| {f.parent.name} | `{method}` | `{rec}` | {verdict} | {secs} |")
    return ("## Verification\n\n`cryobench verify RECORD_DIR` reruns a record with its config, "
            "seed and data and compares the predictions byte for byte (the rerun's phase 4, one "
            "seed-0 record per method, more where one differs; the outputs are in "
            "`leaderboards/verification/`).\n\n" + "\n".join(rows)
            + ("\n\nWhat is known of the records that differ: [running.md]"
               "(running.md#the-same-bytes-on-any-cpu)." if differs else ""))


def detail_table(entries: Sequence[Any], refs: Sequence[Any]) -> str:
    """Per entry: seeds, score per seed, untrained reference, times and memory."""
    untrained = {(r.split, r.method): r.score for r in refs}
    rows = ["| method | seeds | score per seed | mean | untrained (`epochs=0`) | fit s (median) "
            "| predict s per tomogram (median) | peak RSS GB | config |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for e in entries:
        per_tomo = _median([float(r.timings["predict_s"]) / max(1, r.n_test_runs)
                            for r in e.records if "predict_s" in r.timings])
        peak = _median([r.peak_memory_mb for r in e.records])
        ref = untrained.get((e.split, e.method))
        rows.append(
            f"| `{e.method}` | {', '.join(map(str, e.seeds))} | "
            + " / ".join(_fmt(s) for s in e.seed_scores)
            + f" | **{_fmt(e.score)}** | {_fmt(ref) if ref is not None else 'n/a'} | "
            f"{_fmt(e.timing('fit_s'), 0)} | {_fmt(per_tomo, 1)} | "
            f"{_fmt(None if peak is None else peak / 1024, 1)} | `{e.config_hash[:12]}` |")
    return "\n".join(rows)


def localization_table(entries: Sequence[Any]) -> str:
    """Median centre distance (and orientation error) of matched picks per class."""
    located = [e for e in entries
               if any(v.get("distance_median") is not None for v in e.per_class.values())]
    if not located:
        return ""
    classes = [c for c in located[0].per_class if c]
    head = "| method | " + " | ".join(classes) + " |"
    rows = [head, "| --- | " + " | ".join("---:" for _ in classes) + " |"]
    for e in located:
        cells = []
        for c in classes:
            m = e.per_class.get(c, {})
            d, a = m.get("distance_median"), m.get("angle_median")
            cells.append("–" if d is None else f"{d:.0f} Å" + (f" / {a:.0f}°" if a is not None
                                                               else ""))
        rows.append(f"| `{e.method}` | " + " | ".join(cells) + " |")
    return ("Localization of the matched picks: the median centre distance per class, mean over "
            "seeds (and, where the predictions carry orientations, the median symmetry-aware "
            "orientation error):\n\n" + "\n".join(rows))


def ablations_text(loaded: Any) -> str:
    from cryobench.report.ablation import ablation_text

    parts = []
    for abl in sorted(loaded.ablations, key=lambda a: a.name):
        parts.append(f"## Ablation: {abl.name}\n\n`cryobench ablate "
                     f"leaderboards/ablations/{abl.name}.toml --results leaderboards/results`\n\n"
                     "```\n" + ablation_text(abl).rstrip() + "\n```")
    if not parts:
        return ("## Ablations\n\nThe shipped ablations (`loss`, `augment`, `dropout`, `centernet`, "
                "`snr_v2`) are the rerun's last phase; none has a manifest in "
                "`leaderboards/results/ablations/` yet.")
    return "\n\n".join(parts)


def build(n_flips: int) -> str:
    from cryobench.report.leaderboard import split_markdown
    from cryobench.report.site import leaderboard_entries, load_entries
    from cryobench.report.summary import group_by_split

    out = [INTRO, progress_text()]
    if any(RESULTS.rglob("record.json")):
        loaded = load_entries([RESULTS], n_flips)
        refs = _records(REFERENCES)
        for split, entries in sorted(group_by_split(leaderboard_entries(loaded)).items()):
            n_test = max(r.n_test_runs for e in entries for r in e.records)
            out.append(split_markdown(split, entries).replace(
                f"## {split} (", f"## `{split}` ({n_test} test tomograms; ", 1))
            out.append(detail_table(entries, refs))
            loc = localization_table(entries)
            if loc:
                out.append(loc)
        out.append(verification_table())
        out.append(ablations_text(loaded))
    else:
        out.append("No official record of the second-generation splits is committed yet.")
    return "\n\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flips", type=int, default=9999)
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "docs" / "results.md")
    args = ap.parse_args(argv)
    from cryobench.io.atomic import atomic_write_text

    atomic_write_text(args.out, build(args.flips))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
