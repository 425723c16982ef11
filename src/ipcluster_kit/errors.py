"""Errors that reach the user as one line and an exit status, never as a traceback."""

from __future__ import annotations


class KitError(Exception):
    """A failure the user can act on. The CLI prints ``error: <message>`` and exits with ``exit_code``."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class BadInput(KitError):
    """The user gave a value the kit cannot use (exit status 2, like a usage error)."""

    exit_code = 2
