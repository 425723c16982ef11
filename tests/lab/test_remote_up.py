"""`ipcluster-kit up` of a profile with hosts: engines on the lab hosts, status per host, down by PID."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .netlab import engine_facts

pytestmark = [pytest.mark.lab, pytest.mark.e2e]


def kit(*args: str, ipython_dir, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, IPYTHONDIR=str(ipython_dir), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "ipcluster_kit", *args], capture_output=True, text=True, env=env, timeout=timeout)


def _status(name, ipython_dir) -> dict:
    result = kit("status", name, "--json", ipython_dir=ipython_dir)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_up_status_down_with_remote_hosts(lab, tmp_path):
    ipython_dir = tmp_path / "ipython"
    h1, h2 = lab.hosts[0], lab.hosts[1]
    made = kit("init", "farm", "--ip", lab.gateway, "--host", f"{h1.spec}=2", "--host", h2.alias,
               "--remote-python", sys.executable, "--ssh-config", str(lab.ssh_config), ipython_dir=ipython_dir)  # fmt: skip
    assert made.returncode == 0, made.stderr
    try:
        up = kit("up", "farm", "--timeout", "90", "--json", ipython_dir=ipython_dir)
        assert up.returncode == 0, up.stderr
        assert json.loads(up.stdout)["engines"] == 3

        status = _status("farm", ipython_dir)
        assert status["up"] and status["registered_engines"] == 3
        assert status["hosts"] == {h1.spec: 2, h2.alias: 1}

        # the engines really run on the hosts: their network namespaces, hostnames and private homes
        facts = engine_facts(ipython_dir / "profile_farm" / "security" / "ipcontroller-client.json")
        by_pid = {f["pid"]: f for f in facts.values()}
        for entry in status["engines"]:
            host = h1 if entry["host"] == h1.spec else h2
            assert by_pid[entry["pid"]]["netns"] == host.netns_id()
            assert by_pid[entry["pid"]]["hostname"] == host.hostname

        # an engine killed after registration shows in status
        victim = next(e for e in status["engines"] if e["host"] == h2.alias)
        lab.run_on(h2, "kill", "-9", str(victim["pid"]))
        status = _status("farm", ipython_dir)
        assert [e["running"] for e in status["engines"] if e["host"] == h2.alias] == [False]
        assert status["hosts"] == {h1.spec: 2}

        down = kit("down", "farm", "--json", ipython_dir=ipython_dir)
        assert down.returncode == 0, down.stderr
        report = json.loads(down.stdout)
        assert report["remote_engines_stopped"] == 2 and report["left_running"] == []
        for host in (h1, h2):
            assert lab.engine_pids(host) == [], f"engines left on {host.alias}"
    finally:
        kit("down", "farm", ipython_dir=ipython_dir)
        lab.kill_engines()


def test_partial_bringup_min_engines_decides(lab, tmp_path):
    ipython_dir = tmp_path / "ipython"
    h1, h3 = lab.hosts[0], lab.hosts[2]
    made = kit("init", "part", "--ip", lab.gateway, "--host", h1.spec, "--host", h3.alias,
               "--remote-python", sys.executable, ipython_dir=ipython_dir)  # fmt: skip
    assert made.returncode == 0, made.stderr
    ssh = ["--ssh-config", str(lab.ssh_config)]  # given to `up`, not recorded in the profile
    lab.stop_sshd(h3)
    try:
        failed = kit("up", "part", "--timeout", "60", *ssh, ipython_dir=ipython_dir)
        assert failed.returncode == 1
        lines = failed.stderr.strip().splitlines()
        assert len(lines) == 1 and h3.alias in lines[0] and "did not come up" in lines[0]
        assert lab.engine_pids(h1) == [], "a failed up left engines running"
        assert not (ipython_dir / "profile_part" / "ipcluster_kit_state.json").exists()

        partial = kit("up", "part", "--timeout", "60", "--min-engines", "1", "--json", *ssh, ipython_dir=ipython_dir)
        assert partial.returncode == 0, partial.stderr
        info = json.loads(partial.stdout)
        assert info["engines"] == 1 and any(h3.alias in w for w in info["warnings"])
        down = kit("down", "part", "--json", ipython_dir=ipython_dir)
        assert down.returncode == 0 and json.loads(down.stdout)["remote_engines_stopped"] == 1
        assert lab.engine_pids(h1) == []
    finally:
        kit("down", "part", ipython_dir=ipython_dir)
        lab.restart_sshd(h3)
        lab.kill_engines()


def test_up_accepts_a_new_host_key_only_when_asked(lab, tmp_path):
    ipython_dir = tmp_path / "ipython"
    h2 = lab.hosts[1]
    known = tmp_path / "known_hosts"
    known.write_text("")
    config = tmp_path / "ssh_config"
    config.write_text(lab.ssh_config.read_text().replace(str(lab.known_hosts), str(known)))
    made = kit("init", "keys", "--ip", lab.gateway, "--host", h2.spec, "--remote-python", sys.executable,
               ipython_dir=ipython_dir)  # fmt: skip
    assert made.returncode == 0, made.stderr
    try:
        refused = kit("up", "keys", "--ssh-config", str(config), "--timeout", "60", ipython_dir=ipython_dir)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 1 and len(lines) == 1, refused.stderr
        assert f"host key for {h2.address} is not known" in lines[0] and "--accept-new-host-keys" in lines[0]
        assert known.read_text() == "" and lab.engine_pids(h2) == []

        accepted = kit("up", "keys", "--ssh-config", str(config), "--accept-new-host-keys", "--json", "--timeout", "60",
                       ipython_dir=ipython_dir)  # fmt: skip
        assert accepted.returncode == 0, accepted.stderr
        assert json.loads(accepted.stdout)["hosts"] == [h2.spec]
        assert known.read_text() == f"{h2.address} {h2.host_pubkey}\n"
        (engine,) = json.loads(kit("status", "keys", "--json", ipython_dir=ipython_dir).stdout)["engines"]
        status = kit("status", "keys", ipython_dir=ipython_dir)  # status and stop reuse the recorded --ssh-config
        assert f"ssh hosts: {engine['host']} 1 of 1 running" in status.stdout.splitlines(), status.stdout
        plain = kit("down", "keys", ipython_dir=ipython_dir)
        assert plain.returncode == 0
        assert plain.stdout.strip().startswith(f"Cluster keys stopped: controller, 1 remote engine(s) on {engine['host']};")
        assert lab.engine_pids(h2) == []
    finally:
        kit("down", "keys", "--force", ipython_dir=ipython_dir)
        lab.kill_engines()
