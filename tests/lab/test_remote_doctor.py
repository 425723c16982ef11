"""doctor on lab hosts: every check passes on a good cluster; each fault shows in its own check."""

from __future__ import annotations

import json
import sys

import pytest

from helpers import process_group, wait_for
from ipcluster_kit.remote import bootstrap_hosts, diagnose, parse_hosts
from ipcluster_kit.remote.doctor import FAIL, OK, SKIP, all_ok

pytestmark = [pytest.mark.lab, pytest.mark.e2e]


def _by(checks):
    return {(c.where, c.name): c for c in checks}


def test_doctor_all_good_after_bringup(lab, lab_ssh, controller, remote_dir):
    h1, h2 = lab.hosts[0], lab.hosts[1]
    hosts = parse_hosts([h1.spec, h2.spec])
    results = bootstrap_hosts(hosts, controller.engine_file, remote_profile_dir=remote_dir,
                              remote_python=sys.executable, ssh_options=lab_ssh)
    assert all(r.ok for r in results), [r.error for r in results]
    checks = diagnose(hosts, controller.engine_file, remote_profile_dir=remote_dir,
                      remote_python=sys.executable, ssh_options=lab_ssh)
    assert all_ok(checks), [c for c in checks if not c.ok]
    found = _by(checks)
    for name in ("connection-file", "address", "ports"):
        assert found[("controller", name)].status == OK
    for h in (h1, h2):
        for name in ("ssh", "python", "ipyparallel", "connection-file", "ports", "clock"):
            assert found[(h.spec, name)].status == OK, found[(h.spec, name)]
        assert h.hostname in found[(h.spec, "ssh")].detail
    key = json.loads(controller.engine_file.read_text())["key"]
    assert key not in json.dumps([c.to_dict() for c in checks])


def test_doctor_names_each_problem(lab, lab_ssh, controller, remote_dir, tmp_path):
    h1, h2, h3 = lab.hosts
    hosts = parse_hosts([h1.spec, h2.spec, h3.spec])
    # h1: fine but nothing copied yet; h2: a stale connection file; h3: sshd stopped
    stale = h2.home / remote_dir / "security" / "ipcontroller-engine.json"
    stale.parent.mkdir(parents=True, mode=0o700)
    stale.write_text("{}")
    stale.chmod(0o600)
    lab.stop_sshd(h3)
    try:
        checks = diagnose(hosts, controller.engine_file, remote_profile_dir=remote_dir,
                          remote_python=sys.executable, ssh_options=lab_ssh)
    finally:
        lab.start_sshd(h3)
        lab.wait_sshd(h3)
    found = _by(checks)
    assert found[(h1.spec, "connection-file")].status == FAIL
    assert "missing" in found[(h1.spec, "connection-file")].detail
    assert found[(h1.spec, "ports")].status == OK
    assert found[(h2.spec, "connection-file")].status == FAIL
    assert "differs" in found[(h2.spec, "connection-file")].detail
    assert found[(h3.spec, "ssh")].status == FAIL
    assert "connection refused" in found[(h3.spec, "ssh")].detail
    assert found[(h3.spec, "ports")].status == SKIP
    assert not all_ok(checks)


def test_doctor_controller_down_and_wrong_python(lab, lab_ssh, controller, remote_dir):
    import os
    import signal

    h1 = lab.hosts[0]
    hosts = parse_hosts([h1.spec])
    os.killpg(controller.pid, signal.SIGKILL)  # a crashed controller: its connection files remain
    controller.proc.wait(10)
    # its schedulers (same group) close their listening sockets only once they have exited too
    wait_for(lambda: not process_group(controller.pid), 10, what="the controller's schedulers gone")
    checks = diagnose(hosts, controller.engine_file, remote_profile_dir=remote_dir,
                      remote_python="/usr/bin/nonexistent-python3", ssh_options=lab_ssh)
    found = _by(checks)
    assert found[("controller", "ports")].status == FAIL
    assert "not listening" in found[("controller", "ports")].detail
    assert found[(h1.spec, "ssh")].status == OK
    assert found[(h1.spec, "python")].status == FAIL
    assert "not found" in found[(h1.spec, "python")].detail


def test_doctor_without_connection_file(lab, lab_ssh, controller, remote_dir):
    """A controller stopped cleanly removes its files: doctor says so and still checks the hosts."""
    h1 = lab.hosts[0]
    controller.stop()
    assert not controller.engine_file.exists()
    found = _by(diagnose(parse_hosts([h1.spec]), controller.engine_file, remote_profile_dir=remote_dir,
                         remote_python=sys.executable, ssh_options=lab_ssh))
    assert found[("controller", "connection-file")].status == FAIL
    assert "does not exist (is the controller running?)" in found[("controller", "connection-file")].detail
    assert found[(h1.spec, "ssh")].status == OK and found[(h1.spec, "ipyparallel")].status == OK
    assert found[(h1.spec, "ports")].status == SKIP
