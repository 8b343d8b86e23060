"""``cryobench methods list|info|validate``: the method registry from the command line.

``list`` reads method metadata without importing the methods (no torch import).
"""

from __future__ import annotations

import json

import click

from cryobench.cli._options import SEED

__all__ = ["methods"]


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    return "\n".join(lines)


@click.group("methods", short_help="List, describe and validate picking methods.")
def methods() -> None:
    """List, describe and validate picking methods (built-in and plugins)."""


@methods.command("list")
@click.argument("pattern", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(pattern: str | None, as_json: bool) -> None:
    """List registered methods, optionally those matching PATTERN (wildcards: unet*, *rcnn)."""
    from cryobench.methods.registry import list_methods

    infos = list_methods(pattern)
    if as_json:
        click.echo(json.dumps([
            {"name": i.name, "target": i.target, "tasks": list(i.tasks), "extra": i.extra,
             "extra_missing": list(i.extra_missing), "description": i.description,
             "dist": i.dist, "error": i.error} for i in infos], indent=2))
        return
    if not infos:
        click.echo(f"no methods match {pattern!r}" if pattern else "no methods registered",
                   err=True)
        return
    rows = []
    for i in infos:
        if i.broken:
            rows.append([i.name, "BROKEN", "-", f"{i.target}: {i.error}"])
            continue
        extra = i.extra or "-"
        if i.extra and i.extra_missing:
            extra += " (not installed)"
        rows.append([i.name, ",".join(i.tasks), extra, i.description])
    click.echo(_table(rows, ["NAME", "TASKS", "EXTRA", "DESCRIPTION"]))


def _type_name(tp) -> str:
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


def _plain(text: str) -> str:
    """A docstring without reST markup: ``x`` -> x, :func:`~a.b.c` -> c."""
    import re

    text = re.sub(r":\w+:`~?(?:[\w.]*\.)?([\w]+)`", r"\1", text)
    return text.replace("``", "")


def _fmt(value) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


@methods.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info_cmd(name: str, as_json: bool) -> None:
    """Show a method's tasks, extra and config fields with their defaults per budget."""
    import dataclasses

    from cryobench.methods.base import BUDGETS
    from cryobench.methods.config import field_docs, field_types
    from cryobench.methods.registry import get_method, method_info
    from cryobench.runner.record import jsonable

    meta = method_info(name)
    cls = get_method(name)
    configs = {b: jsonable(dataclasses.asdict(cls.default_config(b))) for b in BUDGETS}
    types = field_types(cls.Config)
    docs = field_docs(cls.Config)
    fields = [f.name for f in dataclasses.fields(cls.Config)]
    if as_json:
        click.echo(json.dumps({
            "name": name, "target": meta.target, "description": meta.description,
            "tasks": list(cls.tasks), "extra": cls.extra,
            "fields": {f: {"type": _type_name(types[f]), "doc": docs.get(f),
                           "defaults": {b: configs[b][f] for b in BUDGETS}} for f in fields},
        }, indent=2))
        return
    click.echo(f"{name}: {meta.description}")
    click.echo(f"  entry point: {meta.target}" + (f" ({meta.dist})" if meta.dist else ""))
    click.echo(f"  tasks: {', '.join(cls.tasks)}")
    click.echo(f"  extra: {cls.extra or 'none'}")
    click.echo("")
    rows = [[f, _type_name(types[f]), *(_fmt(configs[b][f]) for b in BUDGETS)] for f in fields]
    click.echo(_table(rows, ["FIELD", "TYPE", *BUDGETS]))
    described = [f for f in fields if f in docs]
    if described:
        click.echo("\nWhat the fields mean:")
        width = max(len(f) for f in described)
        for f in described:
            click.echo(f"  {f.ljust(width)}  {_plain(docs[f])}")
    click.echo("\nOverride with: cryobench run --method "
               f"{name} --split SPLIT --set FIELD=VALUE")


@methods.command("validate")
@click.argument("name")
@click.option("--split", default=None,
              help="Split to check on (default: tiny; tiny-motor for motor-only methods).")
@click.option("--budget", default="smoke", show_default=True,
              type=click.Choice(["smoke", "cpu", "full"]))
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--data", "data_dir", default=None, type=click.Path(file_okay=False),
              help="Data directory passed to the split loader.")
def validate_cmd(name: str, split: str | None, budget: str, seed: int,
                 data_dir: str | None) -> None:
    """Run the conformance suite (cryobench.testing) on a registered method."""
    from cryobench.methods.registry import get_method
    from cryobench.testing import method_checks

    cls = get_method(name)
    failed = None
    for check_name, check in method_checks(cls, split=split, budget=budget, seed=seed,
                                           data_dir=data_dir):
        if failed:
            click.echo(f"SKIP  {check_name}")
            continue
        try:
            check()
        except AssertionError as exc:
            failed = check_name
            click.echo(f"FAIL  {check_name}: {exc}")
            continue
        click.echo(f"PASS  {check_name}")
    if failed:
        click.echo(f"{name}: conformance suite failed at {failed}", err=True)
        raise SystemExit(1)
    click.echo(f"{name}: all checks passed")
