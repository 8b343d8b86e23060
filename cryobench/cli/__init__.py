"""The ``cryobench`` command line: one click group whose subcommands load lazily.

Each subcommand lives in its own module under :mod:`cryobench.cli` and imports heavy
dependencies (torch, copick) only inside its function, so ``cryobench --help`` and
``cryobench methods list`` stay fast. User errors (:class:`cryobench.errors.CryobenchError`) are
caught once here and shown as one line ``error: <file>: <problem>`` with exit code 2.
"""

from __future__ import annotations

import importlib
import sys

import click

from cryobench import __version__
from cryobench.errors import CryobenchError

__all__ = ["cli", "main"]

# name -> "module:attribute"; each module under cryobench/cli/ adds one line here.
COMMANDS: dict[str, str] = {
    "data": "cryobench.cli.data:data",
    "methods": "cryobench.cli.methods:methods",
    "run": "cryobench.cli.run:run",
    "report": "cryobench.cli.report:report",
    "ablate": "cryobench.cli.ablate:ablate",
    "leaderboard": "cryobench.cli.leaderboard:leaderboard",
    "score": "cryobench.cli.score:score",
    "predict": "cryobench.cli.predict:predict",
    "verify": "cryobench.cli.verify:verify",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand is used."""

    def __init__(self, *args, lazy_commands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            module, attr = self.lazy_commands[cmd_name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, cmd_name)


class CryobenchGroup(LazyGroup):
    """The top-level group: turns user errors into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CryobenchError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            ctx.exit(130)


@click.group(cls=CryobenchGroup, lazy_commands=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cryobench")
def cli() -> None:
    """Benchmark and score particle picking in cryo-electron tomograms."""


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="cryobench")
