"""Click's exception classes, wherever this Typer takes them from.

Typer 0.2x vendors click as ``typer._click``; older releases depend on ``click`` itself.
"""

try:
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - typer with an external click
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

UsageError = click_exceptions.UsageError
NoArgsIsHelpError = getattr(click_exceptions, "NoArgsIsHelpError", None)
ClickExit = getattr(click_exceptions, "Exit", None)
ClickAbort = getattr(click_exceptions, "Abort", None)
