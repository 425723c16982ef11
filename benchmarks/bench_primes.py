"""The primes workload: the n-th prime for n in range(1000), the book's second example.

Tasks are short (0.1 to ~3 ms, growing with n), as short as a round trip through the controller:
at chunk size 1 the load-balanced map is slower than the serial loop; the automatic chunk size
fixes that. DirectView.map, which gives each engine one contiguous half, leaves one engine with
~3/4 of the work.

Run: python benchmarks/bench_primes.py [--engines 2] [--repeat 9] [--warmup 1] [--backend NAME]...
     [--profile NAME] [--json FILE] [--plot FILE.png]
Writes benchmarks/results/primes.json (a bench-result v1 document, see docs/bench-json.md).
Equivalent to: ipcluster-kit bench primes --engines 2 --repeat 9 --json benchmarks/results/primes.json
"""

from __future__ import annotations

from pathlib import Path

from ipcluster_kit.bench.script import main

RESULT = Path(__file__).resolve().parent / "results" / "primes.json"

if __name__ == "__main__":
    main("primes", RESULT, doc=__doc__)
