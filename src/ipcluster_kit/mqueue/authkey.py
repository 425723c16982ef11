"""The queue's shared secret: from a file or an environment variable, never a constant.

``multiprocessing`` authenticates each connection with an HMAC challenge on this key. The key is
the only protection: whoever holds it can submit pickles to the server (and so run code there and
on every worker), and the traffic itself is not encrypted. So the key is random, lives in a 0600
file in a 0700 directory (or in ``IPCK_QUEUE_AUTHKEY``), and is never printed.

Which key is used, first match wins:
1. ``--key-file PATH`` given on the command line;
2. the environment variable ``IPCK_QUEUE_AUTHKEY`` (the key itself);
3. the file named by ``IPCK_QUEUE_KEY_FILE``;
4. ``~/.ipcluster-kit/queue.key``.
Only ``queue serve`` creates a missing key file (once it is listening); the other commands need
it to exist.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ipcluster_kit.errors import BadInput
from ipcluster_kit.files import ensure_private_dir, write_private

ENV_AUTHKEY = "IPCK_QUEUE_AUTHKEY"
ENV_KEY_FILE = "IPCK_QUEUE_KEY_FILE"
DEFAULT_KEY_DIR = Path("~/.ipcluster-kit")
DEFAULT_KEY_NAME = "queue.key"
MIN_KEY_LENGTH = 16


@dataclass(frozen=True)
class Authkey:
    """A key and where it came from. ``repr`` never shows the key."""

    key: bytes = field(repr=False)
    source: str  # for messages: "key file /path" or "$IPCK_QUEUE_AUTHKEY"
    path: Path | None = None
    created: bool = False


def default_key_file() -> Path:
    env = os.environ.get(ENV_KEY_FILE)
    if env:
        return Path(env).expanduser()
    return (DEFAULT_KEY_DIR / DEFAULT_KEY_NAME).expanduser()


def new_key() -> bytes:
    """A fresh random key (64 hex characters)."""
    return secrets.token_hex(32).encode()


def _check_key(key: bytes, source: str) -> bytes:
    if len(key) < MIN_KEY_LENGTH:
        raise BadInput(f"the queue key from {source} is too short ({len(key)} characters, need {MIN_KEY_LENGTH})")
    return key


def _read_key_file(path: Path) -> bytes:
    try:
        st = path.stat()
    except OSError as exc:
        raise BadInput(f"cannot read key file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(f"key file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise BadInput(
            f"key file {path} is readable by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run: chmod 600 {path}"
        )
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise BadInput(f"cannot read key file {path}: {exc.strerror}") from None
    return _check_key(key, f"key file {path}")


def _create_key_file(path: Path, key: bytes) -> None:
    if path.parent.exists():
        # Never chmod a directory the user chose (it could be /tmp); only our own default one.
        if path.parent == DEFAULT_KEY_DIR.expanduser():
            ensure_private_dir(path.parent)
    else:
        ensure_private_dir(path.parent)
    write_private(path, key + b"\n")


def save_new_key(authkey: Authkey) -> None:
    """Write the key of ``load_authkey(create=True)`` when it is new (``created``); else nothing."""
    if not authkey.created or authkey.path is None:
        return
    try:
        _create_key_file(authkey.path, authkey.key)
    except OSError as exc:
        raise BadInput(f"cannot create key file {authkey.path}: {exc.strerror}") from None


def load_authkey(key_file: Path | str | None = None, *, create: bool = False) -> Authkey:
    """The key to use, by the precedence in the module docstring.

    With ``create``, a missing key file gives a new random key with ``created`` True, which
    ``save_new_key`` then writes (0600): the caller writes it only once it is sure to use it.
    """
    if key_file is None:
        env_key = os.environ.get(ENV_AUTHKEY)
        if env_key:
            return Authkey(_check_key(env_key.strip().encode(), f"${ENV_AUTHKEY}"), f"${ENV_AUTHKEY}")
        path = default_key_file()
    else:
        path = Path(key_file).expanduser()
    path = path.absolute()
    if not path.exists():
        if not create:
            raise BadInput(
                f"no queue key: {path} does not exist (copy the key file written by `queue serve`, "
                f"pass --key-file, or set {ENV_AUTHKEY})"
            )
        return Authkey(new_key(), f"key file {path}", path, created=True)
    return Authkey(_read_key_file(path), f"key file {path}", path)
