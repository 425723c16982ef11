"""`up`, `status` and `down` against a real controller and real engines."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from helpers import process_group, run_kit, wait_for

pytestmark = pytest.mark.e2e


def _pids_alive(pids) -> list[int]:
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.append(pid)
        except FileNotFoundError:
            pass
    return alive


@pytest.fixture
def profile(ipython_dir):
    run_kit("init", "c", "--ipython-dir", str(ipython_dir), "--engines", "2", check=True)
    yield "c"
    run_kit("down", "c", "--ipython-dir", str(ipython_dir))


def test_up_status_down_lifecycle(ipython_dir, profile):
    up = run_kit("up", profile, "--ipython-dir", str(ipython_dir), "--json", check=True)
    info = json.loads(up.stdout)
    assert info["engines"] == 2 and not info["already_up"]

    again = run_kit("up", profile, "--ipython-dir", str(ipython_dir), check=True)
    assert "already up" in again.stdout

    status = json.loads(run_kit("status", profile, "--ipython-dir", str(ipython_dir), "--json", check=True).stdout)
    assert status["up"] and status["registered_engines"] == 2 and status["scheme"] == "leastload"
    assert status["hosts"] == {"localhost": 2}
    pids = [status["controller"]["pid"]] + [e["pid"] for e in status["engines"]]
    group = set().union(*(process_group(pid) for pid in pids))
    assert len(group) > len(pids)  # the controller's schedulers are in its group
    from ipcluster_kit.processes import descendants

    nannies = {c.pid for pid in pids[1:] for c in descendants(pid)}  # each engine's nanny, in a session of its own
    assert nannies and not nannies & group
    group |= nannies

    # the cluster is reachable from a plain ipyparallel client, outside the kit
    state_file = ipython_dir / "profile_c" / "ipcluster_kit_state.json"
    assert oct(state_file.stat().st_mode & 0o777) == "0o600"

    down = json.loads(run_kit("down", profile, "--ipython-dir", str(ipython_dir), "--json", check=True).stdout)
    assert down["controller_stopped"] and down["engines_stopped"] == 2 and down["left_running"] == []
    assert _pids_alive(group) == []
    assert not state_file.exists()
    status = json.loads(run_kit("status", profile, "--ipython-dir", str(ipython_dir), "--json", check=True).stdout)
    assert not status["up"]


def test_down_after_an_engine_was_killed(ipython_dir, profile):
    run_kit("up", profile, "--ipython-dir", str(ipython_dir), check=True)
    status = json.loads(run_kit("status", profile, "--ipython-dir", str(ipython_dir), "--json", check=True).stdout)
    victim = status["engines"][0]["pid"]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: not _pids_alive([victim]), 10, what="killed engine to vanish")
    status = json.loads(run_kit("status", profile, "--ipython-dir", str(ipython_dir), "--json", check=True).stdout)
    assert [e["running"] for e in status["engines"]].count(False) == 1
    everything = {status["controller"]["pid"]} | {e["pid"] for e in status["engines"]}
    group = set().union(*(process_group(pid) for pid in everything))
    down = json.loads(run_kit("down", profile, "--ipython-dir", str(ipython_dir), "--json", check=True).stdout)
    assert down["engines_stopped"] == 1 and down["left_running"] == []
    assert _pids_alive(group) == []


def test_up_with_a_timeout_that_cannot_be_met_leaves_nothing(ipython_dir):
    run_kit("init", "slow", "--ipython-dir", str(ipython_dir), "--engines", "2", check=True)
    before = {int(p) for p in os.listdir("/proc") if p.isdigit()}
    result = run_kit("up", "slow", "--ipython-dir", str(ipython_dir), "--timeout", "0.3")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("ipcluster-kit: error:")]
    assert len(lines) == 1 and "did not come up" in lines[0] and "Traceback" not in result.stderr
    time.sleep(0.5)
    new = {int(p) for p in os.listdir("/proc") if p.isdigit()} - before
    leftovers = []
    for pid in _pids_alive(new):
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
        except FileNotFoundError:
            continue
        if b"profile_slow" in cmdline:
            leftovers.append(pid)
    assert leftovers == []
    assert not (ipython_dir / "profile_slow" / "ipcluster_kit_state.json").exists()


@pytest.mark.parametrize("args, needle", [(["up", "ghost"], "ghost"), (["status", "ghost"], "ghost"),
                                          (["down", "ghost"], "ghost"), (["up", "c", "--timeout", "0"], "0")])  # fmt: skip
def test_bad_input(ipython_dir, profile, args, needle):
    result = run_kit(*args, "--ipython-dir", str(ipython_dir))
    assert result.returncode == 2
    assert result.stderr.startswith("ipcluster-kit: error:") and needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
