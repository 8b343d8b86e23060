"""The method registry: every method (built-in or plugin) is a ``cryobench.methods`` entry point.

A plugin package declares, in its ``pyproject.toml``::

    [project.entry-points."cryobench.methods"]
    my_method = "my_package.module:MyMethod"

Listing is lazy: :func:`list_methods` reads each method's ``name``, ``description``, ``tasks`` and
``extra`` from the target module's *source* with :mod:`ast` (never executing it), so
``cryobench methods list`` imports no torch. Only :func:`get_method` imports the class. A plugin
whose source is missing, unparsable or imports a module that is not installed is listed as broken
with its error; the others keep working.

Methods can also be registered in-process with :func:`register` (notebooks, tests).
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryobench.errors import MethodError

__all__ = [
    "GROUP",
    "MethodInfo",
    "list_methods",
    "method_info",
    "get_method",
    "register",
    "unregister",
    "missing_extra",
]

GROUP = "cryobench.methods"
"""The entry-point group methods register in."""

_DEFAULT_TASKS: tuple[str, ...] = ("particles",)
_META_ATTRS = ("name", "description", "tasks", "extra")


@dataclass(frozen=True)
class MethodInfo:
    """What the registry knows about a method without importing it.

    Attributes:
        name: registry name (the entry-point name).
        target: ``"module:Class"``.
        description: one-line description (``description`` attribute or docstring's first line).
        tasks: tasks the method supports (``particles``, ``motor``).
        extra: the cryobench extra it needs, or None.
        dist: the distribution that provides it (None for in-process registrations).
        error: why the plugin is broken, or None when it looks loadable.
    """

    name: str
    target: str
    description: str = ""
    tasks: tuple[str, ...] = _DEFAULT_TASKS
    extra: str | None = None
    dist: str | None = None
    error: str | None = None
    extra_missing: tuple[str, ...] = field(default=())

    @property
    def broken(self) -> bool:
        return self.error is not None


# In-process registrations: name -> class.
_LOCAL: dict[str, type] = {}


def register(cls: type, name: str | None = None) -> type:
    """Register a method class in this process (also usable as a class decorator)."""
    key = name or getattr(cls, "name", "") or cls.__name__
    _LOCAL[key] = cls
    return cls


def unregister(name: str) -> None:
    """Remove an in-process registration (no error when absent)."""
    _LOCAL.pop(name, None)


# ----- extras --------------------------------------------------------------------------------
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def _normalise(dist_name: str) -> str:
    return re.sub(r"[-_.]+", "-", dist_name).lower()


def missing_extra(extra: str | None) -> tuple[str, ...]:
    """Distributions required by cryobench's ``extra`` that are not installed (empty if fine)."""
    if not extra:
        return ()
    try:
        reqs = importlib.metadata.requires("cryobench") or []
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a tree
        return ()
    missing: list[str] = []
    for req in reqs:
        marker = _EXTRA_MARKER.search(req)
        if not marker or _normalise(marker.group(1)) != _normalise(extra):
            continue
        m = _REQ_NAME.match(req)
        if not m:  # pragma: no cover
            continue
        try:
            importlib.metadata.version(m.group(1))
        except importlib.metadata.PackageNotFoundError:
            missing.append(m.group(1))
    return tuple(dict.fromkeys(missing))


def _extra_error(name: str, extra: str, missing: tuple[str, ...]) -> MethodError:
    return MethodError(
        f"method {name!r} needs the {extra!r} extra ({', '.join(missing)} not installed): "
        f"pip install 'cryobench[{extra}]'"
    )


# ----- reading metadata without importing ----------------------------------------------------
def _entry_points() -> list[importlib.metadata.EntryPoint]:
    eps = importlib.metadata.entry_points(group=GROUP)
    out: list[importlib.metadata.EntryPoint] = []
    seen: set[tuple[str, str]] = set()
    for ep in eps:
        if (ep.name, ep.value) in seen:  # the same dist found twice on sys.path
            continue
        seen.add((ep.name, ep.value))
        out.append(ep)
    return out


def _find_source(module: str) -> Path:
    """The source file of ``module``, located without executing any package ``__init__``."""
    loaded = sys.modules.get(module)
    if loaded is not None and getattr(loaded, "__file__", None):
        return Path(loaded.__file__)
    parts = module.split(".")
    spec = importlib.util.find_spec(parts[0])  # top-level lookup runs no module code
    for i in range(1, len(parts)):
        if spec is None or not spec.submodule_search_locations:
            break
        spec = importlib.machinery.PathFinder.find_spec(
            ".".join(parts[: i + 1]), list(spec.submodule_search_locations)
        )
    if spec is None:
        raise ModuleNotFoundError(f"No module named {module!r}")
    origin = spec.origin
    if origin is None or not origin.endswith(".py"):
        raise ImportError(f"no Python source for module {module!r}")
    return Path(origin)


def _literal(node: ast.AST) -> Any:
    return ast.literal_eval(node)


def _class_attrs(cls_node: ast.ClassDef) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for stmt in cls_node.body:
        targets: list[ast.expr] = []
        value: ast.AST | None = None
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        for t in targets:
            if isinstance(t, ast.Name) and t.id in _META_ATTRS:
                try:
                    attrs[t.id] = _literal(value)
                except ValueError:
                    attrs[t.id] = _Unknown
    doc = ast.get_docstring(cls_node)
    if doc:
        attrs.setdefault("__doc__", doc.strip().splitlines()[0])
    return attrs


class _Unknown:
    """Marker: the attribute exists but is not a literal (needs an import to know)."""


def _top_level_imports(tree: ast.Module) -> list[str]:
    """Absolute modules imported unconditionally at module level (not in try/if blocks)."""
    names: list[str] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Import):
            names += [a.name for a in stmt.names]
        elif isinstance(stmt, ast.ImportFrom) and stmt.level == 0 and stmt.module:
            names.append(stmt.module)
    return names


