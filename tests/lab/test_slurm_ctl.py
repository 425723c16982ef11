"""cluster/slurmctl.py against the real Slurm lab: submit, watch, cancel, partitions, one-line errors."""

from __future__ import annotations

import pytest

from ipcluster_kit.cluster import slurmctl
from ipcluster_kit.errors import KitError

pytestmark = [pytest.mark.lab, pytest.mark.e2e]


@pytest.fixture
def slurm_env(slurm_lab, monkeypatch):
    for key, value in slurm_lab.env.items():
        monkeypatch.setenv(key, value)
    yield slurm_lab
    slurm_lab.cancel_all()


def test_a_job_is_submitted_watched_and_cancelled(slurm_env, tmp_path):
    lab = slurm_env
    script = tmp_path / "job.sh"
    script.write_text(f"#!/bin/sh\n#SBATCH --nodes={len(lab.nodes)}\n#SBATCH --output={tmp_path}/out-%j\nsrun sleep 300\n")
    job_id = slurmctl.submit(script, cwd=tmp_path)
    info = slurmctl.job_info(job_id)
    assert info is not None and info.state in ("PENDING", "CONFIGURING", "RUNNING")
    running = slurmctl.wait_until_gone(job_id, timeout=0.0)  # still there: returns what squeue says
    assert running is not None and running.job_id == job_id
    slurmctl.cancel(job_id)
    assert slurmctl.wait_until_gone(job_id, timeout=20) is None
    assert not [job for job in lab.squeue() if job["id"] == job_id]
    slurmctl.cancel(job_id)  # cancelling a job that ended is not an error


def test_a_job_that_cannot_start_pends_with_slurms_reason(slurm_env, tmp_path):
    script = tmp_path / "big.sh"
    script.write_text(f"#!/bin/sh\n#SBATCH --nodes={len(slurm_env.nodes) + 1}\n#SBATCH --output={tmp_path}/out-%j\nsrun true\n")
    job_id = slurmctl.submit(script, cwd=tmp_path)
    info = slurmctl.job_info(job_id)
    assert info.state == "PENDING" and info.reason not in ("", "None")
    assert info.describe() == f"job {job_id} PENDING ({info.reason})"


def test_timing_is_read_from_the_clusters_config(slurm_env):
    timing = slurmctl.timing()
    assert (timing.slurmd_timeout, timing.message_timeout, timing.kill_wait) == (slurm_env.slurmd_timeout, 5, 2)
    assert timing.completing_bound == 2 + slurm_env.slurmd_timeout + 2 * 5


def test_partitions_list_the_lab_nodes(slurm_env):
    groups = [g for g in slurmctl.partition_nodes() if g.partition == slurm_env.partition]
    assert groups and all(g.available == "up" and g.default for g in groups)
    assert sum(g.count for g in groups) == len(slurm_env.nodes)


def test_failures_are_one_line(slurm_env, tmp_path, monkeypatch):
    script = tmp_path / "bad.sh"
    script.write_text("#!/bin/sh\n#SBATCH --partition=nosuchpartition\nsrun true\n")
    with pytest.raises(KitError) as info:
        slurmctl.submit(script, cwd=tmp_path)
    assert info.value.message.startswith("sbatch failed: ") and "\n" not in info.value.message
    assert "partition" in info.value.message.lower()
    with monkeypatch.context() as patch, pytest.raises(KitError, match="sbatch not found: run this on a Slurm login node"):
        patch.setenv("PATH", str(tmp_path))
        slurmctl.submit(script, cwd=tmp_path)
