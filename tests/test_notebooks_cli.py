"""``ipcluster-kit notebooks`` end to end: copying, checks before start, a real JupyterLab, stopping.

Jupyter's own files (config, data, runtime) go to temporary directories, so that the user's
~/.jupyter plays no part; the kernelspecs and lab extensions of the venv are found as usual.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from helpers import KIT, run_kit, tree_snapshot, wait_for

pytestmark = pytest.mark.e2e

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
URL = re.compile(r"http://127\.0\.0\.1:(\d+)/lab\?token=([0-9a-f]+)")
START_TIMEOUT = 120  # JupyterLab on 2 shared cores


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    from ipcluster_kit.processes import is_alive, record_of

    record = record_of(pid)
    return record is not None and is_alive(record)


@pytest.fixture
def jupyter_env(tmp_path):
    ipython_dir = tmp_path / "ipython"
    env = {
        "IPYTHONDIR": str(ipython_dir),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
        "COLUMNS": "200",
    }
    return {"env": env, "ipython_dir": ipython_dir, "tmp": tmp_path}


class KitServer:
    """``ipcluster-kit notebooks`` running in the background; its output read line by line."""

    def __init__(self, args: list[str], env: dict, cwd: Path, no_browser: bool = True):
        full_env = os.environ.copy()
        full_env.update(env)
        full_env.pop("IPCK_PROFILE", None)
        self.proc = subprocess.Popen(
            KIT + ["notebooks", *(["--no-browser"] if no_browser else []), *args], cwd=cwd, env=full_env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: queue.Queue = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        for stream, sink in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()
        self.url = self.port = self.token = self.jupyter_pid = None

    def _pump(self, stream, sink):
        for line in stream:
            sink.append(line)
            self.lines.put(line)

    def wait_for_url(self, timeout: float = START_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None and self.lines.empty():
                raise AssertionError(f"the command exited ({self.proc.returncode}): {''.join(self.stdout)}{''.join(self.stderr)}")
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            pid = re.search(r"JupyterLab \(PID (\d+)\)", line)
            if pid:
                self.jupyter_pid = int(pid.group(1))
            match = URL.search(line)
            if match:
                self.url, self.port, self.token = match.group(0), int(match.group(1)), match.group(2)
                return self.url
        raise AssertionError(f"no URL within {timeout} s: {''.join(self.stdout)}{''.join(self.stderr)}")

    def get(self, path: str, token: bool = True):
        headers = {"Authorization": f"token {self.token}"} if token else {}
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()

    def post(self, path: str, body: dict):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def stop(self, sig=signal.SIGINT, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"the command did not exit within {timeout} s of {sig!r}")

    def kill(self) -> None:
        """Last-resort clean-up for a failed test: the command, then its server by PID."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.jupyter_pid and alive(self.jupyter_pid):
            os.killpg(self.jupyter_pid, signal.SIGKILL)


@pytest.fixture
def servers():
    started: list[KitServer] = []
    yield started
    for server in started:
        server.kill()


