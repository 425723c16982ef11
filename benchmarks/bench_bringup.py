"""Bring-up time of a local 2-engine cluster: `ipcluster-kit up` against ipyparallel's own default.

Measures, interleaved round by round:
- kit `up` with heartbeat periods of 3000 ms (ipyparallel's default), 1000 ms and 500 ms;
- `ipp.Cluster(n=2)` on a fresh default profile, `start_and_connect_sync()` until 2 engines registered.
Each time runs from the command's start to every engine registered.

Run: python benchmarks/bench_bringup.py [--repeat 5] [--engines 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import summary, write  # noqa: E402

from ipcluster_kit.cluster.local import down, up  # noqa: E402
from ipcluster_kit.profile.spec import build_spec  # noqa: E402
from ipcluster_kit.profile.store import plan_write, write_profile  # noqa: E402

HEARTBEATS = (3000, 1000, 500)


def kit_bringup(root: Path, heartbeat_ms: int, engines: int) -> float:
    name = f"hb{heartbeat_ms}"
    write_profile(plan_write(build_spec(name, engines=engines, heartbeat_ms=heartbeat_ms), root), force=True)
    start = time.perf_counter()
    up(name, root, timeout=120)
    elapsed = time.perf_counter() - start
    down(name, root)
    return elapsed


def ipp_bringup(root: Path, engines: int) -> float:
    import ipyparallel as ipp

    (root / "ipp").mkdir(exist_ok=True)
    start = time.perf_counter()
    cluster = ipp.Cluster(n=engines, ipython_dir=str(root / "ipp"), log_level=40)
    client = cluster.start_and_connect_sync()
    client.wait_for_engines(engines, timeout=120)
    elapsed = time.perf_counter() - start
    client.close()
    cluster.stop_cluster_sync()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--engines", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {f"kit up, heartbeat {hb} ms": [] for hb in HEARTBEATS}
    samples["ipp.Cluster, default profile"] = []
    root = Path(tempfile.mkdtemp(prefix="ipck-bringup-"))
    try:
        for _ in range(args.repeat):
            for hb in HEARTBEATS:
                samples[f"kit up, heartbeat {hb} ms"].append(kit_bringup(root, hb, args.engines))
            samples["ipp.Cluster, default profile"].append(ipp_bringup(root, args.engines))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    results = {key: summary(values) for key, values in samples.items()}
    base = results["ipp.Cluster, default profile"]["median"]
    for key, value in results.items():
        print(f"{key:32s} median {value['median']:.2f} s (min {value['min']:.2f}, max {value['max']:.2f})  "
              f"{value['median'] / base:.2f}x of ipp.Cluster")  # fmt: skip
    write("bringup_local", {"engines": args.engines, "repeat": args.repeat, "results": results}, args.json)


if __name__ == "__main__":
    main()
