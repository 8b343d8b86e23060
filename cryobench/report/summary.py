"""Group run records into entries (one per split, method and config) and summarise them.

An entry holds every seed of one configuration. Its score is the mean over seeds of the score
recomputed from the records' counts, with a 95% interval over test experiments *and* seeds
(:func:`cryobench.report.stats.score_interval`). Entries of a split are ranked only where a
paired comparison separates them (:func:`cryobench.report.stats.rank_cubes`). Anything
that would make that mean misleading (missing seeds, missing classes, different experiments or
scoring parameters across seeds, a record whose stored score disagrees with its counts) becomes a
*flag* on the entry; flagged entries are shown but never ranked.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cryobench.errors import ResultsError
from cryobench.report.localization import localization_columns
from cryobench.report.stats import (
    CountCube,
    Ranking,
    ScoreInterval,
    class_metrics,
    rank_cubes,
    score_interval,
)
from cryobench.runner.record import RunRecord

__all__ = ["Entry", "summarise", "entry_from_records", "group_by_split", "one_split", "entry_id",
           "safe_name",
           "rank_entries", "label"]

SCORE_TOLERANCE = 1e-6


def safe_name(*parts: str) -> str:
    """A file name for ``parts``: readable (characters other than letters, digits, ``-_.``
    become ``-``) and unique (a digest of the exact parts follows), so ``czii/synth`` and
    ``czii-synth`` never share a page."""
    import hashlib

    readable = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in "--".join(parts))
    digest = hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:8]
    return f"{readable[:80].strip('.')}-{digest}"


def entry_id(split: str, method: str, config_hash: str) -> str:
    """A unique, file-name-safe id of an entry: ``<split>--<method>--<hash12>-<digest>``."""
    return safe_name(split, method, str(config_hash)[:12]) if config_hash else safe_name(
        split, method)


@dataclass
class Entry:
    """One configuration of one method on one split, over its seeds."""

    split: str
    method: str
    config_hash: str
    metric: str
    task: str | None
    budget: str | None
    config: dict[str, Any]
    records: list[RunRecord]
    expected_seeds: list[int]
    cube: CountCube
    seed_scores: list[float]
    score: float
    interval: tuple[float, float] | None
    per_class: dict[str, dict[str, float | None]]
    flags: list[str] = field(default_factory=list)
    rank: int | None = None
    tie_group: int | None = None
    interval_info: ScoreInterval | None = None
    """The interval's details (standard errors, degrees of freedom, whether it contains the
    seed-to-seed spread)."""
    tied_with: list[str] = field(default_factory=list)
    """Labels of the entries of the split this one is not separated from."""
    rank_note: str = ""
    """Why the split's board separates no entry, when it cannot."""
    checks: list[Any] = field(default_factory=list)
    """One :class:`~cryobench.report.verification.Check` per record, once checked."""

    @property
    def verification(self) -> str:
        """``verified``, ``mismatch``, ``unchecked`` or ``partly verified`` over the seeds."""
        kinds = {c.status for c in self.checks}
        if not kinds:
            return "unchecked"
        if "mismatch" in kinds:
            return "mismatch"
        if kinds == {"verified"}:
            return "verified"
        return "partly verified" if "verified" in kinds else "unchecked"

    @property
    def verification_detail(self) -> str:
        return "; ".join(f"seed {r.seed}: {c.status}" + (f" ({c.detail})" if c.detail else "")
                         for r, c in zip(self.records, self.checks, strict=False))

    @property
    def id(self) -> str:
        return entry_id(self.split, self.method, self.config_hash)

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.records]

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    @property
    def date(self) -> str:
        return max((r.finished_at for r in self.records), default="")[:10]

    @property
    def versions(self) -> str:
        return ", ".join(sorted({r.cryobench_version or "?" for r in self.records}))

    def timing(self, key: str) -> float | None:
        vals = [r.timings.get(key) for r in self.records]
        vals = [float(v) for v in vals if isinstance(v, (int, float))]
        return float(np.mean(vals)) if vals else None

    @property
    def peak_memory_mb(self) -> float | None:
        vals = [r.peak_memory_mb for r in self.records]
        vals = [float(v) for v in vals if isinstance(v, (int, float))]
        return max(vals) if vals else None

    @property
    def device(self) -> str:
        return ", ".join(sorted({r.device for r in self.records}))

    def diagnostics(self) -> Any:
        """The metric-gaming diagnostics in the records, as a per-class
        :class:`~cryobench.report.diagnostics_table.DiagnosticsTable` over the seeds (saying
        which seeds lack them), or None when no record has any."""
        from cryobench.report.diagnostics_table import diagnostics_table

        blocks = {r.seed: r.diagnostics for r in self.records if r.diagnostics}
        missing = {r.seed: "its record has no diagnostics" for r in self.records
                   if not r.diagnostics}
        return diagnostics_table(self.seeds, blocks, missing)

    def to_dict(self) -> dict[str, Any]:
        """The entry as plain JSON-ready data (what the site's JSON holds)."""
        return {
            "id": self.id, "split": self.split, "method": self.method,
            "config_hash": self.config_hash, "metric": self.metric, "task": self.task,
            "budget": self.budget, "config": self.config, "rank": self.rank,
            "tie_group": self.tie_group, "score": _f(self.score),
            "interval": None if self.interval is None else [_f(x) for x in self.interval],
            "interval_info": None if self.interval_info is None else {
                k: (_f(v) if isinstance(v, float) else v)
                for k, v in self.interval_info.to_dict().items()},
            "tied_with": self.tied_with, "rank_note": self.rank_note,
            "verification": self.verification,
            "checks": [{"seed": r.seed, "status": c.status, "detail": c.detail,
                        "rescored": c.rescored}
                       for r, c in zip(self.records, self.checks, strict=False)],
            "seeds": self.seeds, "expected_seeds": self.expected_seeds,
            "seed_scores": [_f(x) for x in self.seed_scores],
            "per_class": self.per_class, "flags": self.flags, "date": self.date,
            "cryobench_version": self.versions, "device": self.device,
            "timings": {k: self.timing(k) for k in ("fit_s", "predict_s", "score_s", "total_s")},
            "peak_memory_mb": self.peak_memory_mb,
            "diagnostics": None if (d := self.diagnostics()) is None else d.to_dict(),
            "experiments": self.cube.experiments,
        }


