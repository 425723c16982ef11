"""One lock per profile, held across a whole bring-up or stop: two `up` of one profile never make two
clusters, and `down` never races an `up`.

An advisory ``flock`` on the profile directory itself (no lock file: a command that refuses its input
leaves the profile exactly as it was); the kernel drops it when the holder exits, however it exits,
so a crash never leaves the profile locked. While it holds the lock, the holder says what it is doing
in ``PROFILE_DIR/ipcluster_kit.lock-holder`` (removed on release), so that a command that waits in
vain can say who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Callable, Iterator

from ipcluster_kit.errors import KitError
from ipcluster_kit.files import write_private

HOLDER_FILE = "ipcluster_kit.lock-holder"
POLL_INTERVAL = 0.05


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
        return f"`{info['command']}` (PID {info['pid']}, since {time.strftime('%H:%M:%S', time.localtime(info['since']))})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another ipcluster-kit command"


@contextlib.contextmanager
def profile_lock(
    profile_dir: Path, command: str, timeout: float, waiting: Callable[[str], None] = lambda message: None
) -> Iterator[None]:
    """Hold the profile's lock for the block; wait at most ``timeout`` seconds for it (KitError after,
    naming who holds it). ``waiting`` hears once that the lock is busy."""
    path = Path(profile_dir) / HOLDER_FILE
    fd = os.open(profile_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    waiting(f"waiting for {_holder(path)} to finish with this profile")
                    told = True
                if time.monotonic() >= deadline:
                    raise KitError(
                        f"profile {Path(profile_dir).name.removeprefix('profile_')!r} is busy: {_holder(path)} holds its"
                        f" lock; waited {timeout:g} s"
                    ) from None
                time.sleep(POLL_INTERVAL)
        write_private(path, json.dumps({"pid": os.getpid(), "command": command, "since": time.time()}))
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
