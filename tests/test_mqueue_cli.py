"""`ipcluster-kit queue serve|produce|work|collect|status` end to end, every piece a real process.

All of it runs over loopback (127.0.0.1): workers on other hosts reach the server the same way,
over TCP with the shared key (the network-namespace test lab is not used here).
Every process is started in its own session and killed by PID (with its process group) at the end.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipcluster_kit.mqueue.authkey import load_authkey
from ipcluster_kit.mqueue.client import connect
from ipcluster_kit.mqueue.net import parse_address

KIT = [sys.executable, "-m", "ipcluster_kit", "queue"]

pytestmark = pytest.mark.e2e


def first_primes(count: int) -> list[int]:
    sieve = bytearray([1]) * 8001
    sieve[0:2] = b"\x00\x00"
    for i in range(2, 90):
        if sieve[i]:
            sieve[i * i :: i] = bytearray(len(sieve[i * i :: i]))
    return [i for i, flag in enumerate(sieve) if flag][:count]


PRIMES = first_primes(1000)


class Lab:
    """Processes of one test: a key file in tmp, outputs in files, everything killed at the end."""

    def __init__(self, tmp_path: Path):
        self.dir = tmp_path
        # The default key file, in a HOME of the test's own: the one place `serve` creates a key.
        self.home = tmp_path / "home"
        self.key_file = self.home / ".ipcluster-kit" / "queue.key"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("IPCK_QUEUE_")}
        self.env.update({"HOME": str(self.home), "COLUMNS": "200"})
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str, env: dict | None = None, stdout=None, prefix: tuple = ()) -> subprocess.Popen:
        """``ipcluster-kit queue ARGS`` (after ``prefix``, e.g. ``ip netns exec NS``), outputs in files."""
        out = stdout if stdout is not None else open(self.dir / f"{name}.out", "wb")
        err = open(self.dir / f"{name}.err", "wb")
        proc = subprocess.Popen(
            [*prefix, *KIT, *args], stdout=out, stderr=err, env={**self.env, **(env or {})},
            start_new_session=True, cwd=self.dir,
        )  # fmt: skip
        self.procs[name] = proc
        return proc

    def serve(self, *args: str, name: str = "serve", host: str = "127.0.0.1", timeout: float = 30) -> str:
        """Start a server on a free port; return its address from its 'listening on' line."""
        proc = self.start(name, "serve", "--address", f"{host}:0", *args, stdout=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        buf = b""
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or proc.poll() is not None:
                raise AssertionError(f"server did not start: {buf!r} {self.err(name)}")
            ready, _, _ = select.select([proc.stdout], [], [], remaining)
            if ready:
                buf += os.read(proc.stdout.fileno(), 4096)
        line = buf.decode().splitlines()[0]
        assert line.startswith("queue server listening on "), line
        return line.rsplit(" ", 1)[1]

    def run(self, *args: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(KIT + list(args), capture_output=True, text=True, timeout=timeout,
                              env={**self.env, **(env or {})}, cwd=self.dir)  # fmt: skip

    def wait(self, name: str, timeout: float = 60) -> int:
        return self.procs[name].wait(timeout=timeout)

    def out(self, name: str) -> str:
        path = self.dir / f"{name}.out"  # (a server's stdout is a pipe, not a file)
        return path.read_text() if path.exists() else ""

    def err(self, name: str) -> str:
        path = self.dir / f"{name}.err"
        return path.read_text() if path.exists() else ""

    def proxy(self, address: str):
        """A direct client for polling the server's counters from the test."""
        return connect(parse_address(address), load_authkey(self.key_file).key)

    def wait_stats(self, proxy, predicate, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = proxy.stats()
            if predicate(stats):
                return stats
            time.sleep(0.01)
        raise AssertionError(f"timed out waiting on the server; last stats {stats}")

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # own session: the worker and its children
                except ProcessLookupError:
                    pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        lab.close()


def one_error_line(stderr: str, *needles: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [ln for ln in stderr.splitlines() if ln.startswith("ipcluster-kit: error: ")]
    assert len(errors) == 1, stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def jobs_done(lab: Lab, name: str) -> int:
    line = [ln for ln in lab.out(name).splitlines() if ln.startswith("work done: ")][-1]
    return int(line.split()[2])


def test_thousand_primes_two_workers_in_order_exactly_once(lab):
    address = lab.serve("--until-drained")
    # The key file was created private, and its content never shown.
    assert lab.key_file.stat().st_mode & 0o777 == 0o600
    assert lab.key_file.parent.stat().st_mode & 0o777 == 0o700
    assert str(lab.key_file) in lab.err("serve")
    # Workers and collector start on an empty queue: they wait for it, they do not quit.
    lab.start("w1", "work", "-a", address)
    lab.start("w2", "work", "-a", address)
    lab.start("collect", "collect", "-a", address, "--json")
    proxy = lab.proxy(address)
    lab.wait_stats(proxy, lambda s: s["workers"]["active"] == 2)
    produced = lab.run("produce", "-a", address, "--count", "1000")
    assert produced.returncode == 0, produced.stderr
    assert "submitted 1000 jobs (ids 0..999)" in produced.stdout

    assert lab.wait("collect") == 0, lab.err("collect")
    doc = json.loads(lab.out("collect"))
    assert doc["results"] == PRIMES  # the first 1000 primes, in job order
    assert doc["count"] == 1000 and doc["errors"] == []
    stats = doc["stats"]
    assert stats["submitted"] == stats["done"] == 1000 and stats["duplicates"] == 0 and stats["requeued"] == 0
    assert lab.wait("w1") == 0 and lab.wait("w2") == 0, lab.err("w1") + lab.err("w2")
    assert jobs_done(lab, "w1") + jobs_done(lab, "w2") == 1000  # each job computed exactly once
    assert lab.wait("serve", 20) == 0  # --until-drained: it stops by itself
    key = lab.key_file.read_text().strip()
    for name in ("serve", "w1", "w2", "collect"):
        assert key not in lab.out(name) + lab.err(name)


def test_plain_collect_prints_one_value_per_line_in_job_order(lab):
    address = lab.serve()
    assert lab.run("produce", "-a", address, "--count", "50").returncode == 0
    lab.start("w", "work", "-a", address, "--processes", "2", "--batch", "4")
    collected = lab.run("collect", "-a", address)
    assert collected.returncode == 0, collected.stderr
    assert [int(x) for x in collected.stdout.split()] == PRIMES[:50]
    assert "collected 50 results" in collected.stderr
    assert lab.wait("w") == 0 and "by 2 process(es)" in lab.out("w")


def test_worker_killed_mid_run_loses_no_job(lab):
    address = lab.serve("--lease-timeout", "2")
    proxy = lab.proxy(address)
    victim = lab.start("victim", "work", "-a", address)
    lab.start("survivor", "work", "-a", address)
    lab.wait_stats(proxy, lambda s: s["workers"]["active"] == 2)
    assert lab.run("produce", "-a", address, "--count", "1000").returncode == 0
    lab.wait_stats(proxy, lambda s: s["done"] >= 150)
    victim.kill()  # SIGKILL, by PID, mid-run: it holds a leased job
    assert victim.wait(10) == -signal.SIGKILL

    collected = lab.run("collect", "-a", address, "--json", "--timeout", "60")
    assert collected.returncode == 0, collected.stderr
    doc = json.loads(collected.stdout)
    assert doc["results"] == PRIMES
    stats = doc["stats"]
    assert stats["done"] == 1000 and stats["duplicates"] == 0
    assert stats["requeued"] >= 1  # the victim's job went back to the queue
    assert stats["workers"]["disconnected"] == 1
    assert lab.wait("survivor") == 0


def test_stalled_worker_lease_expires_and_its_late_result_is_discarded(lab):
    address = lab.serve("--lease-timeout", "1")
    proxy = lab.proxy(address)
    frozen = lab.start("frozen", "work", "-a", address)
    lab.start("other", "work", "-a", address)
    lab.wait_stats(proxy, lambda s: s["workers"]["active"] == 2)
    assert lab.run("produce", "-a", address, "--count", "1000").returncode == 0
    lab.wait_stats(proxy, lambda s: s["done"] >= 150)
    os.kill(frozen.pid, signal.SIGSTOP)  # alive and connected, but silent: only the lease can tell
    try:
        collected = lab.run("collect", "-a", address, "--json", "--timeout", "60")
        assert collected.returncode == 0, collected.stderr
        doc = json.loads(collected.stdout)
        assert doc["results"] == PRIMES
        assert doc["stats"]["requeued"] >= 1 and doc["stats"]["workers"]["lost"] == 1
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    # Woken up, it delivers a result nobody needs any more: dropped, then told the work is done.
    assert lab.wait("frozen", 30) == 0, lab.err("frozen")
    stats = proxy.stats()
    assert stats["duplicates"] >= 1 and stats["done"] == 1000
    assert lab.wait("other") == 0


def test_wrong_key_is_refused_and_the_server_keeps_serving(lab):
    address = lab.serve()
    bad = lab.run("work", "-a", address, env={"IPCK_QUEUE_AUTHKEY": "not-the-key-0123456789"})
    assert bad.returncode == 1
    one_error_line(bad.stderr, f"authentication failed connecting to {address}", "IPCK_QUEUE_AUTHKEY")
    # The server says so in its log (its stderr), without a traceback; the peer got none either.
    deadline = time.monotonic() + 10
    while "refused a connection" not in lab.err("serve") and time.monotonic() < deadline:
        time.sleep(0.05)
    refused = [ln for ln in lab.err("serve").splitlines() if "queue server: refused a connection from 127.0.0.1:" in ln]
    assert refused and refused[0].endswith(": wrong key (authentication failed)"), lab.err("serve")
    assert "Traceback" not in lab.err("serve") + bad.stderr
    # Others are still served.
    lab.start("w", "work", "-a", address)
    assert lab.run("produce", "-a", address, "--count", "20").returncode == 0
    good = lab.run("collect", "-a", address)
    assert good.returncode == 0 and [int(x) for x in good.stdout.split()] == PRIMES[:20]
    assert lab.wait("w") == 0


def test_server_killed_gives_workers_and_collectors_a_clear_error(lab):
    address = lab.serve()
    proxy = lab.proxy(address)
    lab.start("w", "work", "-a", address)
    lab.start("collect", "collect", "-a", address)
    assert lab.run("produce", "-a", address, "--count", "1000", "--keep-open").returncode == 0
    lab.wait_stats(proxy, lambda s: s["done"] >= 50)
    lab.procs["serve"].kill()
    assert lab.wait("w", 30) == 1
    one_error_line(lab.err("w"), f"queue server at {address}")
    assert lab.wait("collect", 30) == 1
    one_error_line(lab.err("collect"), f"queue server at {address}")
    # And a worker started now is told nobody is there.
    late = lab.run("work", "-a", address)
    assert late.returncode == 1
    one_error_line(late.stderr, f"cannot connect to the queue server at {address}: connection refused")


def test_server_stopped_by_sigterm_tells_its_workers(lab):
    address = lab.serve("--grace", "5")
    proxy = lab.proxy(address)
    lab.start("w", "work", "-a", address)
    assert lab.run("produce", "-a", address, "--count", "1000", "--keep-open").returncode == 0
    lab.wait_stats(proxy, lambda s: s["done"] >= 50)
    lab.procs["serve"].send_signal(signal.SIGTERM)
    assert lab.wait("serve", 30) == 0
    assert "stopped: the server got SIGTERM" in lab.err("serve")
    assert lab.wait("w", 30) == 1
    one_error_line(lab.err("w"), f"queue server at {address}", "before the work was done")


def test_port_in_use_is_one_clear_error(lab):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = lab.run("serve", "--address", f"127.0.0.1:{port}")
    assert result.returncode == 1
    one_error_line(result.stderr, f"cannot listen on 127.0.0.1:{port}: address already in use")
    assert not lab.key_file.exists()  # nothing written for a server that could not start


def test_jobs_from_a_file_with_a_task_and_a_failing_job(lab):
    address = lab.serve()
    jobs = lab.dir / "jobs.json"
    jobs.write_text(json.dumps([10, 100, "x", 0]))
    produced = lab.run("produce", "-a", address, "--from-file", str(jobs),
                       "--task", "ipcluster_kit.bench.workloads:sum_range")  # fmt: skip
    assert produced.returncode == 0, produced.stderr
    lab.start("w", "work", "-a", address)
    collected = lab.run("collect", "-a", address)
    assert collected.stdout.split() == ["45", "4950", "null", "0"]
    assert collected.returncode == 1
    one_error_line(collected.stderr, "1 of 4 jobs failed", "job 2: TypeError")
    assert lab.wait("w") == 0


def test_a_task_the_worker_cannot_import_goes_back_to_the_queue(lab):
    address = lab.serve()
    assert lab.run("produce", "-a", address, "--count", "3", "--task", "no_such_module:f").returncode == 0
    result = lab.run("work", "-a", address)
    assert result.returncode == 1
    one_error_line(result.stderr, "cannot import task 'no_such_module:f'", "went back to the queue")
    status = lab.run("status", "-a", address, "--json")
    stats = json.loads(status.stdout)
    assert (stats["pending"], stats["leased"], stats["done"]) == (3, 0, 0)


def test_bad_inputs_exit_2_before_touching_anything(lab):
    for args, needle in (
        (["work", "-a", "nohost"], "bad address 'nohost': expected HOST:PORT"),
        (["work", "-a", "127.0.0.1:1", "--processes", "0"], "invalid --processes 0: it must be at least 1"),
        (["produce", "-a", "127.0.0.1:1"], "give exactly one of --count N or --from-file PATH"),
        (["produce", "-a", "127.0.0.1:1", "--count", "1", "--task", "bad task"], "bad task 'bad task'"),
        (["serve", "--address", "127.0.0.1:0", "--lease-timeout", "0"], "invalid --lease-timeout 0.0: it must be more than 0"),
        (["collect", "-a", "127.0.0.1:1"], "no queue key"),  # the key file does not exist yet
        (["collect", "-a", "127.0.0.1:1", "--timeout", "nan"], "invalid --timeout nan: expected a finite"),
        (["work", "-a", "127.0.0.1:1", "--poll", "inf"], "invalid --poll inf: expected a finite"),
        (["serve", "--address", "127.0.0.1:0", "--grace", "nan"], "invalid --grace nan: expected a finite"),
        (["produce", "-a", "127.0.0.1:1", "--count", str(10**12)], "invalid --count 1000000000000"),
        (["status", "-a", "127.0.0.1:0"], "port 0"),
    ):
        result = lab.run(*args)
        assert result.returncode == 2, (args, result.stderr)
        one_error_line(result.stderr, needle)
    assert not lab.key_file.exists() and not lab.home.exists()


@pytest.mark.parametrize("how", ["--key-file", "IPCK_QUEUE_KEY_FILE"])
@pytest.mark.parametrize("command", ["serve", "work", "status"])
def test_an_explicit_missing_key_file_is_an_error_and_nothing_is_created(lab, how, command):
    missing = lab.dir / "nonexistent" / "k"
    address = "127.0.0.1:0" if command == "serve" else "127.0.0.1:1"
    args = [command, "--address", address]
    env = {}
    if how == "--key-file":
        args += ["--key-file", str(missing)]
    else:
        env["IPCK_QUEUE_KEY_FILE"] = str(missing)
    result = lab.run(*args, env=env, timeout=30)
    assert result.returncode == 2, result.stderr
    one_error_line(result.stderr, f"key file {missing} (from {'$' if how != '--key-file' else ''}{how}) does not exist")
    assert not missing.parent.exists() and not lab.home.exists()


def test_produce_start_and_json_status_text_and_collect_without_progress(lab):
    address = lab.serve()
    produced = lab.run("produce", "-a", address, "--start", "100", "--count", "5", "--json")
    assert produced.returncode == 0, produced.stderr
    assert json.loads(produced.stdout) == {"address": address, "first_job": 0, "submitted": 5, "closed": True, "total_jobs": 5}
    status = lab.run("status", "-a", address)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith(f"{address}: 5 jobs (closed), 5 pending, 0 leased, 0 done (0 failed)"), status.stdout
    lab.start("w", "work", "-a", address)
    collected = lab.run("collect", "-a", address, "--no-progress", "--json")
    assert collected.returncode == 0, collected.stderr
    first_primes_from_100 = first_primes(105)[100:]
    assert json.loads(collected.stdout)["results"] == first_primes_from_100  # nth_prime(100..104)
    assert collected.stderr == ""  # no progress bar, no summary line with --json
    assert lab.wait("w") == 0