def _f(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 6)


def _build_entry(key: tuple[str, str, str], recs: list[RunRecord],
                 expected_seeds: Sequence[int], n_flips: int, test_seed: int) -> Entry:
    split, method, chash = key
    flags: list[str] = []
    by_seed: dict[int, RunRecord] = {}
    for r in sorted(recs, key=lambda r: (r.seed, r.finished_at)):
        s = r.seed
        if s in by_seed:
            flags.append(f"seed {s} recorded more than once (latest kept)")
        by_seed[s] = r
    recs = [by_seed[s] for s in sorted(by_seed)]
    weights, beta = recs[0].weights, recs[0].beta
    for r in recs[1:]:
        if (r.weights, r.beta) != (weights, beta):
            flags.append(f"seed {r.seed} was scored with different parameters")
    metrics = {r.metric for r in recs}
    if len(metrics) > 1:
        flags.append(f"seeds were scored with different metrics ({', '.join(sorted(metrics))})")
    seedless = all(not r.seeded for r in recs)
    missing = sorted(set(expected_seeds) - set(by_seed))
    if seedless:
        missing = []  # a deterministic method: one seed is every seed
        expected_seeds = sorted(by_seed)
    if missing:
        flags.append(f"missing seed(s) {', '.join(map(str, missing))} "
                     f"(mean over {len(recs)} of {len(set(expected_seeds) | set(by_seed))})")
    class_sets = [{c.particle_type for c in r.counts} for r in recs]
    exp_sets = [{c.experiment for c in r.counts} for r in recs]
    all_classes = set().union(*class_sets)
    needed = {c for c, w in weights.items() if w > 0}
    for r, cs in zip(recs, class_sets, strict=True):
        gone = sorted((needed | all_classes) - cs)
        if gone:
            flags.append(f"seed {r.seed} has no counts for class(es) {', '.join(gone)}")
    if any(es != exp_sets[0] for es in exp_sets[1:]):
        flags.append("seeds were scored on different experiments")
    cube = CountCube.from_rows([r.seed for r in recs], [r.count_rows() for r in recs],
                               weights, beta, rule="byu" if recs[0].metric == "byu" else "czii")
    cube.seedless = seedless and len(recs) == 1
    seed_scores = cube.seed_scores()
    for r, s in zip(recs, seed_scores, strict=True):
        if abs(r.score - float(s)) > SCORE_TOLERANCE:
            flags.append(f"seed {r.seed}: stored score {r.score:.4f} differs from its "
                         f"counts ({float(s):.4f})")
    info = score_interval(cube) if n_flips else None
    interval = None if info is None else info.bounds
    sums = cube.sums()
    m = class_metrics(sums, beta, cube.rule)
    per_class: dict[str, dict[str, float | None]] = {}
    for k, cls in enumerate(cube.classes):
        aps = [r.class_ap(cls) for r in recs]
        aps = [a for a in aps if a is not None]
        per_class[cls] = {
            "weight": float(cube.weights[k]),
            "precision": _f(m["precision"][:, k].mean()),
            "recall": _f(m["recall"][:, k].mean()),
            "fbeta": _f(m["fbeta"][:, k].mean()),
            "f1": _f(m["f1"][:, k].mean()),
            "ap": _f(float(np.mean(aps))) if aps else None,
            "tp": _f(sums[:, k, 0].mean()), "fp": _f(sums[:, k, 1].mean()),
            "fn": _f(sums[:, k, 2].mean()),
            **localization_columns(recs, cls),
        }
    first = recs[0]
    return Entry(split=split, method=method, config_hash=chash,
                 metric=first.metric, task=first.task,
                 budget=first.budget, config=dict(first.config),
                 records=recs, expected_seeds=sorted(set(expected_seeds) | set(by_seed)),
                 cube=cube, seed_scores=[float(x) for x in seed_scores],
                 score=float(np.mean(seed_scores)) if len(seed_scores) else float("nan"),
                 interval=interval, per_class=per_class, flags=flags, interval_info=info)


