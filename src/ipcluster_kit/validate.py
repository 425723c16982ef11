"""Checks of single values at the edge, shared by the API and the CLI.

Each check returns the value (normalised) or raises ``BadInput`` with one line that names the
option and shows the value as ``repr`` (so a newline or a control character in it stays visible
and the message stays on one line). Call them in the API-level functions (``build_spec``, the
queue and cluster functions), so that a notebook gets the same answer as the command line.
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any

from ipcluster_kit.errors import BadInput

# Characters free text must not carry into a generated config file or job script: quotes end a
# literal or a shell word, a backslash escapes, a backtick substitutes in a shell.
_FORBIDDEN_TEXT = frozenset("\"'`\\")


def _refuse(option: str, value: Any, why: str) -> BadInput:
    return BadInput(f"invalid {option} {value!r}: {why}")


def check_text(option: str, value: str, *, allow_empty: bool = False) -> str:
    """A free-text value bound for a config file or a script: one printable line, no quotes.

    Refuses newlines and every other control or format character (Unicode category C*, which
    includes NUL, ESC, DEL and the line and paragraph separators), quotes, backticks and
    backslashes. The value is still rendered as a Python literal or shell-quoted where it is
    used; this check keeps what users type to what a scheduler or a path can sensibly hold.
    """
    if not isinstance(value, str):
        raise _refuse(option, value, f"expected text, got {type(value).__name__}")
    if not value and not allow_empty:
        raise _refuse(option, value, "it must not be empty")
    for char in value:
        if char in "\n\r":
            raise _refuse(option, value, "it must not contain a newline")
        if unicodedata.category(char).startswith(("C", "Z")) and char != " ":
            raise _refuse(option, value, f"it must not contain control characters ({char!r})")
        if char in _FORBIDDEN_TEXT:
            raise _refuse(option, value, f"it must not contain quotes, backticks or backslashes ({char!r})")
    if value != value.strip():
        raise _refuse(option, value, "it must not start or end with a space")
    return value


def _number(option: str, value: Any) -> float:
    if isinstance(value, bool):
        raise _refuse(option, value, "expected a number")
    if not isinstance(value, (int, float)):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _refuse(option, value, "expected a number") from None
    return float(value)


def check_seconds(
    option: str,
    value: Any,
    *,
    minimum: float = 0.0,
    allow_zero: bool = False,
    maximum: float | None = None,
) -> float:
    """A duration in seconds: a finite number, ``>= minimum``; zero only with ``allow_zero``.

    NaN and infinity are refused (a wait must end, and ``nan`` compares false with everything,
    so it would slip through ``value > 0``-style checks).
    """
    number = _number(option, value)
    if math.isnan(number) or math.isinf(number):
        raise _refuse(option, value, "expected a finite number of seconds")
    if number <= 0 and minimum <= 0 and not allow_zero:
        raise _refuse(option, value, "it must be more than 0 seconds")
    if number < minimum and not (number == 0 and allow_zero):
        raise _refuse(option, value, f"it must be at least {minimum:g} seconds")
    if maximum is not None and number > maximum:
        raise _refuse(option, value, f"it must be at most {maximum:g} seconds")
    return number


def check_count(option: str, value: Any, minimum: int = 0, *, maximum: int | None = None) -> int:
    """A whole number ``>= minimum`` (and ``<= maximum``): counts, ports, sizes."""
    if isinstance(value, bool):
        raise _refuse(option, value, "expected a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise _refuse(option, value, "expected a whole number")
        value = int(value)
    if not isinstance(value, int):
        try:
            value = int(str(value).strip())
        except ValueError:
            raise _refuse(option, value, "expected a whole number") from None
    if value < minimum:
        raise _refuse(option, value, f"it must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise _refuse(option, value, f"it must be at most {maximum}")
    return value