def _check_imports_exist(tree: ast.Module) -> None:
    for mod in _top_level_imports(tree):
        top = mod.split(".")[0]
        if top == "__future__" or top in sys.modules or top in sys.builtin_module_names:
            continue
        if importlib.util.find_spec(top) is None:
            raise ModuleNotFoundError(f"No module named {top!r}")


def _static_attrs(module: str, qualname: str, depth: int = 0) -> dict[str, Any]:
    """Class attributes of ``module:qualname`` read from source, following simple base classes."""
    src = _find_source(module)
    tree = ast.parse(src.read_text(encoding="utf-8"), filename=str(src))
    if depth == 0:
        _check_imports_exist(tree)
    cls_node = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == qualname),
                    None)
    if cls_node is None:
        raise AttributeError(f"module {module!r} has no class {qualname!r}")
    attrs = _class_attrs(cls_node)
    if depth >= 4 or all(k in attrs for k in ("name", "description", "tasks", "extra")):
        return attrs
    # Inherit missing attributes from base classes defined in this module or imported by name.
    imported: dict[str, str] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom) and stmt.module:
            base_mod = stmt.module
            if stmt.level:
                pkg = module.split(".")[: -stmt.level]
                base_mod = ".".join([*pkg, stmt.module])
            for a in stmt.names:
                imported[a.asname or a.name] = base_mod
    for base in cls_node.bases:
        if not isinstance(base, ast.Name) or base.id in ("PickingMethod", "object"):
            continue
        base_module = imported.get(base.id, module)
        try:
            inherited = _static_attrs(base_module, base.id, depth + 1)
        except (ImportError, AttributeError, SyntaxError, OSError):
            continue
        for k, v in inherited.items():
            if k != "__doc__":
                attrs.setdefault(k, v)
    return attrs


def _name_mismatch(entry_point: str, declared: Any) -> str:
    return (f"entry point {entry_point!r} points at a class whose name is {declared!r}: "
            "the two must be equal (records and run directories use the class's name)")


def _info_from_class(name: str, target: str, cls: type, dist: str | None) -> MethodInfo:
    desc = getattr(cls, "description", "") or (cls.__doc__ or "").strip().split("\n")[0]
    extra = getattr(cls, "extra", None)
    declared = getattr(cls, "name", None)
    if dist is not None and declared and declared != name:
        return MethodInfo(name, target, dist=dist, error=_name_mismatch(name, declared))
    return MethodInfo(name=name, target=target, description=desc,
                      tasks=tuple(getattr(cls, "tasks", _DEFAULT_TASKS)), extra=extra, dist=dist,
                      extra_missing=missing_extra(extra))


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""


