"""Bring-up onto lab hosts with a real controller and real engines, then status and stop."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from ipcluster_kit.remote import bootstrap_hosts, parse_hosts, remote_engine_status, stop_remote_engines
from ipcluster_kit.remote.records import HostRecord

from helpers import wait_for

from .netlab import engine_facts, wait_for_engines

pytestmark = [pytest.mark.lab, pytest.mark.e2e]


def test_bringup_two_hosts_engines_run_on_them(lab, lab_ssh, controller, remote_dir):
    h1, h2 = lab.hosts[0], lab.hosts[1]
    # h1 by address with user and count; h2 by its alias in the ssh config (HostName, User from there)
    hosts = parse_hosts([f"{h1.spec}=2", h2.alias])
    results = bootstrap_hosts(
        hosts, controller.engine_file, remote_profile_dir=remote_dir, remote_python=sys.executable,
        ssh_options=lab_ssh, timeout=60,
    )
    assert [r.ok for r in results] == [True, True], [r.error for r in results]
    assert [len(r.engines) for r in results] == [2, 1]
    assert [r.remote["hostname"] for r in results] == [h1.hostname, h2.hostname]
    assert [r.remote["netns"] for r in results] == [h1.netns_id(), h2.netns_id()]

    ids = wait_for_engines(controller.client_file, 3, timeout=60)
    assert len(ids) == 3
    facts = engine_facts(controller.client_file)
    by_pid = {f["pid"]: f for f in facts.values()}
    for result, host in zip(results, (h1, h2)):
        for engine in result.engines:
            # the PID recorded at start-up is the engine that registered, and it runs in that host's
            # network namespace, with that host's hostname and private /root
            fact = by_pid[engine.pid]
            assert fact["netns"] == host.netns_id()
            assert fact["hostname"] == host.hostname
            assert fact["marker"] == host.ns

    # the connection file landed on each host only: 0600 in 0700, same checksum; no client file
    for result, host in zip(results, (h1, h2)):
        record = result.record
        assert record.profile_dir == f"/root/{remote_dir}"
        on_host = host.home / remote_dir / "security" / "ipcontroller-engine.json"
        assert stat.S_IMODE(on_host.stat().st_mode) == 0o600
        assert stat.S_IMODE(on_host.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE((host.home / remote_dir).stat().st_mode) == 0o700
        assert on_host.read_bytes() == controller.engine_file.read_bytes()
        assert not (on_host.parent / "ipcontroller-client.json").exists()
        assert (host.home / remote_dir / "log").is_dir()
    assert not Path(f"/root/{remote_dir}").exists(), "the copy went to this machine's /root, not the host's"

    # nothing secret in what a caller may print or store
    key = json.loads(controller.engine_file.read_text())["key"]
    dumped = json.dumps([r.to_dict() for r in results])
    assert key not in dumped and key not in repr(results)

    # the record survives a round trip through the state file's format
    records = [HostRecord.from_dict(json.loads(json.dumps(r.record.to_dict()))) for r in results]
    assert records == [r.record for r in results]

    status = remote_engine_status(records, ssh_options=lab_ssh)
    assert [s.ok for s in status] == [True, True]
    assert [s.running for s in status] == [2, 1]

    stopped = stop_remote_engines(records, ssh_options=lab_ssh, timeout=10)
    assert [s.ok for s in stopped] == [True, True], [s.error for s in stopped]
    assert {e.state for s in stopped for e in s.engines} <= {"terminated", "killed"}
    wait_for(lambda: not lab.engine_pids(h1) and not lab.engine_pids(h2), 15, what="engines and nannies gone")
    after = remote_engine_status(records, ssh_options=lab_ssh)
    assert [s.running for s in after] == [0, 0]


def test_engine_killed_after_registration(lab, lab_ssh, controller, remote_dir):
    import ipyparallel as ipp

    h1 = lab.hosts[0]
    results = bootstrap_hosts(
        parse_hosts([f"{h1.spec}=2"]), controller.engine_file, remote_profile_dir=remote_dir,
        remote_python=sys.executable, ssh_options=lab_ssh,
    )
    assert results[0].ok, results[0].error
    wait_for_engines(controller.client_file, 2, timeout=60)
    victim, survivor = results[0].engines
    os.kill(victim.pid, 9)  # the engine dies (OOM killer, crash...) after registering

    status = remote_engine_status([results[0].record], ssh_options=lab_ssh)[0]
    states = {e.pid: e for e in status.engines}
    assert states[victim.pid].state == "not running"
    assert states[survivor.pid].state == "running"
    assert status.running == 1

    client = ipp.Client(str(controller.client_file), timeout=30)
    try:
        wait_for(lambda: len(client.ids) == 1, 30, what="the controller dropping the dead engine")
        assert client[:].apply_sync(ipp.interactive(lambda: 6 * 7)) == [42]  # the survivor still works
    finally:
        client.close()

    stopped = stop_remote_engines([results[0].record], ssh_options=lab_ssh)[0]
    states = {e.pid: e.state for e in stopped.engines}
    assert states == {victim.pid: "not running", survivor.pid: "terminated"}
    wait_for(lambda: not lab.engine_pids(h1), 15, what="engines gone")


def test_stop_from_the_list_kept_on_the_host(lab, lab_ssh, controller, remote_dir):
    """The local record is lost (e.g. ssh died during start): the host's own list still stops them."""
    h2 = lab.hosts[1]
    results = bootstrap_hosts(
        parse_hosts([f"{h2.spec}=2"]), controller.engine_file, remote_profile_dir=remote_dir,
        remote_python=sys.executable, ssh_options=lab_ssh,
    )
    assert results[0].ok, results[0].error
    lost = HostRecord(host=results[0].host, python=sys.executable, profile_dir=f"/root/{remote_dir}", engine_file="")
    stopped = stop_remote_engines([lost], ssh_options=lab_ssh, use_host_record=True)[0]
    assert stopped.ok
    assert sorted(e.pid for e in stopped.engines if e.state in ("terminated", "killed")) == sorted(
        e.pid for e in results[0].engines
    )
    wait_for(lambda: not lab.engine_pids(h2), 15, what="engines gone")


def test_stop_never_kills_a_reused_pid(lab, lab_ssh):
    """A recorded PID now held by another process (different start time) is left alone."""
    import subprocess

    from ipcluster_kit.processes import ProcessRecord, record_of

    h1 = lab.hosts[0]
    other = subprocess.Popen(["ip", "netns", "exec", h1.ns, "sleep", "60"])
    try:
        start = record_of(other.pid).create_time
        record = HostRecord(
            host=parse_hosts([h1.spec])[0], python=sys.executable, profile_dir="/root/none", engine_file="",
            engines=(ProcessRecord(pid=other.pid, create_time=start + 1, role="engine"),),
        )
        stopped = stop_remote_engines([record], ssh_options=lab_ssh)[0]
        assert [e.state for e in stopped.engines] == ["not running (pid reused)"]
        assert other.poll() is None
    finally:
        other.kill()
        other.wait(10)
