"""The scheme shoot-out at its default sizes: 5 Python schemes x hwm 1 and 0, plus pure.

Eleven 2-engine clusters, one after another, each running 200 no-op tasks (throughput), 80 tasks of
exponentially distributed CPU work (mean 15 ms, seed 0; makespan against the lower bound), and the
sum (6 x sum(range(1_500_000))) and primes (n < 200) workloads, all through
load_balanced_view().map at chunk size 1, 5 timed repeats after 1 warm-up. Prints the table, the
recommendation per workload and the total time (about 4 minutes on 2 cores; --quick under 1).

Run: python benchmarks/bench_schedulers.py [--quick] [--engines 2] [--repeat 5] [--scheme S]... [--hwm N]...
     [--json FILE] [--plot FILE.png]
Writes benchmarks/results/schedulers.json (a bench-schemes v1 document; see docs/bench-json.md).
Equivalent to:
  ipcluster-kit bench schemes --engines 2 --json benchmarks/results/schedulers.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

RESULT = Path(__file__).resolve().parent / "results" / "schedulers.json"
REFERENCE_ENGINES = 2


def main(argv: list[str] | None = None) -> dict:
    from ipcluster_kit import api
    from ipcluster_kit.bench.script import command_line, report_main
    from ipcluster_kit.bench.shootout import report
    from ipcluster_kit.bench.shootout.recommend import failures

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", type=int, default=REFERENCE_ENGINES)
    parser.add_argument("--repeat", type=int, default=None, help="default 5 (3 with --quick)")
    parser.add_argument("--warmup", type=int, default=None, help="default 1 (0 with --quick)")
    parser.add_argument("--scheme", action="append", default=None, help="repeatable; default: all six")
    parser.add_argument("--hwm", action="append", type=int, default=None, help="repeatable; default: 1 and 0")
    parser.add_argument("--task-kind", default="cpu", choices=("cpu", "sleep"))
    parser.add_argument("--quick", action="store_true", help="the small --quick sizes")
    parser.add_argument("--json", default=str(RESULT), help=f"result file (default {RESULT})")
    parser.add_argument("--plot", default=None, help="PNG plot file")
    args = parser.parse_args(argv)
    started = time.monotonic()

    def run() -> dict:
        return api.shootout(schemes=args.scheme, hwms=args.hwm, engines=args.engines, repeat=args.repeat,
                            warmup=args.warmup, quick=args.quick, task_kind=args.task_kind, json_path=args.json,
                            plot_path=args.plot, command=command_line(argv),
                            progress=lambda message: print(message, file=sys.stderr, flush=True))  # fmt: skip

    document = report_main(run, report.table, report.lines, failures, args.json, args.plot)
    print(f"total {time.monotonic() - started:.0f} s (shoot-out {document['total_seconds']:.0f} s)", file=sys.stderr)
    return document


if __name__ == "__main__":
    main()
