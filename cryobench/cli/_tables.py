"""One per-class table for `cryobench score` and `cryobench run`, with a one-line legend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["class_table", "legend", "printable"]


def printable(text: str) -> str:
    """``text`` safe for a terminal: control and format characters (escape sequences, carriage
    returns, bidi overrides...) shown as ``\\xNN`` / ``\\uNNNN`` instead of acting on it."""
    import unicodedata

    out = []
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def _num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return printable(str(v))


def class_table(per_class: Mapping[str, Mapping[str, Any]], beta: float,
                ap: Mapping[str, float | None] | None = None) -> list[str]:
    """Rows ``particle_type, weight, tp, fp, fn, precision, recall, F<beta>[, AP]`` (numbers to
    3 decimals), one per class in the given order."""
    header = ["particle_type", "weight", "tp", "fp", "fn", "precision", "recall", f"F{beta:g}"]
    if ap is not None:
        header.append("AP")
    rows = []
    for name, v in per_class.items():
        w = v.get("weight")
        row = [name, "-" if w is None else f"{float(w):g}", v["tp"], v["fp"], v["fn"],
               float(v["precision"]), float(v["recall"]), float(v["fbeta"])]
        if ap is not None:
            row.append(ap.get(name))
        rows.append([_num(c) for c in row])
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()

    return [line(header)] + [line(r) for r in rows]


def legend(metric: str, beta: float, *, has_ap: bool = False,
           zero_weight: list[str] | None = None, distance_multiplier: float = 0.5,
           distance_angstrom: float = 1000.0) -> str:
    """One line that says what the columns mean."""
    b = f"{beta:g}"
    parts = [f"F{b}: F-beta with beta {b} (recall counts {beta * beta:g}x as much as "
             "precision)"]
    if metric == "czii":
        parts.append("weight: the class's share of the score"
                     + (f" ({', '.join(zero_weight)}: weight 0, reported but not scored, as in "
                        "the CZII challenge)" if zero_weight else ""))
        parts.append(f"a tp is a particle with a pick within {distance_multiplier:g} x its "
                     "radius")
    else:
        parts.append(f"a tp is a motor with a prediction within {distance_angstrom:g} Å")
    if has_ap:
        parts.append("AP: average precision over IoU 0.50:0.95, ranked by pick score")
    return "; ".join(parts) + "."
