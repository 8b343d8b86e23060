"""Leaderboard tables: one per split, ranked with tie groups, exported as Markdown or CSV.

Rows come from :func:`cryobench.report.summary.summarise`; a row whose seeds or classes are
incomplete keeps its numbers but is flagged and left unranked (never silently averaged).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from cryobench.report.summary import Entry, group_by_split

__all__ = ["leaderboard_rows", "classes_of", "to_markdown", "to_csv", "fmt_score",
           "fmt_interval"]


def fmt_score(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def fmt_interval(iv: Sequence[float] | None, digits: int = 3) -> str:
    return "–" if iv is None else f"[{iv[0]:.{digits}f}, {iv[1]:.{digits}f}]"


def classes_of(entries: Iterable[Entry]) -> list[str]:
    """Union of the classes of ``entries`` in first-seen order."""
    seen: dict[str, None] = {}
    for e in entries:
        for c in e.per_class:
            seen.setdefault(c)
    return list(seen)


def leaderboard_rows(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    """One flat dict per entry (already ranked): the columns of every leaderboard export."""
    classes = classes_of(entries)
    rows = []
    for e in entries:
        row: dict[str, Any] = {
            "split": e.split,
            "rank": "" if e.rank is None else e.rank,
            "method": e.method,
            "score": round(e.score, 4),
            "ci_low": None if e.interval is None else round(e.interval[0], 4),
            "ci_high": None if e.interval is None else round(e.interval[1], 4),
        }
        for c in classes:
            v = e.per_class.get(c, {}).get("fbeta")
            row[f"F:{c}"] = None if v is None else round(float(v), 4)
        row.update({
            "seeds": " ".join(map(str, e.seeds)),
            "n_seeds": len(e.seeds),
            "budget": e.budget or "",
            "date": e.date,
            "cryobench_version": e.versions,
            "config_hash": e.config_hash[:12],
            "flags": "; ".join(e.flags),
        })
        rows.append(row)
    return rows


def to_csv(entries: Sequence[Entry]) -> str:
    """All splits' leaderboards in one CSV (one row per entry, a ``split`` column)."""
    buf = io.StringIO()
    rows: list[dict[str, Any]] = []
    for split_entries in group_by_split(entries).values():
        rows += leaderboard_rows(split_entries)
    fields: dict[str, None] = {}
    for r in rows:
        for k in r:
            fields.setdefault(k)
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


def _md_escape(text: str) -> str:
    from cryobench.report.render import md_escape

    return md_escape(text)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]],
              align: Sequence[str] | None = None) -> str:
    align = align or ["l"] * len(header)
    sep = ["---:" if a == "r" else ":---:" if a == "c" else "---" for a in align]
    lines = ["| " + " | ".join(map(_md_escape, header)) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(_md_escape(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def split_markdown(split: str, entries: Sequence[Entry]) -> str:
    """The leaderboard of one split as a Markdown table (with a legend for flags)."""
    classes = classes_of(entries)
    metric = entries[0].metric if entries else ""
    beta = entries[0].cube.beta if entries else 0
    header = ["rank", "method", "score", "95% CI", *[f"F{beta:g} {c}" for c in classes],
              "seeds", "date", "version", "config"]
    rows = []
    notes = []
    for e in entries:
        rank = "–" if e.rank is None else str(e.rank)
        name = e.method
        if e.flags:
            notes.append(f"{len(notes) + 1}. {_md_escape(e.method)} ({e.config_hash[:12]}): "
                         + _md_escape("; ".join(e.flags)))
            name = f"{e.method} ⚠{len(notes)}"
        rows.append([rank, name, fmt_score(e.score), fmt_interval(e.interval),
                     *[fmt_score(e.per_class.get(c, {}).get("fbeta")) for c in classes],
                     ",".join(map(str, e.seeds)), e.date, e.versions, e.config_hash[:12]])
    align = ["r", "l", "r", "c", *["r"] * len(classes), "l", "l", "l", "l"]
    out = [f"## {_md_escape(split)} ({metric})", "", _md_table(header, rows, align)]
    if notes:
        out += ["", "Flagged rows (not ranked):", "", *notes]
    note = next((e.rank_note for e in entries if e.rank_note), "")
    out += ["", "Score: mean over seeds; 95% CI: over test experiments and seeds. A row's rank is "
            "one more than the number of rows significantly better than it (paired comparison, "
            "Holm-corrected), so rows not separated share a rank."
            + (f" {_md_escape(note)}." if note else "")]
    return "\n".join(out)


def to_markdown(entries: Sequence[Entry]) -> str:
    """Every split's leaderboard as Markdown."""
    parts = [split_markdown(split, es) for split, es in group_by_split(entries).items()]
    return "\n\n".join(parts) + "\n"
