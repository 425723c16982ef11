"""The Slurm client commands the kit runs: sbatch, squeue, scancel, sinfo, srun.

Each call is bounded by a timeout and turns every failure into one ``KitError`` line naming the
command and Slurm's own message. Nothing here knows about engines or profiles; the slurm engine
set (``cluster/enginesets/slurm.py``) builds on it. Like every Slurm client, these commands read
``SLURM_CONF`` from the environment when the configuration is not in ``/etc/slurm``.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ipcluster_kit.errors import KitError

DEFAULT_TIMEOUT = 30.0

# Job states after which nothing of the job runs any more (squeue --states=all still lists them a while).
FINAL_STATES = frozenset({"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
                          "PREEMPTED", "REVOKED", "SPECIAL_EXIT", "TIMEOUT"})  # fmt: skip


@dataclass(frozen=True)
class JobInfo:
    """What squeue says about one job."""

    job_id: str
    state: str  # PENDING, RUNNING, COMPLETING, ... (Slurm's long names)
    reason: str  # why it is pending (Resources, Priority, PartitionConfig, ...), "None" otherwise
    nodes: str  # Slurm's compressed node list, e.g. "node[1-2]"; "" while pending

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    def describe(self) -> str:
        """``job 42 PENDING (Resources)``, ``job 42 RUNNING on node[1-2]``, ``job 42 FAILED``."""
        text = f"job {self.job_id} {self.state}"
        if self.reason and self.reason != "None":
            text += f" ({self.reason})"
        if self.nodes and not self.finished and self.state != "PENDING":
            text += f" on {self.nodes}"
        return text


@dataclass(frozen=True)
class PartitionNodes:
    """One line of sinfo: the nodes of a partition that are in one state."""

    partition: str
    available: str  # up, down, drain, inact
    state: str  # idle, mixed, allocated, down*, ...
    count: int
    nodes: str
    default: bool


def run(argv: list[str], timeout: float = DEFAULT_TIMEOUT, *, cwd: str | os.PathLike | None = None,
        env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:  # fmt: skip
    """Run one Slurm command, bounded. KitError (one line) when it is missing, hangs or fails."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise KitError(f"{argv[0]} not found: run this on a Slurm login node (the Slurm client commands must be on PATH)") from None
    except subprocess.TimeoutExpired:
        raise KitError(f"{argv[0]} did not answer within {timeout:g} s (is slurmctld reachable?)") from None
    if check and proc.returncode != 0:
        raise KitError(f"{argv[0]} failed: {last_line(proc.stderr) or f'exit status {proc.returncode}'}")
    return proc


def last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def submit(script: Path, *, cwd: Path, timeout: float = DEFAULT_TIMEOUT, env: dict | None = None) -> str:
    """``sbatch --parsable SCRIPT``: the new job's id."""
    proc = run(["sbatch", "--parsable", str(script)], timeout, cwd=cwd, env=env)
    job_id = proc.stdout.strip().split(";")[0]  # "42" or "42;cluster"
    if not job_id.isdigit():
        raise KitError(f"sbatch printed no job id: {last_line(proc.stdout) or last_line(proc.stderr)!r}")
    return job_id


def job_info(job_id: str, timeout: float = DEFAULT_TIMEOUT) -> JobInfo | None:
    """The job as squeue lists it (finished jobs too, while Slurm keeps them), or None when it is unknown."""
    proc = run(["squeue", "--noheader", "--states=all", f"--jobs={job_id}", "--format=%i|%T|%r|%N"], timeout, check=False)
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:  # purged from slurmctld's memory: long gone
            return None
        raise KitError(f"squeue failed: {last_line(proc.stderr) or f'exit status {proc.returncode}'}")
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4 and parts[0] == job_id:
            return JobInfo(job_id, parts[1], parts[2], parts[3])
    return None


def cancel(job_id: str, timeout: float = DEFAULT_TIMEOUT) -> None:
    """``scancel JOB`` (a job that already ended is not an error)."""
    proc = run(["scancel", job_id], timeout, check=False)
    if proc.returncode != 0 and "Invalid job id" not in proc.stderr and "already completing or completed" not in proc.stderr:
        raise KitError(f"scancel {job_id} failed: {last_line(proc.stderr) or f'exit status {proc.returncode}'}")


