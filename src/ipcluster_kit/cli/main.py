"""Entry point of ``ipcluster-kit``.

Every subcommand lives in its own small module here. Modules import heavy libraries
(ipyparallel, zmq, IPython, matplotlib) inside their functions, so that ``--help`` and
``init`` stay fast.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import typer

from ipcluster_kit.cli import clickcompat
from ipcluster_kit.errors import KitError

app = typer.Typer(
    name="ipcluster-kit",
    help="Set up an IPython Parallel cluster, open it safely to a network, and measure whether it pays off.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from ipcluster_kit import __version__

        print(f"ipcluster-kit {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Set up an IPython Parallel cluster, open it safely to a network, and measure whether it pays off."""


@functools.lru_cache(maxsize=None)
def _register() -> None:
    from ipcluster_kit.cli import commands

    commands.register(app)


@functools.lru_cache(maxsize=None)
def command() -> Any:
    """The click command of the whole CLI, built once (Typer would rebuild it on every call)."""
    _register()
    return typer.main.get_command(app)


def fail(message: str, exit_code: int) -> None:
    """Print one error line on stderr and exit."""
    print(f"ipcluster-kit: error: {message}", file=sys.stderr)
    raise SystemExit(exit_code)


def _given_value(opts: list[str], argv: list[str]) -> str | None:
    """What the user typed for an option (``--opt VALUE`` or ``--opt=VALUE``; the last one wins)."""
    value = None
    for i, arg in enumerate(argv):
        for opt in opts:
            if arg == opt and i + 1 < len(argv):
                value = argv[i + 1]
            elif arg.startswith(opt + "="):
                value = arg[len(opt) + 1 :]
    return value


def _usage_line(exc: Exception, argv: list[str]) -> str:
    """Click's message on one line, with the value the user gave when click's own text omits it."""
    message = exc.format_message().replace("\n", " ")
    param = getattr(exc, "param", None)
    opts = [o for o in getattr(param, "opts", []) if o.startswith("-")]
    if message.startswith("Invalid value") and opts:
        value = _given_value(opts, argv)
        if value is not None and repr(value) not in message:
            message = f"{message} (got {value!r})"
    return message


def main(argv: list[str] | None = None) -> None:
    cli = command()
    exit_types = tuple(t for t in (typer.Exit, clickcompat.ClickExit) if t is not None)
    abort_types = tuple(t for t in (typer.Abort, clickcompat.ClickAbort) if t is not None)
    try:
        result = cli.main(args=argv, prog_name="ipcluster-kit", standalone_mode=False)
    except KitError as exc:
        fail(exc.message, exc.exit_code)
    except clickcompat.UsageError as exc:
        if clickcompat.NoArgsIsHelpError and isinstance(exc, clickcompat.NoArgsIsHelpError):
            print(exc.format_message())
            raise SystemExit(0) from None
        # Typer's default is a multi-line boxed panel; users get one line naming the bad value.
        fail(_usage_line(exc, sys.argv[1:] if argv is None else argv), 2)
    except exit_types as exc:
        raise SystemExit(exc.exit_code) from None
    except abort_types:
        fail("aborted", 130)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    raise SystemExit(result if isinstance(result, int) else 0)
