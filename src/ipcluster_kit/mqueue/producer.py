"""The producer: put jobs on the queue, then close it so that workers can know when to stop."""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ipcluster_kit.errors import BadInput
from ipcluster_kit.mqueue import net
from ipcluster_kit.mqueue.client import connect, server_errors
from ipcluster_kit.mqueue.tasks import check_task
from ipcluster_kit.validate import check_count

CHUNK = 5_000  # jobs per round trip
MAX_COUNT = 10_000_000  # jobs from one `produce --count`: past this, a typo, and the server's memory


@dataclass
class Submitted:
    first_id: int
    count: int
    total: int | None  # jobs on the server after closing (None when left open)


def load_jobs_file(path: Path | str) -> list[Any]:
    """Arguments from a JSON file holding a list: one job per item, ``func(item)``."""
    path = Path(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or a device would block or never end
            raise BadInput(f"jobs file {path} is not a regular file")
        data = json.loads(path.read_text())
    except OSError as exc:
        raise BadInput(f"cannot read jobs file {path}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"jobs file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise BadInput(f"jobs file {path} must hold a JSON list of arguments, got {type(data).__name__}")
    return data


def job_range(start: int, count: int) -> range:
    """The arguments of ``produce --start S --count N``: ``S .. S+N-1`` (a range, not a list)."""
    count = check_count("--count", count, 0, maximum=MAX_COUNT)
    if isinstance(start, bool) or not isinstance(start, int):
        raise BadInput(f"invalid --start {start!r}: expected a whole number")
    return range(start, start + count)


def submit(
    address: net.Address,
    authkey: bytes,
    args: Sequence[Any],
    *,
    task: str | None = None,
    close: bool = True,
) -> Submitted:
    """Submit one job per argument (in chunks) and, unless ``close`` is False, close the queue."""
    if task is not None:
        check_task(task)
    if not isinstance(args, (list, range)):
        args = list(args)
    proxy = connect(address, authkey)
    first = None
    with server_errors(net.format_address(address)):
        for start in range(0, len(args), CHUNK):
            chunk_first, _ = proxy.submit(list(args[start : start + CHUNK]), task)
            first = chunk_first if first is None else first
        if first is None:
            first = proxy.stats()["submitted"]
        total = proxy.close() if close else None
    return Submitted(first, len(args), total)