def test_serves_copies_keeps_and_stops_on_sigint(jupyter_env, servers):
    tmp, env = jupyter_env["tmp"], jupyter_env["env"]
    run_kit("init", "mine", "--ipython-dir", str(jupyter_env["ipython_dir"]), "--engines", "2", check=True)
    work = tmp / "work"
    work.mkdir()
    mine = '{"my": "edits"}'
    (work / "01-quickstart.ipynb").write_text(mine)
    installed_before = tree_snapshot(NOTEBOOKS_DIR)
    port = free_port()

    server = KitServer(["--dir", str(work), "--port", str(port), "--profile", "mine"], env, tmp)
    servers.append(server)
    url = server.wait_for_url()
    assert server.port == port and len(server.token) >= 32
    out = "".join(server.stdout)
    assert re.search(r"Kept existing copies in .*: 01-quickstart\.ipynb", out), out
    assert re.search(r"Copied \d+ file\(s\) to .*README\.md", out), out
    assert (work / "01-quickstart.ipynb").read_text() == mine  # kept, not overwritten
    assert (work / "README.md").read_bytes() == (NOTEBOOKS_DIR / "README.md").read_bytes()
    assert not (work / ".keep").exists()

    # The server: this Python's JupyterLab, on 127.0.0.1 only, token required.
    status, body = server.get("/api/status")
    assert status == 200 and "started" in json.loads(body)
    with pytest.raises(urllib.error.HTTPError) as denied:
        server.get("/api/status", token=False)
    assert denied.value.code == 403
    cmdline = Path(f"/proc/{server.jupyter_pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[0].decode() == sys.executable and b"jupyterlab" in cmdline
    assert server.token.encode() not in b" ".join(cmdline)  # the token is not on the command line
    environ = dict(
        item.split(b"=", 1) for item in Path(f"/proc/{server.jupyter_pid}/environ").read_bytes().split(b"\0") if b"=" in item
    )
    assert environ[b"IPCK_PROFILE"] == b"mine"
    assert environ[b"IPYTHONDIR"] == str(jupyter_env["ipython_dir"]).encode()
    # The ipyparallel server extension is on and sees the kit's profile (what the side panel shows).
    status, body = server.get("/ipyparallel/clusters")
    assert "mine" in [c["cluster"]["profile"] for c in json.loads(body)]
    # The lab extension of the IPython Parallel panel is served.
    status, body = server.get("/lab/api/settings/ipyparallel-labextension:plugin")
    assert status == 200

    # A kernel, so that stopping has something to shut down.
    kernel = server.post("/api/kernels", {"name": "python3"})
    from ipcluster_kit.processes import descendants

    below = wait_for(lambda: descendants(server.jupyter_pid), 60, what="a kernel below JupyterLab")
    assert url == f"http://127.0.0.1:{port}/lab?token={server.token}" and re.fullmatch("[0-9a-f]{48}", server.token)

    code = server.stop(signal.SIGINT)
    assert code == 0, "".join(server.stderr)
    assert "JupyterLab stopped." in "".join(server.stdout)
    assert "Traceback" not in "".join(server.stderr)
    assert not alive(server.jupyter_pid)
    assert [r.pid for r in below if alive(r.pid)] == [], f"kernel {kernel['id']} or its children outlived the server"
    with socket.socket() as sock:  # the port is free again
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    assert tree_snapshot(NOTEBOOKS_DIR) == installed_before  # the installed notebooks were never touched
    log = work / ".ipcluster-kit" / "jupyter-server.log"
    assert oct(log.stat().st_mode & 0o777) == "0o600"


KERNEL_CODE = textwrap.dedent(
    """
    import logging, shutil, tempfile
    import ipyparallel as ipp
    from ipcluster_kit import api
    from ipcluster_kit.notebooks import cleanup_stack

    stack = cleanup_stack()
    tmp = tempfile.mkdtemp(prefix="ipck-kernel-")
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    made = api.init_profile("k", ipython_dir=tmp, preset="local", engines=2)
    cluster = ipp.Cluster(profile_dir=str(made.profile_dir), log_level=logging.CRITICAL)
    stack.callback(cluster.stop_cluster_sync)
    rc = cluster.start_and_connect_sync()
    stack.callback(rc.close)
    """
)


def test_ctrl_c_while_a_notebook_cluster_runs_leaves_nothing(jupyter_env, servers):
    """The user presses Ctrl-C with a kernel whose cluster is up (its last cell never ran): the
    kernel is shut down, closes its clean-up stack, and nothing is left, not even a temp file."""
    from jupyter_client import BlockingKernelClient

    from ipcluster_kit.processes import descendants

    tmp, env = jupyter_env["tmp"], dict(jupyter_env["env"])
    kernel_tmp = tmp / "kernel-tmp"
    kernel_tmp.mkdir()
    env["TMPDIR"] = str(kernel_tmp)
    server = KitServer(["--dir", str(tmp / "work"), "--port", str(free_port())], env, tmp)
    servers.append(server)
    server.wait_for_url()
    kernel = server.post("/api/kernels", {"name": "python3"})
    client = BlockingKernelClient(connection_file=str(Path(env["JUPYTER_RUNTIME_DIR"]) / f"kernel-{kernel['id']}.json"))
    client.load_connection_file()
    client.start_channels()
    try:
        # The shell channel alone (a reply and a user expression): no race with IOPub subscriptions.
        msg_id = client.execute(KERNEL_CODE, silent=False, user_expressions={"n": "len(rc.ids)"})
        deadline = time.monotonic() + 180
        while True:
            reply = client.get_shell_msg(timeout=max(deadline - time.monotonic(), 1))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        assert reply["content"]["status"] == "ok", reply["content"]
        assert reply["content"]["user_expressions"]["n"]["data"]["text/plain"] == "2"
    finally:
        client.stop_channels()
    below = descendants(server.jupyter_pid)
    assert sum("ipyparallel.engine" in Path(f"/proc/{r.pid}/cmdline").read_text(errors="replace") for r in below if alive(r.pid)) >= 2
    assert list(kernel_tmp.iterdir())

    assert server.stop(signal.SIGINT) == 0, "".join(server.stderr)
    assert "left behind" not in "".join(server.stderr), "".join(server.stderr)  # the kernel cleaned up itself
    wait_for(lambda: not [r for r in below if alive(r.pid)], 10, what="every process below JupyterLab to exit")
    assert list(kernel_tmp.iterdir()) == []


def test_sigterm_stops_it_too_and_defaults_and_the_browser(jupyter_env, servers):
    """Default folder and port; without --no-browser the kit opens the user's browser ($BROWSER here)
    on a private redirect page, so that the token is not on the browser's command line."""
    tmp = jupyter_env["tmp"]
    opened = tmp / "browser-args"
    browser = tmp / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {opened}\n')
    browser.chmod(0o755)
    env = dict(jupyter_env["env"], BROWSER=f"{browser} %s")
    server = KitServer([], env, tmp, no_browser=False)
    servers.append(server)
    server.wait_for_url()
    assert (tmp / "ipcluster-kit-notebooks" / "01-quickstart.ipynb").is_file()
    assert "none yet" in "".join(server.stdout)  # no profile in this IPYTHONDIR
    arg = wait_for(lambda: opened.is_file() and opened.read_text().strip(), 30, what="the browser to be started")
    assert arg.startswith("file://") and server.token not in arg
    page = Path(urllib.request.url2pathname(arg[len("file://"):]))
    assert server.url in page.read_text().replace("&amp;", "&")
    assert oct(page.stat().st_mode & 0o777) == "0o600"
    assert server.stop(signal.SIGTERM) == 0
    assert not alive(server.jupyter_pid)
    assert not page.exists()


def test_port_in_use_is_one_line_and_nothing_is_written(jupyter_env):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        work = jupyter_env["tmp"] / "never"
        result = run_kit("notebooks", "--no-browser", "--dir", str(work), "--port", str(port), env=jupyter_env["env"])
    assert result.returncode == 2
    assert result.stderr == f"ipcluster-kit: error: port {port} on 127.0.0.1 is already in use; choose another with --port\n"
    assert result.stdout == ""
    assert not work.exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--port", "70000"], "--port 70000"),
        (["--profile", "ghost"], "ghost"),
        (["--dir", "FILE"], "is not a directory"),
        (["--dir", "INSTALLED"], "installed notebooks folder"),
    ],
)
def test_bad_input_is_one_line(jupyter_env, args, needle):
    a_file = jupyter_env["tmp"] / "a-file"
    a_file.write_text("")
    args = [{"FILE": str(a_file), "INSTALLED": str(NOTEBOOKS_DIR)}.get(a, a) for a in args]
    before = tree_snapshot(NOTEBOOKS_DIR)
    result = run_kit("notebooks", "--no-browser", "--port", str(free_port()), *args, env=jupyter_env["env"])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ipcluster-kit: error:") and needle in lines[0], result.stderr
    assert tree_snapshot(NOTEBOOKS_DIR) == before