def wait_until_gone(job_id: str, timeout: float, interval: float = 0.1) -> JobInfo | None:
    """Poll squeue until the job has ended (or is forgotten): None then. Else what squeue still says,
    once ``timeout`` passed, or as soon as the job is left to Slurm (see :func:`left_to_slurm`)."""
    deadline = time.monotonic() + timeout
    while True:
        info = job_info(job_id, max(min(DEFAULT_TIMEOUT, deadline - time.monotonic()), 1.0))
        if info is None or info.finished:
            return None
        if time.monotonic() >= deadline or left_to_slurm(info):
            return info
        time.sleep(interval)


def left_to_slurm(info: JobInfo, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    """The nodes of a COMPLETING job when Slurm flags every one of them as not responding, else [].
    Nothing but Slurm can end such a job: it does when the nodes answer again or are marked down."""
    if info.state != "COMPLETING" or not info.nodes:
        return []
    states = node_states(info.nodes, timeout)
    lost = not_responding(states)
    return lost if lost and len(lost) == len(states) else []


@dataclass(frozen=True)
class Timing:
    """The cluster's timeouts that bound how long a cancelled job may stay COMPLETING (``scontrol
    show config``; Slurm's defaults where it says nothing)."""

    slurmd_timeout: float = 300.0  # a node silent this long is marked DOWN (its jobs then end)
    message_timeout: float = 10.0  # how long slurmctld waits for a node's answer
    kill_wait: float = 30.0  # between a job's SIGTERM and SIGKILL

    @property
    def completing_bound(self) -> float:
        """Seconds after scancel within which a job has ended on every node that still answers, or
        slurmctld has marked the nodes that do not as not responding: it pings a node silent for a
        third of SlurmdTimeout, waits MessageTimeout for the answer, and marks it down after SlurmdTimeout."""
        return self.kill_wait + self.slurmd_timeout + 2 * self.message_timeout


TIMING_KEYS = {"SlurmdTimeout": "slurmd_timeout", "MessageTimeout": "message_timeout", "KillWait": "kill_wait"}


def timing(timeout: float = DEFAULT_TIMEOUT) -> Timing:
    """The cluster's :class:`Timing`, from ``scontrol show config`` (lines like ``SlurmdTimeout = 300 sec``)."""
    proc = run(["scontrol", "show", "config"], timeout)
    values: dict[str, float] = {}
    for line in proc.stdout.splitlines():
        key, _, value = (part.strip() for part in line.partition("="))
        number = value.split()[0] if value else ""
        if key in TIMING_KEYS and number.isdigit():
            values[TIMING_KEYS[key]] = float(number)
    return Timing(**values)


def not_responding(states: dict[str, str]) -> list[str]:
    """The nodes Slurm flags as not responding (``*`` after the state: ``alloc*``, ``down*``, ...)."""
    return sorted(node for node, state in states.items() if state.endswith("*"))


def partition_nodes(timeout: float = DEFAULT_TIMEOUT) -> list[PartitionNodes]:
    """Every partition's nodes, grouped by state (``sinfo``)."""
    proc = run(["sinfo", "--noheader", "--format=%P|%a|%T|%D|%N"], timeout)
    found = []
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 5 or not parts[3].isdigit():
            continue
        name, default = (parts[0][:-1], True) if parts[0].endswith("*") else (parts[0], False)
        found.append(PartitionNodes(name, parts[1], parts[2], int(parts[3]), parts[4], default))
    return found


def node_states(nodes: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, str]:
    """Node -> Slurm state (``idle``, ``mixed``, ``down*``: a ``*`` means slurmctld hears nothing from it)."""
    if not nodes:
        return {}
    proc = run(["sinfo", "--noheader", "--Node", f"--nodes={nodes}", "--format=%N|%T"], timeout)
    states = dict(line.strip().split("|", 1) for line in proc.stdout.splitlines() if "|" in line)
    return dict(sorted(states.items()))


def srun_immediate(argv: list[str], *, partition: str | None, account: str | None = None, timeout: float,
                   wait: int = 10) -> subprocess.CompletedProcess:  # fmt: skip
    """Run one task on one node now (``srun --immediate``: give up if no node is free within ``wait`` s)."""
    options = ["--nodes=1", "--ntasks=1", f"--immediate={wait}", "--time=1", "--quiet"]
    options += [f"--partition={partition}"] if partition else []
    options += [f"--account={account}"] if account else []
    return run(["srun", *options, *argv], timeout, check=False)
