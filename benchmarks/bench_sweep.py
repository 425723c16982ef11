"""The chunk-size sweep on the four kinds of work, and the chunk model judged against it.

One run sweeps ``load_balanced_view().map`` across chunk sizes from 1 to one chunk per engine on
sum (equal tasks), primes (growing tasks), the heterogeneous workload (exponential durations, as
the scheme shoot-out runs it) and a user function (``sweep_tasks:walk``, irregular), each on a
temporary 2-engine cluster, with ``ipp-direct``, ``mp-pool`` and ``process-pool`` measured in the
same rounds. Per workload it writes ``results/sweep_<workload>.json`` (a bench-sweep v1 document,
``docs/bench-sweep-json.md``) and ``results/sweep_<workload>.png``, then prints one line each and
writes ``results/sweep_summary.json``: the best swept size, the automatic choice against it (goal:
within 5%), the model's prediction against the measurement (goal: within 10%), and the automatic
chunk size against the best other backend (goal: within 5% on sum and primes).

Run: python benchmarks/bench_sweep.py [--repeat 7] [--warmup 1] [--points 10] [--workload NAME]...
     [--profile NAME] [--out DIR]
Equivalent, per workload: ipcluster-kit bench sweep primes --engines 2 --repeat 7 -b ipp-direct
     -b mp-pool -b process-pool --json results/sweep_primes.json --plot results/sweep_primes.png
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REFERENCES = ("ipp-direct", "mp-pool", "process-pool")
WORKLOADS = ("sum", "primes", "hetero", "user")
USER_FUNCTION, USER_ARGS = "sweep_tasks:walk", HERE / "sweep_tasks_args.json"


def summary_line(document: dict) -> dict:
    """The goals' figures of one sweep document."""
    s = document["summary"]
    auto, best = s["automatic"] or {}, s["best"] or {}
    refs = {r["backend"]: r["stats"]["median"] for r in document["references"] if r["status"] == "ok"}
    best_other = min(refs.items(), key=lambda kv: kv[1], default=(None, None))
    return {
        "workload": document["workload"]["name"],
        "best_chunksize": best.get("chunksize"), "best_seconds": best.get("seconds"),
        "auto_chunksize": auto.get("chunksize"), "auto_seconds": auto.get("seconds"),
        "auto_to_best": auto.get("ratio_to_best"), "predicted_seconds": auto.get("predicted_seconds"),
        "prediction_error": auto.get("prediction_error"),
        "best_other_backend": best_other[0], "best_other_seconds": best_other[1],
        "auto_to_best_other": auto["seconds"] / best_other[1] if best_other[1] and auto.get("seconds") else None,
        "serial_seconds": (document["serial"]["stats"] or {}).get("median"),
        "foreign_cpus_median": document["serial"].get("foreign_cpus_median"),
        "load_average": document["environment"]["load_average"],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", action="append", choices=WORKLOADS, help="repeatable; default: all four")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--points", type=int, default=10)
    parser.add_argument("--engines", type=int, default=2)
    parser.add_argument("--profile", default=None, help="use the cluster `ipcluster-kit up NAME` started")
    parser.add_argument("--out", default=str(HERE / "results"), help="directory of the results")
    args = parser.parse_args(argv)

    from ipcluster_kit import api
    from ipcluster_kit.bench import sweep, sweep_report
    from ipcluster_kit.errors import KitError
    from rich.console import Console
    from rich.markup import escape

    sys.path.insert(0, str(HERE))  # sweep_tasks, here and (through its module directory) on the engines
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    console = Console(highlight=False, width=200)
    lines = []
    for name in args.workload or WORKLOADS:
        user = name == "user"
        print(f"sweeping {name} (load average {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
        try:
            document = api.sweep(
                "primes" if user else name, function=USER_FUNCTION if user else None,
                args_file=USER_ARGS if user else None, points=args.points, backends=REFERENCES,
                repeat=args.repeat, warmup=args.warmup, engines=None if args.profile else args.engines,
                profile=args.profile, json_path=out / f"sweep_{name}.json", plot_path=out / f"sweep_{name}.png",
                command=[Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])],
            )  # fmt: skip
        except KitError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            raise SystemExit(exc.exit_code) from None
        console.print(sweep_report.table(document))
        for note in sweep_report.notes(document):
            console.print(f"• {escape(note)}", soft_wrap=True)
        for failed in sweep.failures(document):
            print(f"failed: {failed}", file=sys.stderr)
        lines.append(summary_line(document))
    import json

    (out / "sweep_summary.json").write_text(json.dumps({"benchmark": "sweep", "workloads": lines}, indent=2) + "\n")
    for line in lines:
        def pct(x: float | None) -> str:
            return "-" if x is None else f"{x:.3f}"

        console.print(f"{line['workload']:7s} best {line['best_chunksize']} {line['best_seconds']:.3f} s; auto"
                      f" {line['auto_chunksize']} {line['auto_seconds']:.3f} s (x{pct(line['auto_to_best'])} best);"
                      f" predicted {line['predicted_seconds']:.3f} s ({line['prediction_error']:+.1%});"
                      f" best other {line['best_other_backend']} {line['best_other_seconds']:.3f} s"
                      f" (auto x{pct(line['auto_to_best_other'])})")  # fmt: skip


if __name__ == "__main__":
    main()
