"""Writing files safely: private permissions, atomic replacement, nothing half-written."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

from ipcluster_kit.errors import BadInput, KitError

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it 0700: it may hold connection files."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_DIR_MODE)
    return path


def atomic_write(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and ``os.replace``.

    A reader never sees a partly written file, and a failure leaves the old file untouched.
    """
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_private(path: Path, data: str | bytes) -> None:
    """Atomically write a file only its owner may read (0600)."""
    atomic_write(path, data, PRIVATE_FILE_MODE)


STDOUT = "-"


def is_stdout(path: str | os.PathLike) -> bool:
    """Whether ``path`` means standard output: ``-``, or a name of it (``/dev/stdout``, ``/proc/self/fd/1``).

    A command that writes its document there should keep the rest of its output off stdout.
    """
    return str(path) == STDOUT or _is_stdout(Path(path))


def _is_stdout(path: Path) -> bool:
    """Whether ``path`` is this process's standard output (``/dev/stdout``, ``/proc/self/fd/1``)."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError):  # no such path, or stdout is not a real file
        return False


def _write_stdout(raw: bytes) -> None:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stream (e.g. a test's capture)
        sys.stdout.write(raw.decode(errors="replace"))
    else:
        buffer.write(raw)
    sys.stdout.flush()


def _write_through(path: Path, raw: bytes) -> None:
    """Open what ``path`` names (FIFO, device, symlink target) and write into it; never replace it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.ftruncate(fd, 0)
        view = memoryview(raw)
        while view:
            view = view[os.write(fd, view) :]
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fsync(fd)
    finally:
        os.close(fd)


def check_output_path(option: str, path: str | os.PathLike) -> None:
    """Refuse, before any work is done, an output path that cannot be written.

    ``-`` (standard output) and anything that exists and is not a directory pass (a write error
    then is ``write_output``'s to report); a new path needs an existing, writable directory.
    """
    if str(path) == STDOUT:
        return
    target = Path(path)
    if target.is_dir():
        raise BadInput(f"invalid {option} {str(path)!r}: it is a directory")
    if target.exists() or target.is_symlink():
        return
    parent = target.parent
    if not parent.is_dir():
        raise BadInput(f"invalid {option} {str(path)!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BadInput(f"invalid {option} {str(path)!r}: directory {str(parent)!r} is not writable")


def write_output(path: str | os.PathLike, data: str | bytes) -> None:
    """Write a command's output document (``--json PATH``, ``--plot PATH``) where the user asked.

    ``-`` is standard output. A regular file, or a path that does not exist yet, is replaced
    atomically (a reader never sees half a document; its mode is kept). Anything else (a FIFO, a
    device such as ``/dev/stdout``, a symlink) is opened and written through, never replaced. A
    failure (a full disk, a missing directory, no permission) is one ``KitError`` line.
    """
    raw = data.encode() if isinstance(data, str) else bytes(data)
    where = str(path)
    try:
        if is_stdout(path):
            _write_stdout(raw)
            return
        target = Path(path)
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            st = None
        if st is None:
            atomic_write(target, raw)
        elif stat.S_ISREG(st.st_mode):
            try:
                atomic_write(target, raw, stat.S_IMODE(st.st_mode))
            except PermissionError:
                # A writable file in a directory we may not create files in: write it in place.
                _write_through(target, raw)
        elif stat.S_ISDIR(st.st_mode):
            raise KitError(f"cannot write {where}: it is a directory")
        else:
            _write_through(target, raw)
    except OSError as exc:
        raise KitError(f"cannot write {where}: {exc.strerror or exc}") from None
