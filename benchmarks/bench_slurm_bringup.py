"""Bring-up time of engines as a Slurm job on the test lab: `ipcluster-kit up` against ipyparallel.

The lab (tests/lab/slurmlab.py) is a real Slurm cluster: slurmctld here and two slurmd compute
nodes in network namespaces. Every case brings up 2 engines, one on each node, with the
controller on this host's lab address, and is timed from its start to every engine registered
(controller start included, as for a user):

- ``kit``: ``ipcluster-kit up`` (the API call) on a slurm profile (``init --preset slurm --nodes 2``);
- ``ipp.Cluster``: ``ipp.Cluster(engine_launcher_class='slurm', n=2)`` on a fresh ipyparallel
  profile, its defaults (3 s heartbeat) and a job template that asks for one task per node,
  ``start_and_connect_sync()`` then ``wait_for_engines(2)``;
- ``ipp.Cluster, kit profile``: the same call on the kit's profile (the drop-in: ipyparallel's
  launcher with the kit's config, e.g. its 500 ms heartbeat).

Also measured: the lab's start (build) time, and a job's time from ``sbatch`` to RUNNING (squeue
polled every 20 ms). Cases alternate within each round so load from other users hits all alike.

Needs root and Debian's slurm packages (as the lab tests). Usage::

    .venv/bin/python benchmarks/bench_slurm_bringup.py [--repeat 5] [--json benchmarks/results/slurm_bringup.json]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from _common import summary, write  # noqa: E402
from lab.slurmlab import SlurmLab, unavailable_reason  # noqa: E402

from ipcluster_kit import api  # noqa: E402
from ipcluster_kit.cluster import slurmctl  # noqa: E402
from ipcluster_kit.profile.spec import build_spec  # noqa: E402
from ipcluster_kit.profile.store import plan_write, write_profile  # noqa: E402

ENGINES = 2
TIMEOUT = 120.0
IPP_TEMPLATE = """#!/bin/sh
#SBATCH --export=ALL
#SBATCH --job-name=ipengine-{cluster_id}
#SBATCH --ntasks={n}
#SBATCH --ntasks-per-node=1
#SBATCH --output=%s/slurm-%%j.out
srun {program_and_args}
"""


def kit_profile(lab: SlurmLab, ipython_dir: Path) -> str:
    name = "slurmbench"
    write_profile(plan_write(build_spec(name, preset="slurm", ip=lab.gateway, location=lab.gateway, nodes=ENGINES), ipython_dir))
    return name


def measure_kit(name: str, ipython_dir: Path) -> dict:
    t0 = time.monotonic()
    api.up(name, ipython_dir=ipython_dir, timeout=TIMEOUT)
    seconds = time.monotonic() - t0
    t1 = time.monotonic()
    api.down(name, ipython_dir=ipython_dir)
    return {"seconds": seconds, "down_seconds": time.monotonic() - t1}


def measure_ipp(lab: SlurmLab, profile_dir: Path | None) -> dict:
    """ipp.Cluster with the slurm launcher: on a fresh profile (its defaults), or on the kit's profile."""
    import ipyparallel as ipp
    from traitlets.config import Config

    own = profile_dir is None
    workdir = Path(tempfile.mkdtemp(prefix="ipck-bench-ipp-"))
    kwargs: dict = {}
    if own:
        config = Config()
        config.SlurmEngineSetLauncher.batch_template = IPP_TEMPLATE % workdir
        kwargs = {"config": config, "controller_ip": lab.gateway}
    cwd = os.getcwd()
    os.chdir(workdir)  # ipyparallel writes its job script into the current directory
    try:
        t0 = time.monotonic()
        cluster = ipp.Cluster(profile_dir=str(profile_dir or workdir), engine_launcher_class="slurm", n=ENGINES,
                              log_level=40, **kwargs)  # fmt: skip
        try:
            client = cluster.start_and_connect_sync()
            client.wait_for_engines(ENGINES, timeout=TIMEOUT)
            seconds = time.monotonic() - t0
            client.close()
        finally:
            cluster.stop_cluster_sync()
    finally:
        os.chdir(cwd)
        shutil.rmtree(workdir, ignore_errors=True)
    lab.cancel_all()
    return {"seconds": seconds}


