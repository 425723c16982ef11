"""`make demo`'s benchmark, before and after: the same script run by two checkouts, interleaved.

Each checkout (a worktree with its own ``.venv``, e.g. one at the old commit and this one) runs its
own ``scripts/demo.sh`` (init a local profile, ``up``, ``bench all --profile demo --repeat 3
--warmup 1``, ``down``), in its own IPython directory; the pairs alternate which goes first. From
each run's ``bench.json`` it takes the figures of the issue's table: sum efficiency, primes speedup
and no-op tasks per second for ipp-lbv-chunk1, ipp-lbv-auto, ipp-direct, mp-pool and process-pool,
plus the automatic chunk sizes, and the load average before and after each run. It prints the
medians side by side and writes every run's figures to ``results/demo_before_after.json``.

Run: python benchmarks/demo_before_after.py --before ../E-base --after . [--pairs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BACKENDS = ("ipp-lbv-chunk1", "ipp-lbv-auto", "ipp-direct", "mp-pool", "process-pool")
ROWS = (("sum", "efficiency"), ("primes", "speedup"), ("overhead", "tasks_per_second"))


def figures(document: dict) -> dict:
    """The table's cells of one bench-result document, and the automatic chunk sizes."""
    runs = {(r["workload"], r["backend"]): r for r in document["runs"]}
    out: dict = {}
    for workload, metric in ROWS:
        for backend in BACKENDS:
            run = runs.get((workload, backend))
            out[f"{workload}/{metric}/{backend}"] = run[metric] if run and run["status"] == "ok" else None
    for workload in ("sum", "primes", "overhead"):
        run = runs.get((workload, "ipp-lbv-auto"))
        out[f"{workload}/chunksize/ipp-lbv-auto"] = run["params"].get("chunksize") if run else None
    return out


def run_demo(tree: Path, label: str, scratch: Path) -> dict:
    out = scratch / label
    env = {**os.environ, "PATH": f"{tree / '.venv' / 'bin'}:{os.environ['PATH']}", "DEMO_OUT": str(out),
           "DEMO_IPYTHONDIR": str(out / "ipython"), "COLUMNS": "200"}  # fmt: skip
    load_before = os.getloadavg()
    start = time.monotonic()
    result = subprocess.run(["bash", str(tree / "scripts" / "demo.sh")], cwd=tree, env=env, capture_output=True,
                            text=True, timeout=1800)  # fmt: skip
    if result.returncode != 0:
        sys.exit(f"error: {label}: demo.sh failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    document = json.loads((out / "bench.json").read_text())
    return {"label": label, "tree": str(tree), "seconds": time.monotonic() - start, "load_before": list(load_before),
            "load_after": list(os.getloadavg()), "figures": figures(document)}  # fmt: skip


def medians(runs: list[dict]) -> dict:
    keys = runs[0]["figures"].keys()
    out = {}
    for key in keys:
        values = [r["figures"][key] for r in runs if r["figures"][key] is not None]
        out[key] = statistics.median(values) if values else None
    return out


def table(before: dict, after: dict) -> str:
    def cell(value: float | None, metric: str) -> str:
        if value is None:
            return "-"
        return f"{value:,.0f}" if metric == "tasks_per_second" else f"{value:.2f}"

    lines = ["| workload | " + " | ".join(BACKENDS) + " |", "|---|" + "---|" * len(BACKENDS)]
    for workload, metric in ROWS:
        cells = []
        for backend in BACKENDS:
            key = f"{workload}/{metric}/{backend}"
            text = f"{cell(before[key], metric)} → {cell(after[key], metric)}"
            if backend == "ipp-lbv-auto":
                text += f" (chunk {before[f'{workload}/chunksize/{backend}']} → {after[f'{workload}/chunksize/{backend}']})"
            cells.append(text)
        lines.append(f"| {workload} {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="checkout with its own .venv (the old commit)")
    parser.add_argument("--after", default=str(HERE.parent), help="checkout with its own .venv (default: this one)")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--json", default=str(HERE / "results" / "demo_before_after.json"))
    args = parser.parse_args(argv)
    trees = {"before": Path(args.before).resolve(), "after": Path(args.after).resolve()}
    commits = {k: subprocess.run(["git", "-C", str(t), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
               for k, t in trees.items()}  # fmt: skip
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="ipck-demo-") as scratch:
        for i in range(args.pairs):
            order = ("before", "after") if i % 2 == 0 else ("after", "before")
            for label in order:
                print(f"pair {i + 1}/{args.pairs}: {label} ({commits[label]}), load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
                runs[label].append(run_demo(trees[label], f"{label}-{i}", Path(scratch)))
    result = {"benchmark": "demo_before_after", "commits": commits, "pairs": args.pairs, "runs": runs,
              "medians": {label: medians(r) for label, r in runs.items()}}  # fmt: skip
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(table(result["medians"]["before"], result["medians"]["after"]))
    loads = [r["load_before"][0] for rs in runs.values() for r in rs] + [r["load_after"][0] for rs in runs.values() for r in rs]
    print(f"\nmedians of {args.pairs} run(s) each, before {commits['before']} → after {commits['after']};"
          f" 1-minute load average {min(loads):.2f}-{max(loads):.2f}; wrote {args.json}")


if __name__ == "__main__":
    main()
