"""``ipcluster-kit bench [sum|primes|overhead|all]`` and ``bench compare A.json B.json``.

``bench`` is a group whose first argument is either a subcommand (``run``, ``compare``; room for
more) or a workload name: anything that is not a subcommand is handed to ``run``, so
``bench primes --quick`` means ``bench run primes --quick``. Everything heavy (ipyparallel,
matplotlib) is imported inside the commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List, Optional

import typer
from typer.core import TyperGroup

from ipcluster_kit.cli.render import console, err_console, print_json

DEFAULT_COMMAND = "run"


class _WorkloadFirstGroup(TyperGroup):
    """Routes ``bench WORKLOAD ...`` (or ``bench --quick ...``, or plain ``bench``) to ``bench run``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


bench_app = typer.Typer(
    cls=_WorkloadFirstGroup,
    help=(
        "Measure whether the cluster pays off: the same work serially, through ipyparallel's views, "
        "multiprocessing and concurrent.futures, verified and timed side by side. "
        "`bench WORKLOAD... [OPTIONS]` (WORKLOAD: sum, primes, overhead or all) is short for `bench run WORKLOAD...`."
    ),
    no_args_is_help=False,
)


class _NoBar:
    """Stands in for the progress bar when stderr is not a terminal (logs, tests): prints nothing."""

    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass

    def refresh(self) -> None:
        pass


def _progress_bar():
    if not err_console.is_terminal:
        return _NoBar()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # auto_refresh=False: no refresh thread competing for the GIL with the serial timings.
    return Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=err_console, transient=True, auto_refresh=False,
    )  # fmt: skip


@bench_app.command("run")
def run(
    workloads: Optional[List[str]] = typer.Argument(
        None, metavar="WORKLOAD", help="sum, primes, overhead or all (default: all); several may be given."
    ),
    profile: Optional[str] = typer.Option(
        None, "--profile", help="Run on the cluster `ipcluster-kit up NAME` started (default: a temporary local one)."
    ),
    ipython_dir: Optional[Path] = typer.Option(None, "--ipython-dir", help="IPython directory of --profile."),
    engines: Optional[int] = typer.Option(
        None, "--engines", help="Engines of the temporary cluster (default: CPU count), or how many of --profile's to use."
    ),
    repeat: int = typer.Option(5, "--repeat", help="Timed repeats per backend and workload (6+ for a true 95% interval)."),
    warmup: int = typer.Option(1, "--warmup", help="Untimed warm-up runs before the repeats (verified, discarded)."),
    backend: Optional[List[str]] = typer.Option(
        None, "--backend", "-b",
        help="Backend to run (repeatable; default: all). serial always runs. See `bench backends`.",
    ),  # fmt: skip
    json_file: Optional[Path] = typer.Option(None, "--json", help="Write the result document (JSON) to FILE."),
    plot_file: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG plot to FILE."),
    quick: bool = typer.Option(False, "--quick", help="Small workload sizes (seconds, for tests)."),
    scaling: bool = typer.Option(False, "--scaling", help="Also measure with 1..N-1 workers (for the plot)."),
    tasks: Optional[int] = typer.Option(None, "--tasks", help="Number of tasks of each workload."),
    sum_n: Optional[int] = typer.Option(None, "--sum-n", help="n of the sum workload's sum(range(n))."),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds one map call may take before it counts as failed."),
) -> None:
    """Run workloads on every backend, check results against serial, time them, report."""
    from ipcluster_kit.bench import results
    from ipcluster_kit.bench.runner import BenchConfig, failures, run_bench, validate
    from ipcluster_kit.errors import BadInput, KitError

    config = BenchConfig(
        workloads=workloads or ["all"], backends=backend or None, repeat=repeat, warmup=warmup, quick=quick,
        profile=profile, ipython_dir=str(ipython_dir) if ipython_dir else None, engines=engines,
        scaling=scaling, tasks=tasks, sum_n=sum_n, timeout=timeout, command=["ipcluster-kit", *sys.argv[1:]],
    )  # fmt: skip
    validate(config)
    if json_file is not None:
        results.check_writable(json_file, "--json")
    if plot_file is not None:
        if plot_file.suffix.lower() != ".png":
            raise BadInput(f"invalid --plot {str(plot_file)!r}: the plot is a PNG file, name it *.png")
        results.check_writable(plot_file, "--plot")

    with _progress_bar() as bar:
        task = bar.add_task("starting", total=None)

        def progress(description: str, done: int, total: int) -> None:
            if total:
                bar.update(task, description=description, completed=done, total=total)
            else:
                bar.update(task, description=description)
            bar.refresh()

        document = run_bench(config, progress=progress)

    from ipcluster_kit.bench import report

    console.print(report.table(document))
    from rich.markup import escape

    for note in report.explanations(document):
        console.print(f"• {escape(note)}", soft_wrap=True, highlight=False)
    if json_file is not None:
        results.write(json_file, document)
        console.print(f"result: {json_file}")
    if plot_file is not None:
        report.plot(document, plot_file)
        console.print(f"plot: {plot_file}")
    failed = failures(document)
    if failed:
        raise KitError(f"{len(failed)} backend run(s) failed; first: {failed[0]}")


@bench_app.command("compare")
def compare(
    a: str = typer.Argument(..., metavar="A.json", help="Result file A (the baseline)."),
    b: str = typer.Argument(..., metavar="B.json", help="Result file B."),
    json_output: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Print the ratios of two result files' median times (B / A) and speedups."""
    from ipcluster_kit.bench.compare import compare_files, table

    comparison = compare_files(a, b)
    if json_output:
        print_json(comparison)
        return
    console.print(table(comparison))
    for key, (va, vb) in comparison["environment_differences"].items():
        console.print(f"• {key}: A {va}, B {vb}", highlight=False, markup=False)


@bench_app.command("backends")
def backends(json_output: bool = typer.Option(False, "--json", help="Print the list as JSON.")) -> None:
    """List the backends and whether each can run here."""
    from ipcluster_kit.bench.backends import BACKENDS

    rows = []
    for name, cls in BACKENDS.items():
        reason = cls().unavailable_reason()
        rows.append({"name": name, "description": cls.description, "available": reason is None, "reason": reason})
    if json_output:
        print_json(rows)
        return
    from rich.table import Table

    t = Table("backend", "available", "what it runs")
    for row in rows:
        t.add_row(row["name"], "yes" if row["available"] else f"[red]no[/]: {row['reason']}", row["description"])
    console.print(t)


# Subcommands that live in modules of their own (each with ``register(bench_app)``), added when present.
OPTIONAL_SUBCOMMANDS = ("bench_schedulers",)


def register(app: typer.Typer) -> None:
    import importlib

    for name in OPTIONAL_SUBCOMMANDS:
        try:
            module = importlib.import_module(f"ipcluster_kit.cli.{name}")
        except ImportError:
            continue
        module.register(bench_app)
    app.add_typer(bench_app, name="bench")