def entry_from_records(records: Sequence[RunRecord], expected_seeds: Sequence[int],
                       n_flips: int = 9999, test_seed: int = 0) -> Entry:
    """One entry from the records of one (split, method, config) (unranked)."""
    r = records[0]
    return _build_entry((r.split, r.method, r.config_hash),
                        list(records), expected_seeds, n_flips, test_seed)


def summarise(records: Iterable[RunRecord], expected_seeds: Sequence[int] | None = None,
              n_flips: int = 9999, test_seed: int = 0, rank: bool = True) -> list[Entry]:
    """One :class:`Entry` per (split, method, config hash), ranked within each split.

    Args:
        records: validated run records.
        expected_seeds: the seeds every entry should have; default: all seeds seen in its split.
        n_flips: random sign flips of a paired comparison when its experiments are too many to
            enumerate every flip (0 disables intervals and ranks: every entry shares rank 1).
        test_seed: seed of those flips (the ranks are reproducible).
        rank: rank the entries of each split (False: leave them unranked, e.g. to rank a
            selection of them later with :func:`rank_entries`).
    """
    groups: dict[tuple[str, str, str], list[RunRecord]] = defaultdict(list)
    for r in records:
        groups[(r.split, r.method, r.config_hash)].append(r)
    split_seeds: dict[str, set[int]] = defaultdict(set)
    for (split, _, _), recs in groups.items():
        split_seeds[split] |= {r.seed for r in recs}
    entries = [
        _build_entry(k, v, list(expected_seeds) if expected_seeds is not None
                     else sorted(split_seeds[k[0]]), n_flips, test_seed)
        for k, v in sorted(groups.items())
    ]
    if not rank:
        return entries
    out: list[Entry] = []
    for split_entries in group_by_split(entries).values():
        out += rank_entries(split_entries, n_flips, test_seed)
    return out


