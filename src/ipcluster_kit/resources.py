"""Where the packaged templates, presets and notebooks are.

In a wheel they live inside the package (``ipcluster_kit/profiles``); in a source checkout
(an editable install) they are the top-level ``profiles/`` and ``notebooks/`` folders.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    for candidate in (_PACKAGE / name, _PACKAGE.parent.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"ipcluster-kit's {name}/ folder is missing from the installation")


def profiles_dir() -> Path:
    return _data_dir("profiles")


def templates_dir() -> Path:
    return profiles_dir() / "templates"


def presets_dir() -> Path:
    return profiles_dir() / "presets"


def notebooks_dir() -> Path:
    return _data_dir("notebooks")
