"""One JupyterLab process: started in its own session from this environment, stopped by PID."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from ipcluster_kit import processes
from ipcluster_kit.errors import KitError
from ipcluster_kit.files import ensure_private_dir
from ipcluster_kit.notebook_server.checks import HOST
from ipcluster_kit.notebooks import PROFILE_ENV
from ipcluster_kit.processes import ProcessRecord

START_TIMEOUT = 90.0  # seconds for JupyterLab to answer; generous: the machines are shared
STOP_TIMEOUT = 30.0  # seconds for JupyterLab to shut its kernels down and exit after SIGTERM
LEFTOVER_GRACE = 5.0  # seconds for the server's children to finish exiting by themselves
LOG_DIR = ".ipcluster-kit"  # inside the working folder, hidden in JupyterLab's file browser
LOG_NAME = "jupyter-server.log"


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
        """SIGTERM to the server's group and up to ``timeout`` for it to exit (Jupyter shuts its
        kernels down, and they stop their clusters); then whatever of it and of what it started is
        still there is stopped by :func:`ipcluster_kit.processes.stop_processes`.

        Returns ``{"graceful": bool, "leftovers_stopped": [pids]}``.
        """
        if self.proc is None:
            return {"graceful": True, "leftovers_stopped": []}
        # Noted before the server goes: once it has exited, its orphans belong to init and can no
        # longer be found through it. Kernels run in sessions of their own, and so do the
        # controllers and engines that ipp.Cluster starts from a notebook.
        below = processes.descendants(self.proc.pid, role="jupyter-child")
        graceful = True
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                graceful = False
        # After a clean shutdown nothing is left; after a kill (or a kernel that ignored its
        # shutdown) the rest is stopped, by PID and start time. A short grace first: an engine's
        # nanny, say, exits a moment after its engine.
        grace = time.monotonic() + min(LEFTOVER_GRACE, timeout)
        while time.monotonic() < grace and any(processes.is_alive(r) for r in below):
            time.sleep(0.05)
        report = processes.stop_processes([r for r in (self.record, *below) if r is not None], timeout=min(10.0, timeout))
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.redirect_path.unlink(missing_ok=True)
        ended = [r.pid for r in report.stopped + report.killed if r.pid != self.proc.pid]
        return {"graceful": graceful, "leftovers_stopped": ended, "left_running": [r.pid for r in report.left]}


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
