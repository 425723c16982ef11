"""The example notebooks: copy them to a working folder, serve them with JupyterLab, and the
small helpers the notebooks themselves use.

``ipcluster-kit notebooks`` works in four steps, each a function here:

1. :func:`copy_examples` copies the packaged notebooks into a working folder. The installed files
   are never edited (Jupyter saves into the copy), and a copy that already exists is kept: it may
   hold the user's edits.
2. :func:`check_port` refuses a port that something already listens on, before anything starts.
3. :class:`LabServer` starts JupyterLab from this very environment (``sys.executable -m
   jupyterlab``), bound to 127.0.0.1, with ipyparallel's server extension enabled on the command
   line, IPYTHONDIR pointing at the kit's profiles (so the IPython Parallel panel lists them) and
   the token passed in the environment (not on the command line, where ``ps`` would show it).
4. :func:`serve` waits for Ctrl-C or SIGTERM and stops the server by PID: SIGTERM (Jupyter then
   shuts its kernels down, and they stop their clusters), a timeout, SIGKILL, and finally every
   process the server had started that is still there (kernels, controllers, engines).

For the notebooks: :data:`PROFILE_ENV` names the profile they should use, and
:func:`cleanup_stack` gives them one place to register what must be stopped, closed on the
kernel's exit (normal shutdown, restart, SIGTERM) if the last cell never runs.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ipcluster_kit import processes
from ipcluster_kit.processes import ProcessRecord
from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.files import ensure_private_dir

PROFILE_ENV = "IPCK_PROFILE"
"""Environment variable naming the kit profile the notebooks use (set by ``--profile``)."""

DEFAULT_DIR = "ipcluster-kit-notebooks"
DEFAULT_PORT = 8888
PORT_TRIES = 50  # like Jupyter's own port_retries, when no --port is given
HOST = "127.0.0.1"
START_TIMEOUT = 90.0  # seconds for JupyterLab to answer; generous: the machines are shared
STOP_TIMEOUT = 30.0  # seconds for JupyterLab to shut its kernels down and exit after SIGTERM
LEFTOVER_GRACE = 5.0  # seconds for the server's children to finish exiting by themselves
LOG_DIR = ".ipcluster-kit"  # inside the working folder, hidden in JupyterLab's file browser
LOG_NAME = "jupyter-server.log"
LABEXTENSION = "ipyparallel-labextension"

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


def notebook_names(source: Path | None = None) -> list[str]:
    """The example notebooks (``*.ipynb``), by relative path."""
    return [str(p) for p in example_files(source) if p.suffix == ".ipynb"]


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


# --------------------------------------------------------------------------- ports


def validate_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise BadInput(f"invalid --port {port}: it must be 1-65535")
    return port


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
        validate_port(port)
        if port_in_use(port):
            raise BadInput(f"port {port} on {HOST} is already in use; choose another with --port")
        return port
    for candidate in range(DEFAULT_PORT, DEFAULT_PORT + PORT_TRIES):
        if not port_in_use(candidate):
            return candidate
    raise KitError(f"no free port in {DEFAULT_PORT}-{DEFAULT_PORT + PORT_TRIES - 1} on {HOST}; choose one with --port")


# --------------------------------------------------------------------------- extensions


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


# --------------------------------------------------------------------------- the server


def descendants(pid: int) -> list[ProcessRecord]:
    """Every live process below ``pid`` (children, grandchildren, ...), recorded with its start time."""
    return processes.descendants(pid, role="jupyter-child")


def jupyter_command(root_dir: Path, port: int) -> list[str]:
    """JupyterLab from this environment, on 127.0.0.1:port, with ipyparallel's server extension on.

    JupyterLab never opens the browser itself: a browser it started would be its child, and
    would be stopped with it (see :meth:`LabServer.open_browser_page`).
    """
    command = [
        sys.executable, "-m", "jupyterlab",
        f"--ServerApp.ip={HOST}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # the port we checked and printed, or an error: never another one
        f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.open_browser=False",
        # Merged with the extensions enabled in config files: this adds ipyparallel (or re-enables it).
        "--ServerApp.jpserver_extensions", "ipyparallel=True",
    ]  # fmt: skip
    if running_as_root():
        # Jupyter refuses root unless told; the server only listens on 127.0.0.1, behind a token.
        command.append("--ServerApp.allow_root=True")
    return command


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def server_env(ipython_dir: Path, profile: str | None, token: str) -> dict:
    env = os.environ.copy()
    env["IPYTHONDIR"] = str(ipython_dir)
    env["JUPYTER_TOKEN"] = token
    if profile:
        env[PROFILE_ENV] = profile
    else:
        env.pop(PROFILE_ENV, None)
    # `!ipcluster-kit ...`, `ipcluster` and `jupyter` in a notebook resolve to this environment too.
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env.pop("IPP_CONNECTION_INFO", None)
    return env


def _term_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the kit's process dies.

    Covers the one way out :func:`serve` cannot handle, the kit being killed with SIGKILL:
    JupyterLab then still gets its SIGTERM and shuts its kernels down.
    """
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except Exception:  # not Linux: no such safety net, nothing else changes
        pass