def _info_from_entry_point(ep: importlib.metadata.EntryPoint) -> MethodInfo:
    dist = ep.dist.name if getattr(ep, "dist", None) is not None else None
    module, _, qualname = ep.value.partition(":")
    try:
        attrs = _static_attrs(module, qualname)
        if any(attrs.get(k) is _Unknown for k in _META_ATTRS) or "." in qualname:
            raise _NeedsImport
    except _NeedsImport:
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin must not break the listing
            return MethodInfo(ep.name, ep.value, dist=dist, error=_describe(exc))
        return _info_from_class(ep.name, ep.value, cls, dist)
    except Exception as exc:
        return MethodInfo(ep.name, ep.value, dist=dist, error=_describe(exc))
    tasks = attrs.get("tasks", _DEFAULT_TASKS)
    tasks = (tasks,) if isinstance(tasks, str) else tuple(tasks)
    extra = attrs.get("extra")
    declared = attrs.get("name")
    if declared is not None and declared != ep.name:
        return MethodInfo(ep.name, ep.value, dist=dist, error=_name_mismatch(ep.name, declared))
    return MethodInfo(
        name=ep.name,
        target=ep.value,
        description=_first_line(attrs.get("description") or attrs.get("__doc__", "")),
        tasks=tasks,
        extra=extra,
        dist=dist,
        extra_missing=missing_extra(extra),
    )


class _NeedsImport(Exception):
    pass


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _matcher(pattern: str | None):
    if not pattern:
        return lambda name: True
    pat = (pattern if any(c in pattern for c in "*?[") else f"*{pattern}*").lower()
    return lambda name: fnmatch.fnmatchcase(name.lower(), pat)


def _all_infos(pattern: str | None = None) -> dict[str, MethodInfo]:
    """Infos of the registered methods whose name matches ``pattern`` (others are not read)."""
    match = _matcher(pattern)
    infos: dict[str, MethodInfo] = {}
    for ep in _entry_points():
        if not match(ep.name):
            continue
        if ep.name in infos:
            first = infos[ep.name]
            infos[ep.name] = MethodInfo(
                ep.name, first.target, first.description, first.tasks, first.extra, first.dist,
                error=f"name registered twice: {first.target} and {ep.value}",
            )
            continue
        infos[ep.name] = _info_from_entry_point(ep)
    for name, cls in _LOCAL.items():
        if match(name):
            infos[name] = _info_from_class(name, f"{cls.__module__}:{cls.__qualname__}", cls,
                                           None)
    return infos


def list_methods(pattern: str | None = None) -> list[MethodInfo]:
    """Registered methods sorted by name, optionally filtered by an fnmatch ``pattern``.

    ``pattern`` supports shell wildcards (``"unet*"``, ``"*per_particle"``); without wildcards
    it matches substrings (case-insensitive). Broken plugins are included with ``error`` set.
    """
    return sorted(_all_infos(pattern).values(), key=lambda i: i.name)


def _unknown(name: str, known: list[str]) -> MethodError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    listing = f" (registered: {', '.join(sorted(known))})" if known else " (none registered)"
    return MethodError(f"unknown method {name!r}{hint}{listing if not close else ''}")


def glob_escape(name: str) -> str:
    """``name`` as an fnmatch pattern matching only itself."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _names() -> list[str]:
    return sorted({ep.name for ep in _entry_points()} | set(_LOCAL))


def method_info(name: str) -> MethodInfo:
    """The :class:`MethodInfo` of ``name``; :class:`MethodError` with close matches if unknown."""
    infos = _all_infos(glob_escape(name))
    if name not in infos:
        raise _unknown(name, _names())
    return infos[name]


def get_method(name: str) -> type:
    """Import and return the method class registered as ``name``.

    Raises:
        MethodError: unknown name (with close matches), missing extra (naming the
            ``pip install 'cryobench[EXTRA]'`` command), a plugin that fails to import, or a
            target that is not a :class:`~cryobench.methods.base.PickingMethod`.
    """
    if name in _LOCAL:
        cls = _LOCAL[name]
    else:
        eps = [ep for ep in _entry_points() if ep.name == name]
        if not eps:
            raise _unknown(name, _names())
        ep = eps[0]
        info = _info_from_entry_point(ep)
        if info.extra and info.extra_missing:
            raise _extra_error(name, info.extra, info.extra_missing)
        try:
            cls = ep.load()
        except Exception as exc:
            raise MethodError(f"method {name!r} ({ep.value}) failed to import: "
                              f"{_describe(exc)}") from exc
        _check_class(name, cls)
        if getattr(cls, "name", None) != name:
            raise MethodError(_name_mismatch(name, getattr(cls, "name", None)))
    _check_class(name, cls)
    extra = getattr(cls, "extra", None)
    missing = missing_extra(extra)
    if extra and missing:
        raise _extra_error(name, extra, missing)
    return cls


def _check_class(name: str, cls: Any) -> None:
    from cryobench.methods.base import PickingMethod

    if not (isinstance(cls, type) and issubclass(cls, PickingMethod)):
        raise MethodError(f"method {name!r} is {cls!r}, not a PickingMethod subclass")
