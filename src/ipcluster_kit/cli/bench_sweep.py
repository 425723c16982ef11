"""``ipcluster-kit bench sweep``: one workload through load_balanced_view().map at many chunk sizes.

Added to the ``bench`` group by ``register(bench_app)``. Everything heavy (ipyparallel, matplotlib)
is imported inside the command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List, Optional

import typer

from ipcluster_kit.cli.bench import (
    ARGS_OPTION, ENGINES_OPTION, FUNCTION_OPTION, HETERO_MEAN_OPTION, IPYTHON_DIR_OPTION, JSON_OPTION, PLOT_OPTION,
    PROFILE_OPTION, SUM_N_OPTION, TIMEOUT_OPTION, progress_bar, render_result,
)

COMMAND_NAME = "sweep"


def _parse_chunks(text: Optional[str]) -> Optional[List[int]]:
    from ipcluster_kit.errors import BadInput

    if text is None:
        return None
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes:
        raise BadInput(f"invalid --chunks {text!r}: expected chunk sizes separated by commas, e.g. 1,4,16")
    return sizes


def sweep(
    workload: str = typer.Argument("primes", metavar="WORKLOAD", help="sum, primes or hetero (ignored with --function)."),
    chunks: Optional[str] = typer.Option(
        None, "--chunks", help="Chunk sizes to sweep, separated by commas (default: --points sizes from 1 to one chunk per engine)."
    ),
    points: int = typer.Option(10, "--points", help="How many chunk sizes to sweep, spread on a log scale (2-60)."),
    backend: Optional[List[str]] = typer.Option(
        None, "--backend", "-b", help="Another backend to measure in the same rounds, drawn as a reference (repeatable)."
    ),
    profile: Optional[str] = PROFILE_OPTION,
    ipython_dir: Optional[Path] = IPYTHON_DIR_OPTION,
    engines: Optional[int] = ENGINES_OPTION,
    repeat: int = typer.Option(5, "--repeat", help="Timed repeats per chunk size (6+ for a true 95% interval)."),
    warmup: int = typer.Option(1, "--warmup", help="Untimed warm-up runs before the repeats (verified, discarded)."),
    quick: bool = typer.Option(False, "--quick", help="Small workload sizes (seconds, for tests)."),
    tasks: Optional[int] = typer.Option(None, "--tasks", help="Number of tasks of the workload."),
    sum_n: Optional[int] = SUM_N_OPTION,
    hetero_mean: Optional[float] = HETERO_MEAN_OPTION,
    seed: int = typer.Option(0, "--seed", help="Seed of the heterogeneous durations."),
    task_kind: str = typer.Option("cpu", "--task-kind", help="Heterogeneous tasks burn CPU (cpu) or sleep (sleep)."),
    function: Optional[str] = FUNCTION_OPTION,
    args_file: Optional[Path] = ARGS_OPTION,
    json_file: Optional[Path] = JSON_OPTION,
    plot_file: Optional[Path] = PLOT_OPTION,
    timeout: float = TIMEOUT_OPTION,
) -> None:
    """Measure one workload at chunk sizes from 1 to one chunk per engine, against the chunk model.

    Every size runs in the same interleaved rounds as the serial loop, each result checked before
    its time counts; beside each measured time stands the model's prediction, and the automatic
    chunk size (what ipp-lbv-auto would use) is marked. The plot draws speedup against chunk size.
    """
    from ipcluster_kit import api
    from ipcluster_kit.bench import sweep as sweep_module
    from ipcluster_kit.bench import sweep_report

    with progress_bar() as progress:
        document = api.sweep(
            workload, chunks=_parse_chunks(chunks), points=points, backends=backend or (), profile=profile,
            ipython_dir=ipython_dir, engines=engines, repeat=repeat, warmup=warmup, quick=quick, tasks=tasks,
            sum_n=sum_n, hetero_mean=hetero_mean, seed=seed, task_kind=task_kind, function=function, args_file=args_file,
            timeout=timeout, json_path=json_file, plot_path=plot_file, command=["ipcluster-kit", *sys.argv[1:]],
            progress=progress,
        )  # fmt: skip
    render_result(sweep_report.table(document), sweep_report.notes(document), json_file, plot_file,
                  sweep_module.failures(document), "run(s)")  # fmt: skip


def register(bench_app: Any) -> None:
    """Add ``sweep`` to the ``bench`` group, once."""
    registered = {getattr(c, "name", None) for c in getattr(bench_app, "registered_commands", [])}
    if COMMAND_NAME not in registered:
        bench_app.command(COMMAND_NAME)(sweep)
