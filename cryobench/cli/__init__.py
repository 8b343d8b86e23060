"""The ``cryobench`` command line: one click group whose subcommands load lazily.

Each subcommand lives in its own module under :mod:`cryobench.cli` and imports heavy
dependencies (torch, copick) only inside its function, so ``cryobench --help`` and
``cryobench methods list`` stay fast. User errors (:class:`cryobench.errors.CryobenchError`) are
caught once here and shown as one line ``error: <file>: <problem>`` with exit code 2 (see
:class:`CryobenchGroup` for the other failures).
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from cryobench import __version__
from cryobench._cpu_isa import portable_cpu_kernels
from cryobench._openmp import prefer_passive_waiting
from cryobench.errors import CryobenchError

__all__ = ["cli", "main"]

prefer_passive_waiting()  # before any subcommand imports torch (see cryobench/_openmp.py)
portable_cpu_kernels()  # the same bytes on every x86-64 CPU (see cryobench/_cpu_isa.py)

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
    "convert": "cryobench.cli.convert:convert",
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


def _stdout_failed() -> None:
    """After stdout failed (full disk, closed pipe): point it at /dev/null so the interpreter's
    final flush does not fail a second time with a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor
        pass


def _error(line: str) -> None:
    """One line on stderr, with whatever a file put in it made harmless for the terminal."""
    from cryobench.cli._tables import printable

    click.echo(printable(line), err=True)


def _os_error(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else "<stdout>"
    why = exc.strerror or type(exc).__name__
    return f"error: {where}: {why}"


class CryobenchGroup(LazyGroup):
    """The top-level group: every failure of a command becomes one line on stderr.

    User errors (:class:`CryobenchError`, bad options, OS errors such as a read-only or full
    output folder, input nested too deeply, running out of memory) exit with code 2; an
    interruption with 130; anything else is a bug, reported in one line with exit code 1
    (``CRYOBENCH_DEBUG=1`` shows its traceback instead).
    """

    def invoke(self, ctx: click.Context):
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a full disk or closed pipe on stdout fails here, not at exit
            return result
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _error(f"error: {exc.format_message()}{hint}")
            ctx.exit(2)
        except CryobenchError as exc:
            _error(f"error: {exc}")
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            ctx.exit(130)
        except OSError as exc:
            if exc.filename is None:
                _stdout_failed()
            _error(_os_error(exc))
            ctx.exit(2)
        except RecursionError:
            click.echo("error: an input is nested too deeply to read", err=True)
            ctx.exit(2)
        except MemoryError:
            click.echo("error: out of memory (the input or the requested work is too large "
                       "for this machine)", err=True)
            ctx.exit(2)
        except Exception as exc:
            if os.environ.get("CRYOBENCH_DEBUG") == "1":
                raise
            _error(f"error: unexpected {type(exc).__name__}: {str(exc)[:300]} (a bug in "
                   "cryobench: please report it with the command; CRYOBENCH_DEBUG=1 shows the "
                   "traceback)")
            ctx.exit(1)


@click.group(cls=CryobenchGroup, lazy_commands=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cryobench")
def cli() -> None:
    """Benchmark and score particle picking in cryo-electron tomograms."""


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="cryobench")
