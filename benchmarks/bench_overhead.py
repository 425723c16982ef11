"""The overhead workload: 1000 no-op tasks. All the time is overhead: tasks per second per backend.

Gives the per-task cost of each way of running work in parallel, at its default chunk size (and,
for the load-balanced view, at chunk size 1 and at the automatic one).

Run: python benchmarks/bench_overhead.py [--engines 2] [--repeat 9] [--warmup 1] [--backend NAME]...
     [--profile NAME] [--json FILE] [--plot FILE.png]
Writes benchmarks/results/overhead.json (a bench-result v1 document, see docs/bench-json.md).
Equivalent to: ipcluster-kit bench overhead --engines 2 --repeat 9 --json benchmarks/results/overhead.json
"""

from __future__ import annotations

from pathlib import Path

from ipcluster_kit.bench.script import main

RESULT = Path(__file__).resolve().parent / "results" / "overhead.json"

if __name__ == "__main__":
    main("overhead", RESULT, doc=__doc__)
