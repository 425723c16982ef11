"""Bring-up time of a local 2-engine cluster: `ipcluster-kit up` now, the kit before (another checkout),
and ipyparallel's own ``ipp.Cluster``, interleaved round by round; and `down`.

Every measurement runs in a fresh Python process (this script with ``--probe``), which imports the
kit and ipyparallel first, so that every variant is timed from the call that starts the cluster to
every engine registered (`up`), and from the call that stops it to its return (`down`):

- ``kit up``: this checkout's ``ipcluster_kit`` (``up()`` then ``down()``); its bring-up timeline
  (controller started, controller ready, schedulers ready, engines started, each registration) is
  recorded too;
- ``kit up (before)``: the same calls on another checkout (``--before-python``: that checkout's venv
  interpreter, e.g. of main at f368cf2), with its profile defaults;
- ``ipp.Cluster``: ``ipp.Cluster(n=2)`` on a fresh default profile, ``start_and_connect_sync()`` and
  ``wait_for_engines``; then ``stop_cluster_sync()``;
- ``kit up, CLI``: ``ipcluster-kit up NAME`` and ``ipcluster-kit down NAME`` as a user types them
  (the command's whole run, Python start-up included).

Run: python benchmarks/bench_bringup.py [--repeat 5] [--engines 2] [--before-python PY] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

KIT = "kit up"
BEFORE = "kit up (before)"
IPP = "ipp.Cluster"
CLI = "kit up, CLI"


def probe_kit(root: Path, engines: int) -> dict:
    """One kit bring-up and stop, in this process (the kit and ipyparallel already imported)."""
    import ipyparallel  # noqa: F401 - imported before timing, as for ipp.Cluster

    from ipcluster_kit.profile.spec import build_spec
    from ipcluster_kit.profile.store import plan_write, write_profile

    try:  # this checkout
        from ipcluster_kit.cluster.bringup import up
        from ipcluster_kit.cluster.shutdown import down
    except ImportError:  # the first release
        from ipcluster_kit.cluster.local import down, up
    write_profile(plan_write(build_spec("bench", engines=engines), root), force=True)
    start = time.perf_counter()
    cluster, _ = up("bench", root, timeout=120)
    up_seconds = time.perf_counter() - start
    start = time.perf_counter()
    down("bench", root)
    return {"up": up_seconds, "down": time.perf_counter() - start, "timeline": getattr(cluster, "timeline", None)}


def probe_ipp(root: Path, engines: int) -> dict:
    import ipyparallel as ipp

    start = time.perf_counter()
    cluster = ipp.Cluster(n=engines, ipython_dir=str(root), log_level=40)
    client = cluster.start_and_connect_sync()
    client.wait_for_engines(engines, timeout=120)
    up_seconds = time.perf_counter() - start
    client.close()
    start = time.perf_counter()
    cluster.stop_cluster_sync()
    return {"up": up_seconds, "down": time.perf_counter() - start}


def _probe(python: str, kind: str, engines: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix="ipck-bringup-"))
    try:
        out = subprocess.run([python, __file__, "--probe", kind, "--root", str(root), "--engines", str(engines)],
                             capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _cli(engines: int) -> dict:
    kit = [str(Path(sys.executable).parent / "ipcluster-kit")]
    root = Path(tempfile.mkdtemp(prefix="ipck-bringup-"))
    env = dict(os.environ, IPYTHONDIR=str(root))
    try:
        subprocess.run(kit + ["init", "bench", "--engines", str(engines)], env=env, check=True, capture_output=True)
        start = time.perf_counter()
        subprocess.run(kit + ["up", "bench"], env=env, check=True, capture_output=True, timeout=300)
        up_seconds = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run(kit + ["down", "bench"], env=env, check=True, capture_output=True, timeout=300)
        return {"up": up_seconds, "down": time.perf_counter() - start}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _summary(values: list[float]) -> dict:
    import statistics

    return {"median": statistics.median(values), "min": min(values), "max": max(values), "samples": values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--engines", type=int, default=2)
    parser.add_argument("--before-python", default=None, help="interpreter of the checkout to compare with")
    parser.add_argument("--json", default=None)
    parser.add_argument("--probe", choices=["kit", "ipp"], help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        result = (probe_kit if args.probe == "kit" else probe_ipp)(Path(args.root), args.engines)
        print(json.dumps(result))
        return

    from _common import write

    variants = {KIT: lambda: _probe(sys.executable, "kit", args.engines), IPP: lambda: _probe(sys.executable, "ipp", args.engines),
                CLI: lambda: _cli(args.engines)}  # fmt: skip
    if args.before_python:
        variants[BEFORE] = lambda: _probe(args.before_python, "kit", args.engines)
    samples: dict[str, list[dict]] = {name: [] for name in variants}
    order = list(variants)
    for round_ in range(args.repeat):
        for name in order[round_ % len(order):] + order[: round_ % len(order)]:  # rotate the order
            samples[name].append(variants[name]())
            print(f"round {round_ + 1}: {name:16s} up {samples[name][-1]['up']:.2f} s, down {samples[name][-1]['down']:.2f} s",
                  file=sys.stderr)  # fmt: skip
    results = {name: {"up": _summary([s["up"] for s in runs]), "down": _summary([s["down"] for s in runs])}
               for name, runs in samples.items()}  # fmt: skip
    base = results[IPP]["up"]["median"]
    for name, value in results.items():
        value["up_ratio_to_ipp_cluster"] = value["up"]["median"] / base
        print(f"{name:16s} up median {value['up']['median']:.2f} s ({value['up_ratio_to_ipp_cluster']:.2f}x ipp.Cluster),"
              f" down median {value['down']['median']:.2f} s")  # fmt: skip
    timelines = [s["timeline"] for s in samples[KIT]]
    write("bringup_local", {"engines": args.engines, "repeat": args.repeat, "before_python": args.before_python,
                            "results": results, "kit_timelines": timelines}, args.json)  # fmt: skip


if __name__ == "__main__":
    main()