class LabServer:
    """One JupyterLab process, started in its own session and stopped by PID."""

    def __init__(self, root_dir: Path, port: int, ipython_dir: Path, profile: str | None = None, open_browser: bool = False):
        self.root_dir = Path(root_dir)
        self.port = port
        self.ipython_dir = Path(ipython_dir)
        self.profile = profile
        self.open_browser = open_browser
        self.token = secrets.token_hex(24)
        self.log_path = self.root_dir / LOG_DIR / LOG_NAME
        self.proc: subprocess.Popen | None = None
        self.record: ProcessRecord | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/lab?token={self.token}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        ensure_private_dir(self.log_path.parent)
        # The log holds the token (Jupyter prints its URL): readable by its owner only.
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "ab") as log:
            # A new session: Ctrl-C in the terminal reaches only us (Jupyter would otherwise ask
            # "Shutdown this Jupyter server (y/[n])?" on stdin), and we decide how it stops.
            self.proc = subprocess.Popen(
                jupyter_command(self.root_dir, self.port),
                cwd=self.root_dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=server_env(self.ipython_dir, self.profile, self.token), start_new_session=True,
                preexec_fn=_term_with_parent,
            )  # fmt: skip
        self.record = processes.record_of(self.proc.pid, role="jupyter", log=str(self.log_path)) or ProcessRecord(self.proc.pid, None, "jupyter", str(self.log_path))

    @property
    def redirect_path(self) -> Path:
        return self.log_path.parent / "open.html"

    def open_browser_page(self) -> bool:
        """Open the URL in the user's browser, as Jupyter does: through a private local page that
        redirects, so that the token is not on the browser's command line for ``ps`` to show.

        The browser is started from the kit's process in a session of its own (Python's
        ``webbrowser`` does that), so it is not among the server's processes and stays open when
        the server stops. Returns False when no browser could be started.
        """
        import html
        import webbrowser

        page = (
            '<!DOCTYPE html><html><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="1;url={html.escape(self.url)}"></head>'
            f'<body><p>Opening <a href="{html.escape(self.url)}">JupyterLab</a> ...</p></body></html>'
        )
        from ipcluster_kit.files import write_private

        write_private(self.redirect_path, page)
        try:
            return bool(webbrowser.open(self.redirect_path.as_uri(), new=2))
        except Exception:
            return False

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        # The log may hold the token: never repeat it.
        return " | ".join(line.strip().replace(self.token, "<token>") for line in text[-lines:])

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        """True when the server answers an authenticated API request."""
        request = urllib.request.Request(
            f"http://{HOST}:{self.port}/api/status", headers={"Authorization": f"token {self.token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return response.status == 200 and "started" in json.loads(response.read() or b"{}")
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def wait_ready(self, timeout: float = START_TIMEOUT, stop: threading.Event | None = None) -> bool:
        """Wait until the server answers. False when ``stop`` was set first; KitError when it exits or times out."""
        deadline = time.monotonic() + timeout
        while True:
            if stop is not None and stop.is_set():
                return False
            if not self.running():
                code = self.proc.returncode if self.proc else None
                raise KitError(f"JupyterLab exited on start (status {code}); log {self.log_path}: {self.log_tail()}")
            if self.ready():
                return True
            if time.monotonic() >= deadline:
                raise KitError(f"JupyterLab did not answer on {HOST}:{self.port} within {timeout:g} s; log {self.log_path}")
            time.sleep(0.2)

    def stop(self, timeout: float = STOP_TIMEOUT) -> dict:
        """SIGTERM, wait up to ``timeout``, SIGKILL; then stop what it started and left behind
        (each of those steps also waits at most ``timeout``).

        Returns ``{"graceful": bool, "leftovers_stopped": [pids]}``.
        """
        if self.proc is None:
            return {"graceful": True, "leftovers_stopped": []}
        # Noted before the server goes: once it has exited, its orphans belong to init and can no
        # longer be found through it.
        below = descendants(self.proc.pid)
        graceful = True
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                graceful = False
                _signal_group(self.proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=10)
        # The server's group (anything it started without a session of its own) goes with it.
        if any(r.pid != self.proc.pid for r in processes.tree([self.record] if self.record else [])):
            _signal_group(self.proc.pid, signal.SIGKILL)
        # Kernels run in sessions of their own, and so do the controllers and engines that
        # ipp.Cluster starts from a notebook: after a clean shutdown none is left; after a kill
        # (or a kernel that ignored its shutdown) they are stopped here, by PID and start time.
        # A short grace first: an engine's nanny, say, exits a moment after its engine.
        grace = time.monotonic() + min(LEFTOVER_GRACE, timeout)
        while time.monotonic() < grace and any(processes.is_alive(r) for r in below):
            time.sleep(0.05)
        left = [r for r in below if processes.is_alive(r)]
        stopped = processes.stop_processes(left, timeout=min(10.0, timeout)).stopped if left else []
        self.redirect_path.unlink(missing_ok=True)
        return {"graceful": graceful, "leftovers_stopped": [r.pid for r in stopped]}


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


@contextlib.contextmanager
def stop_signals() -> "contextlib.AbstractContextManager[threading.Event]":
    """An event set by SIGINT or SIGTERM while the block runs; the old handlers come back after."""
    event = threading.Event()
    received: list[int] = []

    def handler(signum, frame):
        received.append(signum)
        event.set()

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield event
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


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


def serve(
    server: LabServer,
    *,
    on_ready: Callable[[LabServer], None] = lambda server: None,
    on_stopping: Callable[[str], None] = lambda reason: None,
    on_no_browser: Callable[[LabServer], None] = lambda server: None,
    start_timeout: float = START_TIMEOUT,
    stop_timeout: float = STOP_TIMEOUT,
) -> dict:
    """Start ``server``, call ``on_ready`` once it answers, and run until SIGINT/SIGTERM or until it exits.

    The server is stopped on every way out, exceptions included. Returns what :meth:`LabServer.stop`
    returned plus ``reason`` (``"signal"`` or ``"exited"``) and the server's ``returncode``.
    """
    with stop_signals() as stop:
        try:
            server.start()
            reason = "signal"
            if server.wait_ready(start_timeout, stop):
                on_ready(server)
                if server.open_browser and not server.open_browser_page():
                    on_no_browser(server)
                while not stop.wait(0.5):
                    if not server.running():
                        reason = "exited"
                        break
            on_stopping(reason)
        finally:
            result = server.stop(stop_timeout)
    result.update(reason=reason, returncode=server.proc.returncode if server.proc else None)
    return result


# --------------------------------------------------------------------------- in the notebooks


_STACKS: list[contextlib.ExitStack] = []


def _close_stacks() -> None:
    while _STACKS:
        stack = _STACKS.pop()
        try:
            stack.close()
        except Exception:  # one failed clean-up must not skip the others
            import traceback

            traceback.print_exc()


def _on_sigterm(signum, frame) -> None:
    _close_stacks()
    # Then die of the signal as if there had been no handler.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def cleanup_stack() -> contextlib.ExitStack:
    """An ExitStack for a notebook's resources, closed by its last cell or, failing that, when the kernel ends.

    A try/finally cannot span cells. Instead each resource is pushed onto this stack as soon as it
    exists (``stack.callback(cluster.stop_cluster_sync)``) and the notebook's last cell calls
    ``stack.close()``. If that cell never runs (a cell failed, the kernel was restarted or shut
    down), the stack is closed when the kernel process ends:

    * Jupyter stops a kernel with a shutdown request, and the kernel exits normally: ``atexit``
      closes the stack;
    * if the kernel does not exit in time (a cell is still running), Jupyter sends SIGTERM: the
      handler installed here closes the stack, then lets the signal end the process. (Raising
      SystemExit instead would not do: IPython catches it inside a running cell.)

    Closing twice is harmless: a closed stack is empty.
    """
    import atexit

    stack = contextlib.ExitStack()
    _STACKS.append(stack)
    atexit.register(stack.close)
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)
    return stack
