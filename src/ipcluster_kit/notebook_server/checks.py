"""What is checked before JupyterLab starts: the port, the profile, ipyparallel's lab extension."""

from __future__ import annotations

import errno
import os
import socket
import sys
from pathlib import Path

from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.notebooks import PROFILE_ENV
from ipcluster_kit.validate import check_count

HOST = "127.0.0.1"
DEFAULT_PORT = 8888
PORT_TRIES = 50  # like Jupyter's own port_retries, when no --port is given
LABEXTENSION = "ipyparallel-labextension"


def port_in_use(port: int, host: str = HOST) -> bool:
    """True when something has ``host:port`` bound (as a listening server would).

    Binds the way Tornado does (SO_REUSEADDR), so connections lingering in TIME_WAIT from an
    earlier server do not count as "in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def check_port(port: int | None) -> int:
    """The port to serve on: ``port`` if it is free (BadInput if not), else the first free one from 8888."""
    if port is not None:
        check_count("--port", port, 1, maximum=65535)
        if port_in_use(port):
            raise BadInput(f"port {port} on {HOST} is already in use; choose another with --port")
        return port
    for candidate in range(DEFAULT_PORT, DEFAULT_PORT + PORT_TRIES):
        if not port_in_use(candidate):
            return candidate
    raise KitError(f"no free port in {DEFAULT_PORT}-{DEFAULT_PORT + PORT_TRIES - 1} on {HOST}; choose one with --port")


def labextension_status() -> tuple[Path | None, bool]:
    """Where ipyparallel's JupyterLab extension is installed (None: nowhere), and whether it is disabled."""
    from jupyter_core.paths import jupyter_path

    paths = jupyter_path("labextensions")
    found = next((Path(p) / LABEXTENSION for p in paths if (Path(p) / LABEXTENSION / "package.json").is_file()), None)
    disabled = False
    try:
        from jupyterlab_server.config import get_page_config

        page_config = get_page_config(paths, logger=None)
        disabled = bool(page_config.get("disabledExtensions", {}).get(LABEXTENSION))
    except Exception:  # an odd page_config.json must not stop the server from starting
        pass
    return found, disabled


def extension_warnings() -> list[str]:
    """Why the IPython Parallel panel would not show, if it would not."""
    warnings = []
    found, disabled = labextension_status()
    if found is None:
        warnings.append(
            f"ipyparallel's JupyterLab extension ({LABEXTENSION}) is not installed in this environment;"
            " the IPython Parallel panel will be missing (reinstall ipyparallel)"
        )
    elif disabled:
        warnings.append(
            f"ipyparallel's JupyterLab extension is disabled; enable it with"
            f" `{Path(sys.executable).parent / 'jupyter'} labextension enable {LABEXTENSION}`"
        )
    return warnings


def profiles_in(ipython_dir: Path) -> list[str]:
    """Names of the IPython profiles in ``ipython_dir`` (what the IPython Parallel panel lists)."""
    try:
        return sorted(p.name.removeprefix("profile_") for p in Path(ipython_dir).iterdir() if p.is_dir() and p.name.startswith("profile_"))
    except OSError:
        return []


def resolve_profile(profile: str | None, ipython_dir: Path) -> str | None:
    """The profile the notebooks should use (``--profile``, else $IPCK_PROFILE), checked to exist."""
    from ipcluster_kit.profile.store import read_spec

    name = profile or os.environ.get(PROFILE_ENV) or None
    if name:
        read_spec(name, ipython_dir)  # BadInput naming the profile when it is unknown
    return name
