"""The sum workload: sum(range(10_000_000)) as 16 tasks, the book's first example.

Each task is ~0.2-0.3 s of pure Python, so per-task overhead hardly matters: this shows the best
a cluster can do on this machine, and how close the load-balanced map gets to it.

Run: python benchmarks/bench_sum.py [--engines 2] [--repeat 9] [--warmup 1] [--backend NAME]...
     [--profile NAME] [--json FILE] [--plot FILE.png]
Writes benchmarks/results/sum.json (a bench-result v1 document, see docs/bench-json.md).
Equivalent to: ipcluster-kit bench sum --engines 2 --repeat 9 --json benchmarks/results/sum.json
"""

from __future__ import annotations

from pathlib import Path

from ipcluster_kit.bench.script import main

RESULT = Path(__file__).resolve().parent / "results" / "sum.json"

if __name__ == "__main__":
    main("sum", RESULT, doc=__doc__)
