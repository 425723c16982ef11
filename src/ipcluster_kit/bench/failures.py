"""One line for any failure of a benchmark run, and the engines' traceback when a task raised there.

``describe(exc)`` serves the runner and the shoot-out alike: a ``KitError`` gives its message, an
ipyparallel ``RemoteError`` (or a ``CompositeError`` of several) gives ``ValueError: bad input 3
(usertasks.py:3 in work) on engine 1; 2 task(s) failed`` plus the remote traceback without colour
codes, anything else ``Type: message``. Never longer than one line.
"""

from __future__ import annotations

import os
import re

from ipcluster_kit.errors import KitError

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_FRAME = re.compile(r"^File (?P<file>.+?):(?P<line>\d+), in (?P<func>[^\s(]+)")
TRACEBACK_LINES = 40
MAX_LINE = 500


def _one_line(text: str, limit: int = MAX_LINE) -> str:
    return " ".join(str(text).split())[:limit]


def remote_error_summary(exc: BaseException) -> tuple[str, list[str]]:
    """One line and the remote traceback (its last ``TRACEBACK_LINES`` lines; empty when not remote)."""
    elist = getattr(exc, "elist", None)
    if elist:
        ename, evalue, tb, info = elist[0]
        failed = len(elist)
    elif hasattr(exc, "ename"):
        ename, evalue, tb, info = exc.ename, exc.evalue, getattr(exc, "traceback", ""), getattr(exc, "engine_info", None)
        failed = 1
    else:
        return f"{type(exc).__name__}: {exc}", []
    lines = [line.rstrip() for line in _ANSI.sub("", tb or "").splitlines() if line.strip()]
    frames = [m for m in (_FRAME.match(line.strip()) for line in lines) if m]
    where = ""
    if frames:
        last = frames[-1]
        where = f" ({os.path.basename(last.group('file'))}:{last.group('line')} in {last.group('func')})"
    engine = ""
    if isinstance(info, dict) and info.get("engine_id") is not None:
        engine = f" on engine {info['engine_id']}"
    count = f"; {failed} task(s) failed" if failed > 1 else ""
    return _one_line(f"{ename}: {evalue}", 300) + where + engine + count, lines[-TRACEBACK_LINES:]


def describe(exc: BaseException) -> tuple[str, list[str] | None]:
    """``(line, remote traceback or None)`` for a failed run."""
    if isinstance(exc, KitError):
        return _one_line(exc.message), None
    summary, traceback = remote_error_summary(exc)
    return _one_line(summary), traceback or None
