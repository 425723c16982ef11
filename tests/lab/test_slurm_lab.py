"""The Slurm test lab itself: a job step spans both nodes, each node is its own host, teardown leaves nothing."""

from __future__ import annotations

import os
import subprocess

import pytest

from helpers import wait_for

from .slurmlab import SlurmLab, unavailable_reason

pytestmark = [pytest.mark.lab, pytest.mark.e2e]


def test_a_step_runs_on_every_node_in_its_own_namespace_and_hostname(slurm_lab):
    result = slurm_lab.run("srun", f"--nodes={len(slurm_lab.nodes)}", "--ntasks-per-node=1", "--label",
                           "sh", "-c", "echo $(hostname) $(readlink /proc/self/ns/net)")  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen = sorted(line.split(": ", 1)[1] for line in result.stdout.splitlines())
    assert seen == sorted(f"{n.name} {n.netns_id()}" for n in slurm_lab.nodes)
    wait_for(lambda: not slurm_lab.squeue(), 20, what="srun's allocation gone from squeue")  # it completes just after


def test_teardown_leaves_no_process_namespace_link_or_directory():
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    lab = SlurmLab(n_nodes=1).build()
    root, node = lab.root, lab.nodes[0]
    daemons = [lab.munged.pid, lab.slurmctld.pid, node.slurmd.pid]
    job = lab.run("sbatch", "--parsable", "--wrap", "sleep 300")  # a job still running at teardown
    assert job.returncode == 0, job.stderr
    lab.teardown()
    assert not root.exists()
    assert node.ns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    assert node.veth not in links and f"ics{lab.tag}b" not in links
    for pid in daemons:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    leftovers = subprocess.run(["pgrep", "-f", str(root)], capture_output=True, text=True).stdout.split()
    assert leftovers == []
