"""Faults during bring-up, each on real lab hosts: the failing host is named, the others come up."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from ipcluster_kit.errors import KitError
from ipcluster_kit.remote import SSHOptions, Versions, bootstrap_hosts, parse_hosts
from ipcluster_kit.remote.ssh import connect

from .netlab import wait_for_engines

pytestmark = [pytest.mark.lab, pytest.mark.e2e]


def _bring_up(lab, controller, specs, remote_dir, ssh, **kw):
    kw.setdefault("remote_python", sys.executable)
    kw.setdefault("timeout", 40)
    return bootstrap_hosts(parse_hosts(specs), controller.engine_file, remote_profile_dir=remote_dir, ssh_options=ssh, **kw)


def test_host_down_others_come_up(lab, lab_ssh, controller, remote_dir):
    h1, h3 = lab.hosts[0], lab.hosts[2]
    lab.set_link(h3, up=False)
    try:
        results = _bring_up(lab, controller, [h1.spec, f"{h3.spec}=2"], remote_dir, lab_ssh)
    finally:
        lab.set_link(h3, up=True)
    ok, down = results
    assert ok.ok, ok.error
    assert not down.ok and down.step == "connect"
    assert h3.address in down.error
    # bounded by the connect timeout (4 s here), not by TCP's minutes-long default: either the
    # neighbour lookup fails first (host unreachable) or the connect timeout ends the attempt
    assert down.error == f"{h3.spec}: no SSH answer within 4 s (host down or port filtered?)" or (
        down.error.startswith(f"{h3.spec}: host unreachable (") and down.error.endswith("); is it up and on the network?"))
    assert wait_for_engines(controller.client_file, 1, timeout=60) == [0]


def test_sshd_stopped(lab, lab_ssh, controller, remote_dir):
    h1, h3 = lab.hosts[0], lab.hosts[2]
    lab.stop_sshd(h3)
    try:
        results = _bring_up(lab, controller, [h1.spec, h3.spec], remote_dir, lab_ssh)
    finally:
        lab.start_sshd(h3)
        lab.wait_sshd(h3)
    assert results[0].ok, results[0].error
    assert not results[1].ok
    assert results[1].error == f"{h3.spec}: connection refused (is sshd running on that host and port?)"


def test_authentication_refused(lab, controller, remote_dir, tmp_path):
    h1 = lab.hosts[0]
    key = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host *\n  User root\n  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {lab.known_hosts}\n"
    )
    results = _bring_up(lab, controller, [h1.spec], remote_dir, SSHOptions.build(config, connect_timeout=4))
    assert not results[0].ok and results[0].step == "connect"
    assert results[0].error.startswith(f"{h1.spec}: authentication refused for root")
    assert "PRIVATE KEY" not in results[0].error


def test_unknown_host_key_refused_then_accepted(lab, tmp_path):
    h2 = lab.hosts[1]
    host = parse_hosts([h2.spec])[0]
    known = tmp_path / "known_hosts"
    known.write_text("")
    strict = SSHOptions.build(lab.ssh_config, known_hosts=[known], connect_timeout=4)
    with pytest.raises(KitError) as info:
        asyncio.run(connect(host, strict))
    message = info.value.message
    assert f"host key for {h2.address} is not known" in message
    assert f"ssh-keyscan {h2.address} >> ~/.ssh/known_hosts" in message
    assert "--accept-new-host-keys" in message
    assert known.read_text() == ""

    async def accept_then_verify():
        conn = await connect(host, SSHOptions.build(lab.ssh_config, known_hosts=[known], accept_new_host_keys=True))
        conn.close()
        conn = await connect(host, strict)  # now known: strict mode passes
        conn.close()

    asyncio.run(accept_then_verify())
    assert known.read_text() == f"{h2.address} {h2.host_pubkey}\n"


def test_changed_host_key_refused_even_when_accepting_new(lab, tmp_path):
    h1, h2 = lab.hosts[0], lab.hosts[1]
    known = tmp_path / "known_hosts"
    known.write_text(f"{h1.address} {h2.host_pubkey}\n")  # another host's key recorded for h1
    options = SSHOptions.build(lab.ssh_config, known_hosts=[known], accept_new_host_keys=True, connect_timeout=4)
    with pytest.raises(KitError, match="host key does not match"):
        asyncio.run(connect(parse_hosts([h1.spec])[0], options))
    assert known.read_text() == f"{h1.address} {h2.host_pubkey}\n"


@pytest.fixture(scope="module")
def python_without_ipyparallel(tmp_path_factory):
    """An interpreter of the same minor without ipyparallel: a bare venv (like Debian's /usr/bin/python3)."""
    target = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True, timeout=120)
    return str(target / "bin" / "python")


