"""Plain-text words for `status` and `down`: what each kind of engine set is and did, in a line.

The API returns dicts (``status --json`` and ``down --json`` print them as they are); this module
only turns them into sentences, one function per kind of engine set, with a readable fallback for
a kind it does not know.
"""

from __future__ import annotations

from typing import Any, Callable


def _ranges(numbers: list[int]) -> str:
    """``0-3, 5`` for [0, 1, 2, 3, 5]."""
    spans: list[list[int]] = []
    for n in sorted(numbers):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in spans) or "none"


def _running(engines: list[dict[str, Any]]) -> str:
    return f"{sum(1 for e in engines if e['running'])} of {len(engines)} running"


def _slurm(facts: dict[str, Any], engines: list[dict[str, Any]]) -> list[str]:
    job = f"slurm job {facts.get('job_id', '?')}: {facts.get('state', 'unknown')}"
    if facts.get("reason"):
        job += f" ({facts['reason']})"
    if facts.get("nodes") and facts.get("state") not in ("PENDING", "gone"):
        job += f" on {facts['nodes']}"
    if facts.get("error"):
        job += f"; Slurm did not answer: {facts['error']}"
    lines = [job]
    states = facts.get("node_states") or {}
    per_node = facts.get("engines_per_node") or {}
    if per_node:
        nodes = [f"{node} {count}" + (f" ({states[node]})" if states.get(node) not in (None, "allocated", "mixed") else "")
                 for node, count in per_node.items()]  # fmt: skip
        lines.append(f"  engines per node: {', '.join(nodes)}")
    return lines


def _mpi(facts: dict[str, Any], engines: list[dict[str, Any]]) -> list[str]:
    ranks = [e["rank"] for e in engines if e.get("running") and e.get("rank") is not None]
    mpiexec = f"mpiexec PID {facts.get('mpiexec_pid')} {'running' if facts.get('mpiexec_running') else 'not running'}"
    return [f"mpi world of {facts.get('world_size', len(engines))}: ranks {_ranges(ranks)} running; {mpiexec}"]


def _ssh(facts: dict[str, Any], engines: list[dict[str, Any]]) -> list[str]:
    hosts: dict[str, list[dict[str, Any]]] = {}
    for engine in engines:
        hosts.setdefault(engine["host"], []).append(engine)
    lines = [f"ssh hosts: {', '.join(f'{host} {_running(found)}' for host, found in hosts.items()) or 'none'}"]
    lines += [f"  failed: {failure}" for failure in facts.get("failures", [])]
    return lines


def _local(facts: dict[str, Any], engines: list[dict[str, Any]]) -> list[str]:
    return [f"local engines: {_running(engines)}"]


def _other(kind: str) -> Callable[[dict[str, Any], list[dict[str, Any]]], list[str]]:
    def render(facts: dict[str, Any], engines: list[dict[str, Any]]) -> list[str]:
        said = "; ".join(f"{key.replace('_', ' ')}: {value}" for key, value in facts.items())
        return [f"{kind} engines: {_running(engines)}" + (f"; {said}" if said else "")]

    return render


SET_LINES = {"slurm": _slurm, "mpi": _mpi, "ssh": _ssh, "local": _local}


def engine_set_lines(info: dict[str, Any]) -> list[str]:
    """One or two lines per engine set of a `status` result: the job, the world, the hosts."""
    lines = []
    for engine_set in info["engine_sets"]:
        kind = engine_set["kind"]
        facts = {k: v for k, v in engine_set.items() if k not in ("kind", "engines")}
        engines = [e for e in info["engines"] if e["kind"] == kind]
        lines += SET_LINES.get(kind, _other(kind))(facts, engines)
    return lines


def _stopped(engine_set: dict[str, Any]) -> str:
    kind, count = engine_set["kind"], engine_set["engines_stopped"]
    if kind == "slurm":
        jobs = ", ".join(str(entry["job"]) for entry in engine_set["stopped"] if "job" in entry)
        return f"{count} slurm engine(s)" + (f" (job {jobs} cancelled)" if jobs else "")
    if kind == "ssh":
        hosts = sorted({entry["host"] for entry in engine_set["stopped"] if "host" in entry})
        return f"{count} remote engine(s)" + (f" on {', '.join(hosts)}" if hosts else "")
    return f"{count} {kind} engine(s)"


def down_summary(name: str, report: dict[str, Any]) -> str:
    """`down`'s line: the controller, each engine set by kind, what the directory scan found."""
    parts = ["controller" + ("" if report["controller_stopped"] else " (already gone)")]
    parts += [_stopped(engine_set) for engine_set in report["engine_sets"]]
    if report["found_by_profile_dir"]:
        parts.append(f"{len(report['found_by_profile_dir'])} found by profile directory")
    processes = sum(1 for entry in report["stopped"] if "pid" in entry)
    return f"Cluster [bold]{name}[/] stopped: {', '.join(parts)}; {processes} process(es) in all."
