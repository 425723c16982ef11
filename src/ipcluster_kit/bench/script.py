"""The shared main() of the scripts in ``benchmarks/``: one workload, every backend, a JSON file.

``python benchmarks/bench_primes.py`` is ``ipcluster-kit bench primes`` with the reference
settings (2 engines, 9 repeats, 1 warm-up) and the result written to
``benchmarks/results/primes.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

REFERENCE_ENGINES = 2
REFERENCE_REPEAT = 9  # the fewest repeats whose median interval is [x(2), x(8)] at >= 95%
REFERENCE_WARMUP = 1


def main(workload: str, default_json: Path, argv: Sequence[str] | None = None, doc: str | None = None) -> dict:
    from ipcluster_kit.bench import report, results
    from ipcluster_kit.bench.runner import BenchConfig, failures, run_bench
    from ipcluster_kit.errors import KitError

    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--engines", type=int, default=REFERENCE_ENGINES, help="engines of the temporary cluster")
    parser.add_argument("--profile", default=None, help="use the cluster `ipcluster-kit up NAME` started")
    parser.add_argument("--repeat", type=int, default=REFERENCE_REPEAT)
    parser.add_argument("--warmup", type=int, default=REFERENCE_WARMUP)
    parser.add_argument("--backend", action="append", default=None, help="repeatable; default: all")
    parser.add_argument("--quick", action="store_true", help="the small --quick sizes")
    parser.add_argument("--scaling", action="store_true", help="also 1..N-1 workers")
    parser.add_argument("--json", default=str(default_json), help=f"result file (default {default_json})")
    parser.add_argument("--plot", default=None, help="PNG plot file")
    args = parser.parse_args(argv)

    config = BenchConfig(
        workloads=[workload], backends=args.backend, repeat=args.repeat, warmup=args.warmup, quick=args.quick,
        profile=args.profile, engines=None if args.profile else args.engines, scaling=args.scaling,
        command=[Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])],
    )  # fmt: skip
    try:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        results.check_writable(args.json, "--json")

        def progress(description: str, done: int, total: int) -> None:
            if total and (done == total or done % 10 == 0):
                print(f"  [{done}/{total}] {description}", file=sys.stderr, flush=True)

        document = run_bench(config, progress=progress)
    except KitError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, width=160)
    console.print(report.table(document))
    for note in report.explanations(document):
        console.print(f"• {escape(note)}", soft_wrap=True)
    results.write(args.json, document)
    print(f"wrote {args.json}", file=sys.stderr)
    if args.plot:
        report.plot(document, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    failed = failures(document)
    if failed:
        print(f"error: {failed[0]}", file=sys.stderr)
        raise SystemExit(1)
    return document