def measure_job_to_running(lab: SlurmLab, workdir: Path) -> dict:
    script = workdir / "sleep.sh"
    script.write_text(f"#!/bin/sh\n#SBATCH --nodes={ENGINES}\n#SBATCH --output={workdir}/sleep-%j.out\nsrun sleep 30\n")
    t0 = time.monotonic()
    job_id = slurmctl.submit(script, cwd=workdir)
    while True:
        info = slurmctl.job_info(job_id)
        if info and info.state == "RUNNING":
            seconds = time.monotonic() - t0
            break
        if time.monotonic() - t0 > TIMEOUT:
            raise TimeoutError(f"job {job_id} not RUNNING within {TIMEOUT} s: {info}")
        time.sleep(0.02)
    slurmctl.cancel(job_id)
    slurmctl.wait_until_gone(job_id, 30)
    return {"seconds": seconds}


def measure_lab_start() -> dict:
    lab = SlurmLab(n_nodes=ENGINES)
    try:
        lab.build()
        return {"seconds": lab.build_seconds}
    finally:
        lab.teardown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", dest="out", default=None, help="result file (default benchmarks/results/slurm_bringup.json)")
    args = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason:
        print(f"bench_slurm_bringup: {reason}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="ipck-bench-slurm-"))
    cases = ["kit", "ipp.Cluster", "ipp.Cluster, kit profile", "job to RUNNING", "lab start"]
    samples: dict[str, list[dict]] = {case: [] for case in cases}
    lab = SlurmLab(n_nodes=ENGINES)
    saved_env = {key: os.environ.get(key) for key in lab_env_keys()}
    started = time.time()
    try:
        lab.build()
        os.environ.update(lab.env)
        ipython_dir = workdir / "ipython"
        name = kit_profile(lab, ipython_dir)
        profile_dir = ipython_dir / f"profile_{name}"
        measure_kit(name, ipython_dir)  # warm-up (page cache, __pycache__), not counted
        for i in range(args.repeat):
            for case in cases:
                lab.wait_nodes_idle()  # the previous case's job has left its nodes: every case starts alike
                if case == "kit":
                    sample = measure_kit(name, ipython_dir)
                elif case == "ipp.Cluster":
                    sample = measure_ipp(lab, None)
                elif case == "ipp.Cluster, kit profile":
                    sample = measure_ipp(lab, profile_dir)
                elif case == "job to RUNNING":
                    sample = measure_job_to_running(lab, workdir)
                else:
                    sample = measure_lab_start()
                samples[case].append(sample)
                print(f"round {i + 1}/{args.repeat} {case:26s} {sample['seconds']:.2f} s", file=sys.stderr)
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        lab.teardown()
        shutil.rmtree(workdir, ignore_errors=True)

    results = {case: summary([round(s["seconds"], 3) for s in runs]) for case, runs in samples.items()}
    results["kit"]["down_median"] = round(statistics.median(s["down_seconds"] for s in samples["kit"]), 3)
    kit, ipp_default = results["kit"]["median"], results["ipp.Cluster"]["median"]
    write("slurm_bringup", {
        "measures": "seconds from the call to every engine registered (2 engines, one per lab node, controller start"
                    " included); the lab's build time; sbatch to RUNNING",
        "repeat": args.repeat,
        "engines": ENGINES,
        "wall_seconds": round(time.time() - started, 1),
        "load_after": list(os.getloadavg()),
        "results": results,
        "ratio_kit_to_ipp_cluster": round(kit / ipp_default, 3),
        "goal": "kit at most half of ipp.Cluster's time (ratio <= 0.5)",
    }, args.out)  # fmt: skip
    for case, result in results.items():
        print(f"{case:26s} median {result['median']:.2f} s  (min {result['min']:.2f}, max {result['max']:.2f})")
    print(f"kit / ipp.Cluster = {kit / ipp_default:.2f}")
    return 0


def lab_env_keys() -> list[str]:
    return ["SLURM_CONF"]


if __name__ == "__main__":
    raise SystemExit(main())
