"""``ipcluster-kit bench schemes``: every task scheme and hwm on the same work, side by side.

Added to the ``bench`` group by ``register(bench_app)``, with ``bench schedulers`` (its former
name) as a hidden alias. Everything heavy (ipyparallel, matplotlib) is imported inside the command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List, Optional

import typer

from ipcluster_kit.cli.bench import (
    ARGS_OPTION, FUNCTION_OPTION, HETERO_MEAN_OPTION, JSON_OPTION, PLOT_OPTION, SUM_N_OPTION, TIMEOUT_OPTION, render_result,
)
from ipcluster_kit.cli.render import err_console

COMMAND_NAME = "schemes"
ALIAS = "schedulers"  # the command's former name, still accepted


def schemes(
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
    sum_n: Optional[int] = SUM_N_OPTION,
    hetero_tasks: Optional[int] = typer.Option(None, "--hetero-tasks", help="Number of heterogeneous tasks (default 80, --quick 10)."),
    hetero_mean: Optional[float] = HETERO_MEAN_OPTION,
    seed: int = typer.Option(0, "--seed", help="Seed of the heterogeneous durations (the same list for every scheme)."),
    task_kind: str = typer.Option(
        "cpu", "--task-kind",
        help="Heterogeneous tasks burn CPU (cpu: fixed work, competes with the scheduler as real work does) or sleep"
             " (sleep: isolates the scheduler's decisions).",
    ),  # fmt: skip
    function: Optional[str] = FUNCTION_OPTION,
    args_file: Optional[Path] = ARGS_OPTION,
    json_file: Optional[Path] = JSON_OPTION,
    plot_file: Optional[Path] = PLOT_OPTION,
    timeout: float = TIMEOUT_OPTION,
    cluster_timeout: float = typer.Option(120.0, "--cluster-timeout", help="Seconds each cluster may take to come up."),
) -> None:
    """Shoot-out of the task schemes: every scheme and hwm on the same work, and a recommendation.

    Each combination gets its own local cluster; the scheme in use is read back from the controller.
    The recommendation per workload compares the best with ipyparallel's default (leastload, hwm=1)
    and calls it a tie when their intervals overlap; when it is pure, it says what pure gives up.
    """
    from ipcluster_kit import api
    from ipcluster_kit.bench.shootout import report
    from ipcluster_kit.bench.shootout.recommend import failures

    def progress(message: str) -> None:
        err_console.print(message, markup=False, highlight=False, soft_wrap=True)

    document = api.shootout(
        workloads or ["all"], schemes=scheme, hwms=hwm, engines=engines, repeat=repeat, warmup=warmup, quick=quick,
        tasks=tasks, sum_n=sum_n, hetero_tasks=hetero_tasks, hetero_mean=hetero_mean, seed=seed, task_kind=task_kind,
        function=function, args_file=args_file, timeout=timeout, cluster_timeout=cluster_timeout,
        json_path=json_file, plot_path=plot_file, command=["ipcluster-kit", *sys.argv[1:]], progress=progress,
    )  # fmt: skip
    render_result(report.table(document), report.lines(document), json_file, plot_file, failures(document),
                  "combination/workload run(s)")  # fmt: skip


def register(bench_app: Any) -> None:
    """Add ``schemes`` (and the hidden alias ``schedulers``) to the ``bench`` group, once."""
    registered = {getattr(c, "name", None) for c in getattr(bench_app, "registered_commands", [])}
    if COMMAND_NAME not in registered:
        bench_app.command(COMMAND_NAME)(schemes)
        bench_app.command(ALIAS, hidden=True)(schemes)
