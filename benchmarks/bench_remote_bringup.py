"""Remote bring-up time: the kit's concurrent bootstrap vs ipyparallel's SSH launcher, on lab hosts.

Time measured: from the start of the engine bring-up to all engines registered with the
controller (a client made beforehand polls ``client.ids``). The controller is already running
and is not timed; a fresh one serves each measurement. Hosts are the test lab's network
namespaces (tests/lab/netlab.py), each with its own sshd; the same hosts, engine count,
interpreter and controller settings (heartbeat 500 ms) serve both tools.

- ``kit``: ``ipcluster_kit.remote.bootstrap_hosts`` (asyncssh, all hosts at once), for 1, 2, 4, 8 hosts.
- ``ipcluster-ssh``: ``ipcluster engines`` with ``Cluster.engine_launcher_class = "ssh"``
  (OpenSSH client with the lab's ``-F`` config; ipyparallel's own remote profile handling).

Measurements of both tools alternate within each round, so that load from other users of the
machine hits both alike. Output: JSON with every sample, medians and ratios.

Needs root (network namespaces). Usage::

    .venv/bin/python benchmarks/bench_remote_bringup.py [--repeats 5] [--hosts 1,2,4,8]
        [--ipcluster-hosts 2] [--engines-per-host 1] [--out benchmarks/results/remote_bringup.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from lab.netlab import Lab, unavailable_reason  # noqa: E402

from ipcluster_kit.remote import SSHOptions, bootstrap_hosts, parse_hosts  # noqa: E402

REGISTRATION_TIMEOUT = 120.0


def poll_registered(client, n: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while len(client.ids) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(client.ids)} of {n} engines registered within {timeout} s")
        time.sleep(0.02)
    return time.monotonic()


def measure_kit(lab: Lab, ctl, hosts: int, per_host: int, options: SSHOptions) -> dict:
    import ipyparallel as ipp

    specs = parse_hosts([f"{h.spec}={per_host}" for h in lab.hosts[:hosts]])
    client = ipp.Client(str(ctl.client_file), timeout=30)
    try:
        t0 = time.monotonic()
        results = bootstrap_hosts(
            specs, ctl.engine_file, remote_profile_dir=".ipcluster-kit/profiles/bench",
            remote_python=lab.python, ssh_options=options, timeout=60,
        )  # fmt: skip
        t_boot = time.monotonic()
        bad = [r.error for r in results if not r.ok]
        if bad:
            raise RuntimeError(f"kit bring-up failed: {bad}")
        t1 = poll_registered(client, hosts * per_host, REGISTRATION_TIMEOUT)
    finally:
        client.close()
    return {"seconds": t1 - t0, "bootstrap_seconds": t_boot - t0}


def write_ipcluster_config(profile_dir: Path, lab: Lab, hosts: int, per_host: int) -> None:
    engines = {h.spec: per_host for h in lab.hosts[:hosts]}
    (profile_dir / "ipcluster_config.py").write_text(
        "\n".join(
            [
                "c = get_config()  # noqa",
                'c.Cluster.engine_launcher_class = "ssh"',
                f"c.Cluster.n = {hosts * per_host}",
                f"c.SSHEngineSetLauncher.engines = {engines!r}",
                f"c.SSHEngineSetLauncher.ssh_args = ['-F', {str(lab.ssh_config)!r}]",
                f"c.SSHEngineSetLauncher.scp_args = ['-F', {str(lab.ssh_config)!r}]",
                f"c.SSHEngineSetLauncher.remote_python = {lab.python!r}",
                'c.SSHEngineSetLauncher.remote_profile_dir = "/root/.ipython/profile_bench"',
                "",
            ]
        )
    )


def measure_ipcluster(lab: Lab, ctl, hosts: int, per_host: int) -> dict:
    import ipyparallel as ipp

    write_ipcluster_config(ctl.profile_dir, lab, hosts, per_host)
    ipcluster = str(Path(lab.python).parent / "ipcluster")
    client = ipp.Client(str(ctl.client_file), timeout=30)
    log = open(ctl.profile_dir / "ipcluster-engines.log", "ab")
    proc = None
    try:
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [ipcluster, "engines", f"--profile-dir={ctl.profile_dir}", "--log-level=WARN"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        t1 = poll_registered(client, hosts * per_host, REGISTRATION_TIMEOUT)
    finally:
        client.close()
        log.close()
        if proc is not None:  # ipcluster and its ssh children, by process group
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(10)
    return {"seconds": t1 - t0}


def one_round(lab: Lab, tool: str, hosts: int, per_host: int, options: SSHOptions, workdir: Path, i: int) -> dict:
    ctl = lab.start_controller(workdir / f"{tool}-{hosts}-{i}")
    try:
        if tool == "kit":
            return measure_kit(lab, ctl, hosts, per_host, options)
        return measure_ipcluster(lab, ctl, hosts, per_host)
    finally:
        ctl.stop()
        lab.reset_hosts()


def machine() -> dict:
    from importlib.metadata import version

    return {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ipyparallel": version("ipyparallel"),
        "asyncssh": version("asyncssh"),
        "openssh": subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip(),
        "load_before": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hosts", default="1,2,4,8", help="host counts for the kit")
    parser.add_argument("--ipcluster-hosts", default="2", help="host counts for ipcluster's SSH launcher")
    parser.add_argument("--engines-per-host", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "remote_bringup.json")
    args = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason:
        print(f"bench_remote_bringup: {reason}", file=sys.stderr)
        return 2
    kit_hosts = [int(x) for x in args.hosts.split(",") if x]
    ipc_hosts = [int(x) for x in args.ipcluster_hosts.split(",") if x]
    cases = [("kit", n) for n in kit_hosts] + [("ipcluster-ssh", n) for n in ipc_hosts]
    samples: dict[tuple[str, int], list[dict]] = {case: [] for case in cases}
    info = machine()
    workdir = Path(tempfile.mkdtemp(prefix="ipck-bench-remote-"))
    lab = Lab(max(kit_hosts + ipc_hosts), python=sys.executable)
    started = time.time()
    try:
        lab.build()
        options = SSHOptions.build(lab.ssh_config)
        one_round(lab, "kit", 1, 1, options, workdir, -1)  # warm-up (page cache, pycache), not counted
        for i in range(args.repeats):
            for tool, hosts in cases:
                sample = one_round(lab, tool, hosts, args.engines_per_host, options, workdir, i)
                samples[(tool, hosts)].append(sample)
                print(f"round {i + 1}/{args.repeats} {tool:14s} {hosts} host(s): {sample['seconds']:.2f} s", file=sys.stderr)
    finally:
        lab.teardown()
        shutil.rmtree(workdir, ignore_errors=True)

    results = []
    for (tool, hosts), runs in samples.items():
        secs = [r["seconds"] for r in runs]
        entry = {
            "tool": tool,
            "hosts": hosts,
            "engines": hosts * args.engines_per_host,
            "seconds": [round(s, 3) for s in secs],
            "median_seconds": round(statistics.median(secs), 3),
        }
        if tool == "kit":
            entry["bootstrap_median_seconds"] = round(statistics.median(r["bootstrap_seconds"] for r in runs), 3)
        results.append(entry)
    medians = {(r["tool"], r["hosts"]): r["median_seconds"] for r in results}
    ratios = {
        f"ipcluster-ssh / kit, {n} host(s)": round(medians[("ipcluster-ssh", n)] / medians[("kit", n)], 2)
        for n in ipc_hosts
        if ("kit", n) in medians
    }
    report = {
        "benchmark": "remote_bringup",
        "measures": "seconds from the start of engine bring-up to all engines registered (controller already running)",
        "machine": {**info, "load_after": os.getloadavg()},
        "repeats": args.repeats,
        "engines_per_host": args.engines_per_host,
        "heartbeat_ms": 500,
        "wall_seconds": round(time.time() - started, 1),
        "results": results,
        "ratios": ratios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"results": [{k: r[k] for k in ("tool", "hosts", "median_seconds")} for r in results], "ratios": ratios}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
