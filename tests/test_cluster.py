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
    # the bring-up timeline: local engines start while the controller starts (they wait for the
    # engine file it publishes), each step once and in order, the last with every engine registered
    events = [e["event"] for e in info["timeline"]]
    assert events[:4] == ["controller started", "local engines started", "controller ready", "schedulers ready"]
    assert events[4:] and set(events[4:]) == {"engines registered"}
    seconds = [e["seconds"] for e in info["timeline"]]
    assert seconds == sorted(seconds) and seconds[-1] <= info["bringup_seconds"]
    assert info["timeline"][-1]["engines"] == 2 and info["timeline"][1]["engines"] == 2
    assert info["timeline"][0]["heartbeat_ms"] == 100  # 2 engines: the shortest period (the profile says 500)

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
    import ipyparallel as ipp

    client = ipp.Client(profile_dir=str(ipython_dir / "profile_c"), timeout=30)
    try:
        assert sorted(client.ids) == [0, 1]
        assert sorted(client[:].apply_sync(os.getpid)) == sorted(pids[1:])
    finally:
        client.close()
    state_file = ipython_dir / "profile_c" / "ipcluster_kit_state.json"
    assert oct(state_file.stat().st_mode & 0o777) == "0o600"

    plain = run_kit("status", profile, "--ipython-dir", str(ipython_dir), check=True).stdout
    assert plain.splitlines()[:2] == [f"Cluster {profile}: up, scheme leastload, 2 of 2 engines registered",
                                      "local engines: 2 of 2 running"]  # fmt: skip
    assert all(str(pid) in plain for pid in pids)

    down = json.loads(run_kit("down", profile, "--ipython-dir", str(ipython_dir), "--json", check=True).stdout)
    assert down["controller_stopped"] and down["engines_stopped"] == 2 and down["left_running"] == []
    assert {e["pid"] for e in down["stopped"]} == group  # every process of the cluster, schedulers and nannies too
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


def test_plain_down_and_status_of_a_profile_that_is_not_up(ipython_dir, profile):
    status = run_kit("status", profile, "--ipython-dir", str(ipython_dir), check=True)
    assert status.stdout.splitlines() == [f"Cluster {profile}: down, scheme leastload, - of 2 engines registered"]
    down = run_kit("down", profile, "--ipython-dir", str(ipython_dir), check=True)
    assert down.stdout.strip() == f"Cluster {profile} was not up; nothing to stop."


def test_dry_run_shows_the_exact_commands_and_starts_nothing(ipython_dir, profile):
    import shlex
    import sys

    profile_dir = ipython_dir / "profile_c"
    plan = json.loads(run_kit("up", profile, "--dry-run", "--json", "--ipython-dir", str(ipython_dir), check=True).stdout)
    assert plan["controller"] == shlex.join([sys.executable, "-m", "ipyparallel.controller", f"--profile-dir={profile_dir}",
                                             "--HeartMonitor.period=100", "--HeartMonitor.max_heartmonitor_misses=50"])  # fmt: skip
    (engine_set,) = plan["engine_sets"]
    assert engine_set["kind"] == "local" and engine_set["engines"] == 2
    assert engine_set["run"][0]["text"] == shlex.join([sys.executable, "-m", "ipyparallel.engine", f"--profile-dir={profile_dir}",
                                                       f"--file={profile_dir}/security/ipcluster-kit-engine.json"])  # fmt: skip
    plain = run_kit("up", profile, "--dry-run", "--engines", "3", "--ipython-dir", str(ipython_dir), check=True).stdout
    assert "3 local engine(s)" in plain and plain.strip().endswith("Nothing was started (--dry-run).")
    assert not (profile_dir / "ipcluster_kit_state.json").exists()
    from ipcluster_kit.processes import find_by_argument

    assert find_by_argument(str(profile_dir)) == []


def test_dry_run_of_an_ssh_profile_contacts_no_host(ipython_dir):
    run_kit("init", "farm", "--ipython-dir", str(ipython_dir), "--host", "root@192.0.2.7=2", "--host", "u@192.0.2.8:2222",
            "--remote-python", "/opt/py/bin/python3", check=True)  # fmt: skip
    result = run_kit("up", "farm", "--dry-run", "--json", "--ipython-dir", str(ipython_dir), timeout=30, check=True)
    (engine_set,) = json.loads(result.stdout)["engine_sets"]
    assert engine_set["kind"] == "ssh" and engine_set["engines"] == 3
    remote = "~/.ipcluster-kit/profiles/farm"
    command = f"/opt/py/bin/python3 -m ipyparallel.engine --file={remote}/security/ipcontroller-engine.json --profile-dir={remote}"
    assert [(r["title"].split(" over SSH")[0], r["text"]) for r in engine_set["run"]] == [
        ("2 engine(s) on root@192.0.2.7", command), ("1 engine(s) on u@192.0.2.8:2222", command)]  # fmt: skip


@pytest.mark.parametrize("launcher", ["pbs", "sge", "lsf", "htcondor"])
def test_batch_systems_up_does_not_drive_are_refused_naming_ipcluster(ipython_dir, launcher):
    from helpers import tree_snapshot

    run_kit("init", "batch", "--ipython-dir", str(ipython_dir), "--launcher", launcher, "--ip", "0.0.0.0", check=True)
    before = tree_snapshot(ipython_dir)
    for args in (["up", "batch"], ["up", "batch", "--dry-run"]):
        result = run_kit(*args, "--ipython-dir", str(ipython_dir))
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            f"ipcluster-kit: error: `up` does not start engines with the {launcher!r} launcher; start this profile with"
            f" ipyparallel: ipcluster start --profile-dir={ipython_dir / 'profile_batch'}"]  # fmt: skip
    assert tree_snapshot(ipython_dir) == before  # nothing written, not even a lock file


def test_a_first_release_state_file_is_read_and_its_cluster_stopped(ipython_dir, profile):
    """State files of the first release (version 1, start times in clock ticks) still work."""
    run_kit("up", profile, "--ipython-dir", str(ipython_dir), check=True)
    state_file = ipython_dir / "profile_c" / "ipcluster_kit_state.json"
    v2 = json.loads(state_file.read_text())

    def legacy(record):
        ticks = int(open(f"/proc/{record['pid']}/stat").read().rsplit(")", 1)[1].split()[19])
        return {"pid": record["pid"], "start_ticks": ticks, "role": record["role"], "log": record["log"], "host": "localhost"}

    v1 = {"state_version": 1, "profile": "c", "profile_dir": v2["profile_dir"], "controller": legacy(v2["controller"]),
          "engines": [legacy(p) for p in v2["engine_sets"][0]["processes"]], "expected_engines": 2,
          "scheme": "leastload", "started_at": v2["started_at"], "remote": []}  # fmt: skip
    state_file.write_text(json.dumps(v1))
    status = json.loads(run_kit("status", profile, "--ipython-dir", str(ipython_dir), "--json", check=True).stdout)
    assert status["up"] and [e["running"] for e in status["engines"]] == [True, True]
    down = json.loads(run_kit("down", profile, "--ipython-dir", str(ipython_dir), "--json", check=True).stdout)
    assert down["controller_stopped"] and down["engines_stopped"] == 2 and down["left_running"] == []
    assert down["found_by_profile_dir"] == []  # the old records found everything
