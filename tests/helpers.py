"""Small helpers shared by the tests: run the CLI, start and stop real ipyparallel processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

KIT = [sys.executable, "-m", "ipcluster_kit"]


def run_kit(*args: str, env: dict | None = None, timeout: float = 120, check: bool = False,
            cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:  # fmt: skip
    full_env = os.environ.copy()
    full_env.update(env or {})
    full_env.setdefault("COLUMNS", "200")
    result = subprocess.run(KIT + list(args), capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"ipcluster-kit {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def one_line_error(result: subprocess.CompletedProcess, code: int, *words: str) -> None:
    """The CLI's answer to bad input or a failure: exit ``code`` and one error line naming ``words``."""
    assert result.returncode == code, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ipcluster-kit: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


HEAVY_MODULES = ("ipyparallel", "IPython", "zmq", "matplotlib", "asyncssh", "nbclient", "jupyterlab")


def modules_loaded_by(argv: list[str], packages: tuple[str, ...] = HEAVY_MODULES) -> tuple[list[str], str]:
    """Run ``ipcluster-kit ARGV`` in a fresh interpreter: the modules of ``packages`` it imported, and its output."""
    import ast

    code = (
        "import sys, runpy\n"
        f"sys.argv = ['ipcluster-kit', *{list(argv)!r}]\n"
        "try:\n    runpy.run_module('ipcluster_kit', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        f"packages = {tuple(packages)!r}\n"
        "print('LOADED', sorted(m for m in sys.modules if any(m == p or m.startswith(p + '.') for p in packages)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    output, _, loaded = result.stdout.rpartition("LOADED ")
    return ast.literal_eval(loaded.strip()), output


def tree_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: compare before and after to prove nothing changed."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Controller:
    """A real ``ipcontroller`` on a profile directory, stopped (with its process group) by PID."""

    def __init__(self, profile_dir: Path, *args: str):
        self.profile_dir = Path(profile_dir)
        self.log = open(self.profile_dir / "test-controller.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ipyparallel.controller", f"--profile-dir={self.profile_dir}", *args],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def connection_info(self, role: str = "client", timeout: float = 30) -> dict:
        path = self.profile_dir / "security" / f"ipcontroller-{role}.json"

        def complete():
            # ipyparallel writes the file in place (not atomically): wait until it parses as a
            # whole connection file, not until it merely exists.
            if self.proc.poll() is not None:
                raise AssertionError(f"controller exited: {(self.profile_dir / 'test-controller.log').read_text()[-2000:]}")
            try:
                info = json.loads(path.read_text())
            except (OSError, ValueError):
                return None
            return info if isinstance(info, dict) and {"key", "location"} <= info.keys() else None

        return wait_for(complete, timeout, what=f"a complete {path}")

    def stop(self) -> None:
        stop_process_group(self.proc)
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def listening_ports(pids: set[int]) -> set[int]:
    """TCP ports in LISTEN state owned by ``pids``, read from /proc (no extra tools needed)."""
    inodes: dict[str, int] = {}
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            for fd in fd_dir.iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except OSError:
            continue
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def process_group(pgid: int) -> set[int]:
    members = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "stat").read_text()
            except OSError:
                continue
            fields = raw[raw.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.add(int(entry.name))
    return members


def stop_process_group(proc: subprocess.Popen, timeout: float = 10) -> None:
    """TERM the process group ``proc`` leads (a controller and its schedulers), KILL what is left
    after ``timeout``, and reap ``proc``."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group: none may outlive it
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


def ipyparallel_batch_script(profile_dir: Path, batch_file: Path, engines: int | None = None) -> str:
    """The job script ipyparallel's own engine launcher writes for ``profile_dir`` (cluster id
    ``cid``; ``engines`` or the profile's count): what ``init --dry-run`` must show."""
    code = (
        "import ipyparallel as ipp\n"
        f"c = ipp.Cluster(profile_dir={str(profile_dir)!r}, cluster_id='cid')\n"
        f"l = c.engine_launcher_class(parent=c, config=c.config, profile_dir={str(profile_dir)!r}, cluster_id='cid')\n"
        f"l.batch_file = {str(batch_file)!r}\n"
        f"l.write_batch_script({engines if engines is not None else 'c.n'})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, capture_output=True)
    return batch_file.read_text()
