"""The shared main() of the scripts in ``benchmarks/``: run, print the report, write the JSON.

``python benchmarks/bench_primes.py`` is ``ipcluster-kit bench primes`` with the reference
settings (2 engines, 9 repeats, 1 warm-up) and the result written to
``benchmarks/results/primes.json``; ``benchmarks/bench_schedulers.py`` drives the shoot-out
through :func:`report_main` the same way.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

REFERENCE_ENGINES = 2
REFERENCE_REPEAT = 9  # the fewest repeats whose median interval is [x(2), x(8)] at >= 95%
REFERENCE_WARMUP = 1


def command_line(argv: Sequence[str] | None) -> list[str]:
    """The command recorded in the document."""
    return [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]


def report_main(run: Callable[[], dict], table: Callable[[dict], Any], lines: Callable[[dict], list[str]],
                failures: Callable[[dict], list[str]], json_path: str, plot_path: str | None) -> dict:  # fmt: skip
    """Run (``run`` writes ``json_path`` and ``plot_path``), print the table and the notes, and exit 1
    when a run failed, 2 on bad input (one ``error:`` line either way)."""
    from rich.console import Console
    from rich.markup import escape

    from ipcluster_kit.errors import KitError

    Path(json_path).parent.mkdir(parents=True, exist_ok=True)
    try:
        document = run()
    except KitError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    console = Console(highlight=False, width=200)
    console.print(table(document))
    for note in lines(document):
        console.print(f"• {escape(note)}", soft_wrap=True)
    for path in (json_path, plot_path):
        if path:
            print(f"wrote {path}", file=sys.stderr)
    failed = failures(document)
    if failed:
        print(f"error: {failed[0]}", file=sys.stderr)
        raise SystemExit(1)
    return document


def main(workload: str, default_json: Path, argv: Sequence[str] | None = None, doc: str | None = None) -> dict:
    from ipcluster_kit import api
    from ipcluster_kit.bench import report
    from ipcluster_kit.bench.runner import failures

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

    def progress(description: str, done: int, total: int) -> None:
        if total and (done == total or done % 10 == 0):
            print(f"  [{done}/{total}] {description}", file=sys.stderr, flush=True)

    def run() -> dict:
        return api.bench([workload], backends=args.backend, repeat=args.repeat, warmup=args.warmup, quick=args.quick,
                         profile=args.profile, engines=None if args.profile else args.engines, scaling=args.scaling,
                         json_path=args.json, plot_path=args.plot, command=command_line(argv), progress=progress)  # fmt: skip

    return report_main(run, report.table, report.explanations, failures, args.json, args.plot)
