"""Reading and writing profiles on disk: all files or none, backups on --force, diffs on --dry-run."""

from __future__ import annotations

import difflib
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.files import PRIVATE_DIR_MODE, atomic_write, ensure_private_dir
from ipcluster_kit.profile.render import render_profile
from ipcluster_kit.profile.spec import RECORD_FILE, ProfileSpec, profile_dir_for, resolve_ipython_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENGINE_CONNECTION_FILE = "ipcontroller-engine.json"
CLIENT_CONNECTION_FILE = "ipcontroller-client.json"


def read_spec(name: str, ipython_dir: str | os.PathLike | None = None) -> tuple[ProfileSpec, Path]:
    """The spec of an existing kit profile, and its directory."""
    profile_dir = profile_dir_for(name, ipython_dir)
    record = profile_dir / RECORD_FILE
    if not record.is_file():
        where = "does not exist" if not profile_dir.exists() else f"has no {RECORD_FILE}"
        raise BadInput(f"unknown profile {name!r}: {profile_dir} {where} (create it with `ipcluster-kit init {name}`)")
    try:
        return ProfileSpec.from_record(tomllib.loads(record.read_text())), profile_dir
    except OSError as exc:
        raise KitError(f"profile {name!r}: cannot read {record} ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise KitError(
            f"profile {name!r}: {record} is unreadable ({reason}); re-create it with `ipcluster-kit init {name} --force`"
        ) from None


def connection_files(profile_dir: Path) -> dict[str, Path]:
    security = Path(profile_dir) / "security"
    return {"engine": security / ENGINE_CONNECTION_FILE, "client": security / CLIENT_CONNECTION_FILE}


@dataclass
class WritePlan:
    """What writing a profile would do: new file texts, and what they replace."""

    profile_dir: Path
    files: dict[str, str]
    existing: dict[str, str] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return bool(self.existing)

    def diff(self) -> str:
        chunks = []
        for name, text in self.files.items():
            old = self.existing.get(name)
            if old is None or old == text:
                continue
            chunks.extend(
                difflib.unified_diff(
                    old.splitlines(keepends=True), text.splitlines(keepends=True), f"a/{name}", f"b/{name}"
                )
            )
        return "".join(chunks)


def plan_write(spec: ProfileSpec, ipython_dir: str | os.PathLike | None = None) -> WritePlan:
    profile_dir = profile_dir_for(spec.name, ipython_dir)
    files = render_profile(spec, profile_dir)
    existing = {}
    for name in files:
        path = profile_dir / name
        if path.is_file():
            try:
                existing[name] = path.read_text(errors="replace")
            except OSError as exc:
                raise KitError(f"cannot read {path}: {exc.strerror or exc}") from None
    return WritePlan(profile_dir=profile_dir, files=files, existing=existing)


def _check_writable(ipython_dir: Path) -> None:
    probe = ipython_dir
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise BadInput(f"cannot write to ipython dir {str(ipython_dir)!r} ({probe} is not a writable directory)")


def write_profile(plan: WritePlan, *, force: bool = False) -> Path | None:
    """Write every file of the plan, or none. Returns the backup directory when files were replaced."""
    profile_dir = plan.profile_dir
    if plan.exists and not force:
        raise BadInput(
            f"profile {profile_dir.name.removeprefix('profile_')!r} already exists at {profile_dir};"
            " use --force to replace it (a backup of its files is kept)"
        )
    _check_writable(profile_dir.parent)
    created_dir = not profile_dir.exists()
    backup_dir = None
    try:
        ensure_private_dir(profile_dir)
        ensure_private_dir(profile_dir / "security")
        if plan.exists:
            backup_dir = profile_dir / f"backup-{time.strftime('%Y%m%d-%H%M%S')}"
            suffix = 0
            while backup_dir.exists():
                suffix += 1
                backup_dir = backup_dir.with_name(f"{backup_dir.name.split('.')[0]}.{suffix}")
            backup_dir.mkdir(mode=PRIVATE_DIR_MODE)
            for name in plan.existing:
                shutil.copy2(profile_dir / name, backup_dir / name)
        _replace_all(profile_dir, plan.files)
    except OSError as exc:
        if created_dir:
            shutil.rmtree(profile_dir, ignore_errors=True)
        raise KitError(f"could not write profile at {profile_dir}: {exc.strerror or exc}") from None
    return backup_dir


def _replace_all(directory: Path, files: dict[str, str]) -> None:
    """Stage every file first, then swap them in: a failure while staging changes nothing."""
    staged: list[tuple[Path, Path]] = []
    try:
        for name, text in files.items():
            tmp = directory / f".{name}.staged"
            atomic_write(tmp, text, 0o600)
            staged.append((tmp, directory / name))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, final in staged:
        os.replace(tmp, final)


def ensure_ipython_dir_writable(ipython_dir: str | os.PathLike | None) -> Path:
    path = resolve_ipython_dir(ipython_dir)
    _check_writable(path)
    return path