def test_ipython_dir_is_where_the_profile_is_looked_up(jupyter_env, tmp_path):
    """A profile that exists only in another IPython directory: unknown without --ipython-dir, found
    with it (the run then stops at the next check, a port in use, before anything starts)."""
    other = tmp_path / "other-ipython"
    run_kit("init", "elsewhere", "--ipython-dir", str(other), check=True)
    args = ["notebooks", "--no-browser", "--dir", str(tmp_path / "work"), "--profile", "elsewhere"]
    missing = run_kit(*args, "--port", str(free_port()), env=jupyter_env["env"])
    assert missing.returncode == 2 and "'elsewhere'" in missing.stderr, missing.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        found = run_kit(*args, "--ipython-dir", str(other), "--port", str(port), env=jupyter_env["env"])
    assert found.stderr == f"ipcluster-kit: error: port {port} on 127.0.0.1 is already in use; choose another with --port\n"
    assert not (tmp_path / "work").exists()


def test_copy_examples_keeps_existing_files_and_skips_placeholders(tmp_path):
    from ipcluster_kit.notebook_server.copying import copy_examples

    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.ipynb").write_text("A")
    (source / "sub" / "b.ipynb").write_text("B")
    (source / ".keep").write_text("")
    (source / ".ipynb_checkpoints").mkdir()
    (source / ".ipynb_checkpoints" / "a-checkpoint.ipynb").write_text("old")
    target = tmp_path / "dst"
    (target).mkdir()
    (target / "a.ipynb").write_text("mine")
    report = copy_examples(target, source)
    assert report.copied == ["sub/b.ipynb"] and report.kept == ["a.ipynb"]
    assert (target / "a.ipynb").read_text() == "mine" and (target / "sub" / "b.ipynb").read_text() == "B"
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*")) == ["a.ipynb", "sub", "sub/b.ipynb"]
    again = copy_examples(target, source)
    assert again.copied == [] and again.kept == ["a.ipynb", "sub/b.ipynb"]


STUBBORN = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # A "kernel" in a session of its own that ignores SIGTERM too, like a wedged kernel.
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"],
        start_new_session=True)
    print(child.pid, flush=True)
    time.sleep(300)
    """
)


def test_a_server_that_ignores_sigterm_is_killed_with_what_it_started(tmp_path, monkeypatch):
    """The fallback path of LabServer.stop: SIGKILL after the timeout, then its orphans by PID."""
    from ipcluster_kit.notebook_server import server as lab
    from ipcluster_kit.notebook_server.server import LabServer

    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN)
    monkeypatch.setattr(lab, "jupyter_command", lambda root, port: [sys.executable, str(script)])
    server = LabServer(tmp_path, free_port(), tmp_path / "ipython")
    server.start()
    try:
        child = int(wait_for(lambda: server.log_path.read_text().strip(), 30, what="the child's PID"))
        started = time.monotonic()
        result = server.stop(timeout=1)
        assert time.monotonic() - started < 30
        assert result["graceful"] is False and child in result["leftovers_stopped"] and result["left_running"] == []
        assert not alive(server.pid) and not alive(child)
    finally:
        if server.proc.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
