"""The job queue across hosts: workers in two network-namespace hosts of the test lab.

The server listens on the lab's gateway address (the root namespace); each worker runs inside
a lab host's network namespace (``ip netns exec``), so it reaches the server over the lab
network, as a worker on another machine would. Needs root and iproute2 (see tests/lab/netlab.py);
skipped with the reason otherwise (a failure in CI, where IPCK_REQUIRE_E2E=1).
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from test_mqueue_cli import PRIMES, Lab, jobs_done

pytestmark = [pytest.mark.e2e, pytest.mark.lab]


class _TwoHosts:
    """Two hosts of the session lab (tests/lab/conftest.py); these tests need exactly two."""

    def __init__(self, lab):
        self.gateway = lab.gateway
        self.hosts = lab.hosts[:2]
        self.set_link = lab.set_link


@pytest.fixture
def net(lab):
    return _TwoHosts(lab)


@pytest.fixture
def queue_lab(tmp_path):
    queue_lab = Lab(tmp_path)
    try:
        yield queue_lab
    finally:
        queue_lab.close()


def _netns(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


def test_workers_on_two_hosts_compute_the_first_1000_primes(net, queue_lab):
    address = queue_lab.serve("--until-drained", host=net.gateway)
    proxy = queue_lab.proxy(address)
    workers = {}
    for host in net.hosts:
        workers[host.alias] = queue_lab.start(host.alias, "work", "-a", address, prefix=("ip", "netns", "exec", host.ns))
    queue_lab.wait_stats(proxy, lambda s: s["workers"]["active"] == 2)
    for host in net.hosts:  # each worker really is on its own host's network
        assert _netns(workers[host.alias].pid) == host.netns_id() != _netns(os.getpid())
    assert queue_lab.run("produce", "-a", address, "--count", "1000").returncode == 0
    collected = queue_lab.run("collect", "-a", address, "--json")
    assert collected.returncode == 0, collected.stderr
    doc = json.loads(collected.stdout)
    assert doc["results"] == PRIMES and doc["stats"]["duplicates"] == 0
    for host in net.hosts:
        assert queue_lab.wait(host.alias, 30) == 0, queue_lab.err(host.alias)
    counts = [jobs_done(queue_lab, h.alias) for h in net.hosts]
    assert sum(counts) == 1000 and min(counts) >= 1, counts
    assert queue_lab.wait("serve", 20) == 0


def test_a_host_cut_off_mid_run_loses_no_job(net, queue_lab):
    """No FIN, no RST: only the missing heartbeats tell the server; its job is done elsewhere."""
    address = queue_lab.serve("--lease-timeout", "1", host=net.gateway)
    proxy = queue_lab.proxy(address)
    cut, other = net.hosts
    for host in net.hosts:
        queue_lab.start(host.alias, "work", "-a", address, prefix=("ip", "netns", "exec", host.ns))
    queue_lab.wait_stats(proxy, lambda s: s["workers"]["active"] == 2)
    assert queue_lab.run("produce", "-a", address, "--count", "1000").returncode == 0
    queue_lab.wait_stats(proxy, lambda s: s["done"] >= 150)
    net.set_link(cut, False)
    try:
        collected = queue_lab.run("collect", "-a", address, "--json", "--timeout", "60")
        assert collected.returncode == 0, collected.stderr
        doc = json.loads(collected.stdout)
        assert doc["results"] == PRIMES
        assert doc["stats"]["requeued"] >= 1 and doc["stats"]["workers"]["lost"] == 1
        assert queue_lab.wait(other.alias, 30) == 0
    finally:
        net.set_link(cut, True)
    # Back on the network, the cut-off worker delivers a result already computed elsewhere:
    # it is discarded (each job keeps exactly one result) and the worker is told the work is done.
    try:
        assert queue_lab.wait(cut.alias, 45) == 0, queue_lab.err(cut.alias)
    except Exception:
        os.killpg(queue_lab.procs[cut.alias].pid, signal.SIGKILL)
        raise
    stats = proxy.stats()
    assert stats["done"] == 1000 and stats["duplicates"] >= 1
