"""``doctor`` on a slurm profile: what stands between a Slurm job's engines and the controller.

On the login node: ``sinfo`` answers, the profile's partition exists and is up, and how many of
its nodes are idle. Then from a compute node, through one ``srun --immediate`` task running this
Python: its Python and ipyparallel versions against the controller's, the engine connection file
seen through the shared file system, and a TCP connect to every controller port engines need.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ipcluster_kit.checks import FAIL, OK, SKIP, WARN, Check
from ipcluster_kit.cluster import slurmctl
from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.profile.spec import ProfileSpec
from ipcluster_kit.profile.store import ENGINE_CONNECTION_FILE, connection_files
from ipcluster_kit.remote import scripts
from ipcluster_kit.remote.connfile import load_engine_file
from ipcluster_kit.remote.records import Versions
from ipcluster_kit.remote.doctor import _port_summary

PORT_TIMEOUT = 3.0


def _partition_checks(spec: ProfileSpec, timeout: float) -> tuple[list[Check], str | None]:
    """sinfo, the partition, idle nodes; and the partition's name when a job could run there."""
    try:
        groups = slurmctl.partition_nodes(timeout)
    except KitError as exc:
        return [Check("slurm", "sinfo", FAIL, exc.message)], None
    names = sorted({g.partition for g in groups})
    checks = [Check("slurm", "sinfo", OK, f"sinfo answered: partitions {', '.join(names) or '(none)'}")]
    default = next((g.partition for g in groups if g.default), None)
    partition = spec.queue or default
    mine = [g for g in groups if g.partition == partition]
    if not mine:
        wanted = f"partition {partition!r}" if partition else "a default partition"
        checks.append(Check("slurm", "partition", FAIL, f"no {wanted} (partitions: {', '.join(names) or 'none'}); set --partition"))
        return checks, None
    if any(g.available != "up" for g in mine):
        checks.append(Check("slurm", "partition", FAIL, f"partition {partition!r} is {mine[0].available}, not up"))
        return checks, None
    total = sum(g.count for g in mine)
    checks.append(Check("slurm", "partition", OK, f"partition {partition!r} is up ({total} node(s))"))
    free = sum(g.count for g in mine if g.state in ("idle", "mixed"))  # mixed: some CPUs still free
    need = spec.nodes or 1
    states = ", ".join(f"{g.count} {g.state}" for g in mine)
    if free >= need:
        checks.append(Check("slurm", "nodes", OK, f"{free} of {total} node(s) with free CPUs ({states}); the job needs {need}"))
    else:
        checks.append(Check("slurm", "nodes", WARN, f"{free} of {total} node(s) with free CPUs ({states}), the job needs {need}: it will wait"))
    return checks, partition


def _node_checks(report: dict, engine_file, local: Versions) -> list[Check]:
    info = report.get("info", {})
    where = f"node {info.get('hostname', '?')}"
    remote = Versions(python=str(info.get("python")), ipyparallel=info.get("ipyparallel"))
    problem = local.mismatch(remote, host=where, python_path=str(info.get("executable")))
    checks = [
        Check(where, "python", FAIL if remote.python_minor != local.python_minor else OK,
              problem if remote.python_minor != local.python_minor else f"Python {remote.python} at {info.get('executable')}"),
        Check(where, "ipyparallel", FAIL if problem else OK, problem or f"ipyparallel {remote.ipyparallel}"),
    ]  # fmt: skip
    connection = report.get("connection_file", {})
    if engine_file is None:
        checks.append(Check(where, "ports", SKIP, "the controller is not up: start it with `ipcluster-kit up`, then run doctor"))
        return checks
    if connection.get("sha256") != engine_file.sha256:
        checks.append(Check(where, "connection-file", FAIL,
                            f"{connection.get('path')} is not the controller's file here: the profile directory must be on a"
                            " file system the compute nodes share"))  # fmt: skip
    else:
        checks.append(Check(where, "connection-file", OK, f"{connection.get('path')} is the controller's (shared file system)"))
    outcome = {int(port): result for port, result in report.get("ports", {}).items()}
    status, detail = _port_summary(engine_file.address, engine_file.ports, outcome)
    checks.append(Check(where, "ports", status, detail))
    return checks


def diagnose(spec: ProfileSpec, profile_dir: Path, timeout: float = 60.0) -> list[Check]:
    """Every check, in order; a failed step marks what depends on it as skipped."""
    checks, partition = _partition_checks(spec, min(timeout, slurmctl.DEFAULT_TIMEOUT))
    if partition is None:
        return checks + [Check("compute node", "srun", SKIP, "no usable partition")]
    try:
        engine_file = load_engine_file(connection_files(Path(profile_dir))["engine"])
    except BadInput:
        engine_file = None
    payload = {
        "profile_dir": str(Path(profile_dir).absolute()),
        "name": ENGINE_CONNECTION_FILE,
        "address": engine_file.address if engine_file else "",
        "ports": engine_file.port_list() if engine_file else [],
        "timeout": PORT_TIMEOUT,
    }
    proc = slurmctl.srun_immediate([sys.executable, "-c", scripts.DOCTOR, scripts.args(payload)], partition=partition,
                                   account=spec.account, timeout=timeout)  # fmt: skip
    try:
        report = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        detail = slurmctl.last_line(proc.stderr) or f"exit status {proc.returncode}, no answer"
        return checks + [Check("compute node", "srun", FAIL, f"srun {sys.executable} on a compute node: {detail}")]
    checks.append(Check("compute node", "srun", OK, f"srun ran {sys.executable} on {report.get('info', {}).get('hostname')}"))
    return checks + _node_checks(report, engine_file, Versions.local())
