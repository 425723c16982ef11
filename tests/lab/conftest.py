"""Fixtures of the network-namespace test lab (see netlab.py). Skipped with a reason without root/sshd."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from .netlab import Lab, unavailable_reason
from .slurmlab import slurm_lab  # noqa: F401 - the session's Slurm lab (tests/lab/slurmlab.py)

LAB_HOSTS = 3  # h1, h2 for bring-up; h3 also for faults that disturb a host (sshd stopped, link down)


@pytest.fixture(scope="session")
def lab():
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    built = Lab(LAB_HOSTS, python=sys.executable)
    built.build()
    try:
        yield built
    finally:
        built.teardown()


@pytest.fixture
def lab_ssh(lab):
    """SSH options for the lab: its ssh config (key, known_hosts, aliases), a short connect timeout."""
    from ipcluster_kit.remote.ssh import SSHOptions

    return SSHOptions.build(lab.ssh_config, connect_timeout=4)


@pytest.fixture
def controller(lab):
    """A real ipcontroller on the lab network, stopped by PID after the test, with the test's engines."""
    workdir = Path(tempfile.mkdtemp(prefix="ipck-ctl-"))
    ctl = lab.start_controller(workdir / "profile", "--HeartMonitor.max_heartmonitor_misses=4")
    try:
        yield ctl
    finally:
        lab.kill_engines()
        ctl.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def remote_dir(request):
    """A remote profile directory (relative to the remote home) of this test's own."""
    return f".ipcluster-kit/profiles/{request.node.name.replace('[', '-').replace(']', '')}"
