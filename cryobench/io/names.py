"""Names that become paths: one rule, checked in one place.

Run names, ``tomo_id`` values, split names, copick object/user/session names and ablation
names end up as one component of a path (``ExperimentRuns/<run>/``, ``splits/<name>-<key>/``).
:func:`safe_component` accepts a name only when it is safe and portable as a single path
component, so a name read from a CSV, JSON or TOML file can never write outside its folder or
collide with another one after some silent rewriting. The rule (also in docs/data.md):

* a non-empty ``str`` of at most :data:`MAX_CHARS` characters and :data:`MAX_BYTES` bytes in
  UTF-8 (the rest of the 255 bytes most file systems allow is left for the prefixes and
  suffixes cryobench adds: ``.<name>.<random>`` temporary siblings, ``curation_0_``, ``.json``);
* not ``.`` or ``..``, and not starting with ``.`` (hidden entries are cryobench's temporary
  siblings) or ``-`` (it would read as an option on a command line);
* no leading or trailing whitespace (``"a"`` and ``"a "`` must not become two runs that look
  the same);
* none of ``/ \\ < > : " | ? *`` (separators and the characters Windows forbids) and no
  control, format or line/paragraph-separator characters (Unicode categories Cc, Cf, Zl, Zp,
  Cs: NUL, newlines, escape sequences, bidirectional overrides, lone surrogates).

Names are never rewritten: a bad name is an error naming the file it came from.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from cryobench.errors import CryobenchError, InputError

__all__ = ["MAX_CHARS", "MAX_BYTES", "FORBIDDEN_CHARACTERS", "name_problem", "safe_component",
           "child_path"]

MAX_CHARS = 128
"""Longest name accepted, in characters."""
MAX_BYTES = 200
"""Longest name accepted, in bytes of UTF-8."""
FORBIDDEN_CHARACTERS = '/\\<>:"|?*'
"""Path separators and the characters Windows forbids in file names."""
_BAD_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a safe path component (see the module docstring), or None if it is."""
    if not isinstance(name, str):
        return f"must be text, not {type(name).__name__}"
    if not name:
        return "is empty"
    if name in (".", ".."):
        return f"{name!r} is not a name"
    if len(name) > MAX_CHARS:
        return f"is {len(name)} characters long (at most {MAX_CHARS})"
    for ch in name:
        if ch in FORBIDDEN_CHARACTERS:
            return f"{_short(name)} contains {ch!r} (no {' '.join(FORBIDDEN_CHARACTERS)})"
        if unicodedata.category(ch) in _BAD_CATEGORIES:
            return f"{_short(name)} contains the control or format character U+{ord(ch):04X}"
    if len(name.encode("utf-8")) > MAX_BYTES:
        return f"is {len(name.encode('utf-8'))} bytes long in UTF-8 (at most {MAX_BYTES})"
    if name[0] == ".":
        return f"{_short(name)} starts with '.'"
    if name[0] == "-":
        return f"{_short(name)} starts with '-'"
    if name != name.strip():
        return f"{_short(name)} has leading or trailing whitespace"
    return None


def _short(name: str, n: int = 40) -> str:
    return repr(name if len(name) <= n else name[:n] + "...")


def safe_component(name: object, what: str, source: str | os.PathLike[str] | None = None, *,
                   error: type[CryobenchError] = InputError) -> str:
    """Return ``name`` unchanged if it is safe as one path component; raise ``error`` otherwise.

    Args:
        name: the candidate name.
        what: what the name is, for the message (``"tomo_id"``, ``"run name"``...), possibly
            with its location (``"tomo_id in data row 3"``).
        source: the file the name came from (the error's path).
        error: the :class:`~cryobench.errors.CryobenchError` subclass to raise
            (:class:`~cryobench.errors.InputError` by default).
    """
    problem = name_problem(name)
    if problem is not None:
        raise error(f"{what} {problem}; a name used in a path must be a plain file name "
                    "(see docs/data.md, 'Names')", source)
    return name  # type: ignore[return-value]


def child_path(root: str | os.PathLike[str], name: object, what: str,
               source: str | os.PathLike[str] | None = None, *,
               error: type[CryobenchError] = InputError) -> Path:
    """``root / name`` after :func:`safe_component`, checked to resolve inside ``root``."""
    root = Path(root)
    path = root / safe_component(name, what, source, error=error)
    real_root = root.resolve()
    if path.resolve().parent != real_root:  # a symlink pointing elsewhere
        raise error(f"{what} {name!r} resolves outside {real_root}", source)
    return path
