"""The CLI over the lab: `up` a cluster listening on the lab network, `bootstrap` hosts, `doctor`, stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.e2e]


def kit(*args: str, ipython_dir, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, IPYTHONDIR=str(ipython_dir))
    return subprocess.run(
        [sys.executable, "-m", "ipcluster_kit", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_bootstrap_and_doctor_commands(lab, tmp_path):
    from ipcluster_kit.cluster.enginesets.base import EngineSetContext
    from ipcluster_kit.cluster.enginesets.ssh import SSHEngines
    from ipcluster_kit.cluster.state import ClusterState

    ipython_dir = tmp_path / "ipython"
    ipython_dir.mkdir()
    h1, h2 = lab.hosts[0], lab.hosts[1]
    name = "labp"
    made = kit("init", name, "--ip", lab.gateway, "--engines", "1", "--remote-python", sys.executable,
               ipython_dir=ipython_dir)  # fmt: skip
    assert made.returncode == 0, made.stderr
    profile_dir = ipython_dir / f"profile_{name}"
    ssh = ["--ssh-config", str(lab.ssh_config)]
    hosts = ["--host", f"{h1.spec}=2", "--host", h2.alias]

    # doctor without hosts in the profile nor --host: one line, exit 2
    bad = kit("doctor", name, ipython_dir=ipython_dir)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"ipcluster-kit: error: profile {name!r} has no remote hosts; pass --host [user@]host[:port][=N]"
    ]

    up = kit("up", name, "--timeout", "60", ipython_dir=ipython_dir)
    assert up.returncode == 0, up.stderr
    try:
        # a host fails (no such interpreter): one error line naming it, nothing left running or recorded
        failed = kit("bootstrap", name, *hosts, *ssh, "--remote-python", "/opt/nowhere/python3", ipython_dir=ipython_dir)
        assert failed.returncode == 1
        lines = failed.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ipcluster-kit: error: ")
        assert f"{h1.spec}: remote Python '/opt/nowhere/python3' not found" in lines[0]
        state = ClusterState.load(profile_dir)
        assert [r.kind for r in state.engine_sets] == ["local"] and state.expected_engines == 1

        added = kit("bootstrap", name, *hosts, *ssh, "--json", ipython_dir=ipython_dir)
        assert added.returncode == 0, added.stderr
        report = json.loads(added.stdout)
        assert report["engines"] == 4
        assert [h["hostname"] for h in report["hosts"]] == [h1.hostname, h2.hostname]

        checks = kit("doctor", name, *hosts, *ssh, "--max-clock-skew", "2.5", "--json", ipython_dir=ipython_dir)
        assert checks.returncode == 0, checks.stdout + checks.stderr
        result = json.loads(checks.stdout)
        assert result["ok"] and {c["status"] for c in result["checks"]} == {"ok"}
        clocks = [c["detail"] for c in result["checks"] if c["name"] == "clock"]
        assert len(clocks) == 2 and all(d.endswith("; within 2.5 s") for d in clocks)
        plain = kit("doctor", name, *hosts, *ssh, ipython_dir=ipython_dir)
        assert plain.returncode == 0 and plain.stdout.count(" ok ") >= 15

        # the SSH engine set reuses the SSH settings recorded in the state file (no --ssh-config here)
        state = ClusterState.load(profile_dir)
        (record,) = [r for r in state.engine_sets if r.kind == "ssh"]
        assert record.host_labels() == [h1.spec, h2.alias]
        engine_set = SSHEngines(EngineSetContext(spec=None, profile_dir=profile_dir, engines=record.engines))
        found = engine_set.status(record, timeout=10).engines
        assert [(e.host, e.running) for e in found] == [(h1.spec, True), (h1.spec, True), (h2.alias, True)]
        assert engine_set.stop(record, timeout=10).engines_stopped == 3
        assert engine_set.stop(record, timeout=10).engines_stopped == 0  # idempotent
        assert not any(e.running for e in engine_set.status(record, timeout=10).engines)
    finally:
        down = kit("down", name, ipython_dir=ipython_dir)
        lab.kill_engines()
    assert down.returncode == 0, down.stderr