def test_remote_python_without_ipyparallel(lab, lab_ssh, controller, remote_dir, python_without_ipyparallel):
    h1, h2 = lab.hosts[0], lab.hosts[1]
    hosts = parse_hosts([h1.spec, h2.spec])
    hosts[0] = dataclasses.replace(hosts[0], remote_python=python_without_ipyparallel)  # per-host python
    results = bootstrap_hosts(
        hosts, controller.engine_file, remote_profile_dir=remote_dir, remote_python=sys.executable, ssh_options=lab_ssh
    )
    bad, good = results
    assert good.ok, good.error
    assert not bad.ok and bad.step == "versions"
    local = Versions.local()
    assert bad.error == (
        f"{h1.spec}: ipyparallel is not installed for {python_without_ipyparallel} (Python {local.python});"
        f" the controller has ipyparallel {local.ipyparallel} (install it there or set --remote-python)"
    )
    assert not (h1.home / remote_dir).exists(), "nothing may be written on a host that failed its preflight"


def test_version_mismatch_names_both_versions(lab, lab_ssh, controller, remote_dir):
    h1 = lab.hosts[0]
    local = Versions.local()
    other_python = Versions(python="3.99.0", ipyparallel=local.ipyparallel)
    result = _bring_up(lab, controller, [h1.spec], remote_dir, lab_ssh, local_versions=other_python)[0]
    assert not result.ok and result.step == "versions"
    assert f"Python {local.python}" in result.error and "Python 3.99.0" in result.error

    other_ipp = Versions(python=local.python, ipyparallel="8.0.0")
    result = _bring_up(lab, controller, [h1.spec], remote_dir, lab_ssh, local_versions=other_ipp)[0]
    assert not result.ok
    assert f"ipyparallel {local.ipyparallel}" in result.error and "ipyparallel 8.0.0" in result.error


def test_debian_python_without_ipyparallel(lab, lab_ssh, controller, remote_dir):
    """Debian's /usr/bin/python3 (no ipyparallel) as the remote Python: a versions error, not a silent death."""
    system = Path("/usr/bin/python3")
    if not system.exists():
        pytest.skip("no /usr/bin/python3 on this machine")
    probe = subprocess.run([str(system), "-c", "import ipyparallel"], capture_output=True)
    result = _bring_up(lab, controller, [lab.hosts[0].spec], remote_dir, lab_ssh, remote_python=str(system))[0]
    if probe.returncode == 0:  # this machine's system Python has an ipyparallel: only versions may differ
        assert result.ok or result.step == "versions"
    else:
        assert not result.ok and result.step == "versions"
        assert "ipyparallel is not installed for /usr/bin/python3" in result.error


def test_remote_python_missing(lab, lab_ssh, controller, remote_dir):
    result = _bring_up(lab, controller, [lab.hosts[0].spec], remote_dir, lab_ssh, remote_python="/opt/nowhere/python3")[0]
    assert not result.ok and result.step == "preflight"
    assert "remote Python '/opt/nowhere/python3' not found" in result.error


def test_unknown_host_key_hint_uses_the_real_host_name(lab, tmp_path):
    """For a Host alias of the ssh config, the fix names the HostName ssh really connects to."""
    h2 = lab.hosts[1]
    known = tmp_path / "known_hosts"
    known.write_text("")
    options = SSHOptions.build(lab.ssh_config, known_hosts=[known], connect_timeout=4)
    with pytest.raises(KitError) as info:
        asyncio.run(connect(parse_hosts([h2.alias])[0], options))
    assert info.value.message.startswith(f"{h2.alias}: host key for {h2.address} is not known")
    assert f"`ssh-keyscan {h2.address} >> ~/.ssh/known_hosts`" in info.value.message