def label(e: Entry) -> str:
    """How an entry is named in tie lists: ``method (hash8)``."""
    return f"{e.method} ({e.config_hash[:8]})"


def rank_entries(entries: list[Entry], n_flips: int = 9999, test_seed: int = 0) -> list[Entry]:
    """Sort by score and rank the unflagged entries where paired comparisons separate them.

    An entry's rank is one more than the number of entries that score higher *and* are
    significantly better by :func:`~cryobench.report.stats.paired_comparison` (Holm-corrected
    over all pairs; an entry with fewer than two seeds is never separated from another), so
    entries nothing beats share rank 1. ``tied_with`` lists the entries it is not separated
    from; ``tie_group`` is its rank. Flagged entries follow, unranked. With ``n_flips=0`` no
    comparison is made and every unflagged entry gets rank 1.
    """
    ok = sorted((e for e in entries if not e.flagged), key=lambda e: (-e.score, e.method))
    flagged = sorted((e for e in entries if e.flagged), key=lambda e: (-e.score, e.method))
    ranking = _ranking(ok, n_flips, test_seed)
    for i, e in enumerate(ok):
        if ranking is None:
            e.rank, e.tied_with = 1, [label(o) for o in ok if o is not e]
            e.rank_note = ("not compared (--flips 0)" if not n_flips and len(ok) > 1
                           else e.rank_note)
        else:
            e.rank = ranking.ranks[i]
            e.tied_with = [label(ok[j]) for j in ranking.tied_with[i]]
            e.rank_note = "" if ranking.can_separate else ranking.reason
        e.tie_group = e.rank
    for e in flagged:
        e.rank = e.tie_group = None
        e.tied_with = []
    entries[:] = ok + flagged
    return entries


def _ranking(ok: list[Entry], n_flips: int, test_seed: int) -> Ranking | None:
    if len(ok) < 2 or not n_flips:
        return None
    from cryobench.errors import CryobenchError

    try:
        return rank_cubes([e.cube for e in ok], n_flips=n_flips, seed=test_seed)
    except CryobenchError as exc:  # entries that cannot be paired (other classes, parameters)
        for e in ok:
            e.rank_note = f"not compared: {exc.message}"
        return None


def group_by_split(entries: Iterable[Entry]) -> dict[str, list[Entry]]:
    out: dict[str, list[Entry]] = defaultdict(list)
    for e in entries:
        out[e.split].append(e)
    return dict(sorted(out.items()))


def one_split(records: Sequence[RunRecord], split: str | None = None,
              source: str | None = None) -> tuple[str, list[RunRecord]]:
    """The records of one split: ``split`` if given, else the only split present.

    Raises:
        ResultsError: the records span several splits and none was chosen, or none is of ``split``.
    """
    splits = sorted({r.split for r in records})
    if split is None:
        if len(splits) > 1:
            raise ResultsError(f"records come from {len(splits)} splits ({', '.join(splits)}); "
                               "choose one with --split", source)
        split = splits[0]
    chosen = [r for r in records if r.split == split]
    if not chosen:
        raise ResultsError(f"no records of split {split!r} (found: {', '.join(splits)})", source)
    return split, chosen


def config_json(config: dict[str, Any]) -> str:
    return json.dumps(config, indent=2, sort_keys=True, default=str)
