"""Entry point of ``ipcluster-kit``.

Every subcommand lives in its own small module here. Modules import heavy libraries
(ipyparallel, zmq, IPython, matplotlib) inside their functions, so that ``--help`` and
``init`` stay fast.
"""

from __future__ import annotations

import sys

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


def _register() -> None:
    from ipcluster_kit.cli import commands

    commands.register(app)


def fail(message: str, exit_code: int) -> None:
    """Print one error line on stderr and exit."""
    print(f"ipcluster-kit: error: {message}", file=sys.stderr)
    raise SystemExit(exit_code)


def main(argv: list[str] | None = None) -> None:
    _register()
    exit_types = tuple(t for t in (typer.Exit, clickcompat.ClickExit) if t is not None)
    abort_types = tuple(t for t in (typer.Abort, clickcompat.ClickAbort) if t is not None)
    try:
        result = app(args=argv, prog_name="ipcluster-kit", standalone_mode=False)
    except KitError as exc:
        fail(exc.message, exc.exit_code)
    except clickcompat.UsageError as exc:
        if clickcompat.NoArgsIsHelpError and isinstance(exc, clickcompat.NoArgsIsHelpError):
            print(exc.format_message())
            raise SystemExit(0) from None
        # Typer's default is a multi-line boxed panel; users get one line naming the bad value.
        fail(exc.format_message().replace("\n", " "), 2)
    except exit_types as exc:
        raise SystemExit(exc.exit_code) from None
    except abort_types:
        fail("aborted", 130)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    raise SystemExit(result if isinstance(result, int) else 0)
