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
Only ``queue serve`` creates a missing key file, and only at the default location 4 (once it is
listening). A key file named explicitly (1 or 3) must exist: a typo in a path must be an error
naming it, not a fresh key (and directories) made where nobody will look. ``create_key_file``
writes a new key where a program asks, explicitly.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ipcluster_kit.errors import BadInput, KitError
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
    """The one place a key is created when none exists: ``~/.ipcluster-kit/queue.key``."""
    return (DEFAULT_KEY_DIR / DEFAULT_KEY_NAME).expanduser().absolute()


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


def save_new_key(authkey: Authkey) -> None:
    """Write the key of ``load_authkey(create=True)`` when it is new (``created``); else nothing.

    Only the default key file is ever new: its 0700 directory is made if needed.
    """
    if not authkey.created or authkey.path is None:
        return
    try:
        ensure_private_dir(authkey.path.parent)
        write_private(authkey.path, authkey.key + b"\n")
    except OSError as exc:
        raise KitError(f"cannot create key file {authkey.path}: {exc.strerror}") from None


def create_key_file(path: Path | str) -> Authkey:
    """Write a new random key to ``path`` (0600), which must not exist; its directory must.

    For programs (and notebooks) that want a key of their own in a place they choose; nothing
    else is created (no directories, no change to the directory's mode).
    """
    path = Path(path).expanduser().absolute()
    if path.exists() or path.is_symlink():
        raise BadInput(f"key file {path} already exists; use it, or remove it first")
    if not path.parent.is_dir():
        raise BadInput(f"cannot create key file {path}: directory {path.parent} does not exist")
    key = new_key()
    try:
        write_private(path, key + b"\n")
    except OSError as exc:
        raise KitError(f"cannot create key file {path}: {exc.strerror}") from None
    return Authkey(key, f"key file {path}", path, created=True)


def load_authkey(key_file: Path | str | None = None, *, create: bool = False) -> Authkey:
    """The key to use, by the precedence in the module docstring.

    With ``create``, a missing *default* key file gives a new random key with ``created`` True,
    which ``save_new_key`` then writes (0600): the caller writes it only once it is sure to use
    it. A key file named by ``key_file`` or ``$IPCK_QUEUE_KEY_FILE`` must exist.
    """
    named_by = None
    if key_file is not None:
        path, named_by = Path(key_file).expanduser(), "--key-file"
    else:
        env_key = os.environ.get(ENV_AUTHKEY)
        if env_key:
            return Authkey(_check_key(env_key.strip().encode(), f"${ENV_AUTHKEY}"), f"${ENV_AUTHKEY}")
        env_file = os.environ.get(ENV_KEY_FILE)
        if env_file:
            path, named_by = Path(env_file).expanduser(), f"${ENV_KEY_FILE}"
        else:
            path = default_key_file()
    path = path.absolute()
    if not path.exists():
        if named_by is not None:
            raise BadInput(
                f"key file {path} (from {named_by}) does not exist: copy the key file of the server there "
                f"(`queue serve` creates one only at {default_key_file()})"
            )
        if not create:
            raise BadInput(
                f"no queue key: {path} does not exist (copy the key file written by `queue serve`, "
                f"pass --key-file, or set {ENV_AUTHKEY})"
            )
        return Authkey(new_key(), f"key file {path}", path, created=True)
    return Authkey(_read_key_file(path), f"key file {path}", path)
