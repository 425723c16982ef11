"""Copying the packaged example notebooks into a working folder, never over the user's copies."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ipcluster_kit.errors import BadInput, KitError

DEFAULT_DIR = "ipcluster-kit-notebooks"
# Never copied: placeholders and files Jupyter or Python leave behind in the source folder.
_SKIP = {".keep", ".gitkeep", ".ipynb_checkpoints", "__pycache__", ".DS_Store"}

# --------------------------------------------------------------------------- copying


@dataclass
class CopyReport:
    """What :func:`copy_examples` did: files (relative paths) copied, and existing copies kept."""

    target: Path
    copied: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def example_files(source: Path | None = None) -> list[Path]:
    """The files of the packaged notebooks folder to copy, relative to it, sorted."""
    from ipcluster_kit.resources import notebooks_dir

    root = Path(source) if source is not None else notebooks_dir()
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in _SKIP for part in rel.parts) or not path.is_file():
            continue
        files.append(rel)
    return files


def _check_target(target: Path, source: Path) -> None:
    if target.exists() and not target.is_dir():
        raise BadInput(f"invalid --dir {str(target)!r}: it exists and is not a directory")
    resolved_target, resolved_source = target.resolve(), source.resolve()
    if resolved_target == resolved_source or resolved_source in resolved_target.parents:
        raise BadInput(
            f"invalid --dir {str(target)!r}: it is the installed notebooks folder {resolved_source};"
            " choose a working folder of your own (the installed files are never edited)"
        )
    probe = target
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise BadInput(f"cannot write to --dir {str(target)!r} ({probe} is not a writable directory)")


def check_target(target: str | os.PathLike, source: Path | None = None) -> Path:
    """The working folder as an absolute path, after checking it can be one (BadInput if not)."""
    from ipcluster_kit.resources import notebooks_dir

    path = Path(target).expanduser().absolute()
    _check_target(path, Path(source) if source is not None else notebooks_dir())
    return path


def copy_examples(target: str | os.PathLike, source: Path | None = None) -> CopyReport:
    """Copy the example notebooks into ``target``; keep any file that is already there.

    Validates first and writes nothing on bad input. Each copy is written to a temporary name
    and renamed, so an interrupted copy never leaves a half-written notebook.
    """
    from ipcluster_kit.resources import notebooks_dir

    source = Path(source) if source is not None else notebooks_dir()
    target = Path(target).expanduser().absolute()
    _check_target(target, source)
    report = CopyReport(target=target)
    try:
        target.mkdir(parents=True, exist_ok=True)
        for rel in example_files(source):
            dest = target / rel
            if dest.exists():
                report.kept.append(str(rel))
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.copying")
            shutil.copyfile(source / rel, tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
            report.copied.append(str(rel))
    except OSError as exc:
        raise KitError(f"could not copy the notebooks to {target}: {exc.strerror or exc}") from None
    return report
