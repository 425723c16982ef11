"""``ipcluster-kit bench schedulers``: every task scheme and hwm on the same work, side by side.

Added to the ``bench`` group by ``register(bench_app)``. Everything heavy (ipyparallel,
matplotlib) is imported inside the command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List, Optional

import typer

from ipcluster_kit.cli.render import console, err_console

COMMAND_NAME = "schedulers"


def schedulers(
    workloads: Optional[List[str]] = typer.Argument(
        None, metavar="WORKLOAD", help="overhead (no-op throughput), hetero, sum, primes or all (default: all)."
    ),
    scheme: Optional[List[str]] = typer.Option(
        None, "--scheme", help="Scheme to run (repeatable; default: lru, leastload, weighted, plainrandom, twobin, pure)."
    ),
    hwm: Optional[List[int]] = typer.Option(
        None, "--hwm", help="High-water mark to run each Python scheme with (repeatable; default: 1 and 0). pure has none."
    ),
    engines: Optional[int] = typer.Option(None, "--engines", help="Engines of each temporary cluster (default: CPU count)."),
    repeat: Optional[int] = typer.Option(
        None, "--repeat", help="Timed repeats per combination and workload (default 5, --quick 3; 6+ for a true 95% interval)."
    ),
    warmup: Optional[int] = typer.Option(None, "--warmup", help="Untimed warm-up rounds (verified, discarded; default 1, --quick 0)."),
    quick: bool = typer.Option(False, "--quick", help="Small sizes, 3 repeats, no warm-up (under a minute on 2 cores)."),
    tasks: Optional[int] = typer.Option(None, "--tasks", help="Number of tasks of the overhead, sum and primes workloads."),
    sum_n: Optional[int] = typer.Option(None, "--sum-n", help="n of the sum workload's sum(range(n))."),
    hetero_tasks: Optional[int] = typer.Option(None, "--hetero-tasks", help="Number of heterogeneous tasks (default 80, --quick 10)."),
    hetero_mean: Optional[float] = typer.Option(
        None, "--hetero-mean", help="Mean duration of a heterogeneous task, in seconds (default 0.015, --quick 0.01)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the heterogeneous durations (the same list for every scheme)."),
    task_kind: str = typer.Option(
        "cpu", "--task-kind",
        help="Heterogeneous tasks burn CPU (cpu: fixed work, competes with the scheduler as real work does) or sleep"
             " (sleep: isolates the scheduler's decisions).",
    ),  # fmt: skip
    function: Optional[str] = typer.Option(
        None, "--function", help="Your own task function as module:function (importable here and on the engines)."
    ),
    args_file: Optional[Path] = typer.Option(
        None, "--args", help="Its arguments: a JSON list, or a .py file defining ARGS; one task per element."
    ),
    json_file: Optional[Path] = typer.Option(None, "--json", help="Write the result document (JSON) to FILE."),
    plot_file: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG plot to FILE."),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds one map call may take before it counts as failed."),
    cluster_timeout: float = typer.Option(120.0, "--cluster-timeout", help="Seconds each cluster may take to come up."),
) -> None:
    """Shoot-out of the task schedulers: every scheme and hwm on the same work, and a recommendation.

    Each combination gets its own local cluster; the scheme in use is read back from the controller.
    The recommendation per workload compares the best with ipyparallel's default (leastload, hwm=1)
    and calls it a tie when their intervals overlap.
    """
    from ipcluster_kit.bench import results
    from ipcluster_kit.bench import schedulers as sched
    from ipcluster_kit.errors import BadInput, KitError

    config = sched.ShootoutConfig(
        workloads=workloads or ["all"], schemes=scheme or None, hwms=hwm or None, engines=engines, repeat=repeat,
        warmup=warmup, quick=quick, tasks=tasks, sum_n=sum_n, hetero_tasks=hetero_tasks, hetero_mean=hetero_mean,
        seed=seed, task_kind=task_kind, function=function, args_file=str(args_file) if args_file else None,
        timeout=timeout, cluster_timeout=cluster_timeout, command=["ipcluster-kit", *sys.argv[1:]],
    )  # fmt: skip
    sched.validate(config)  # every value checked before the first cluster starts
    if json_file is not None:
        results.check_writable(json_file, "--json")
    if plot_file is not None:
        if plot_file.suffix.lower() != ".png":
            raise BadInput(f"invalid --plot {str(plot_file)!r}: the plot is a PNG file, name it *.png")
        results.check_writable(plot_file, "--plot")

    def progress(message: str) -> None:
        err_console.print(message, markup=False, highlight=False, soft_wrap=True)

    document = sched.run_shootout(config, progress=progress)

    from rich.markup import escape

    console.print(sched.table(document))
    for line in sched.lines(document):
        console.print(f"• {escape(line)}", soft_wrap=True, highlight=False)
    if json_file is not None:
        sched.write(json_file, document)
        console.print(f"result: {json_file}")
    if plot_file is not None:
        sched.plot(document, plot_file)
        console.print(f"plot: {plot_file}")
    failed = sched.failures(document)
    if failed:
        raise KitError(f"{len(failed)} combination/workload run(s) failed; first: {failed[0]}")


def register(bench_app: Any) -> None:
    """Add ``schedulers`` to the ``bench`` Typer group (once: calling it again changes nothing)."""
    registered = getattr(bench_app, "registered_commands", [])
    if any(getattr(c, "name", None) == COMMAND_NAME for c in registered):
        return
    bench_app.command(COMMAND_NAME)(schedulers)
