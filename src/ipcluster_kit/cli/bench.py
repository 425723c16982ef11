"""``ipcluster-kit bench [sum|primes|overhead|all]``, ``bench compare A.json B.json``, ``bench backends``.

``bench schemes`` (the shoot-out) lives in ``cli/bench_schemes.py``. ``bench`` is a group whose
first argument is either a subcommand (``run``, ``compare``, ...) or a workload name: anything that is not a subcommand is handed to ``run``, so
``bench primes --quick`` means ``bench run primes --quick``. Everything heavy (ipyparallel,
matplotlib) is imported inside the commands.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional

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


@contextlib.contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A Rich progress bar on a terminal (disabled, printing nothing, in logs and pipes), as the
    ``progress(description, done, total)`` callback the benchmarks report to."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # auto_refresh=False: no refresh thread competing for the GIL with the serial timings.
    with Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=err_console, transient=True, auto_refresh=False,
        disable=not err_console.is_terminal,
    ) as bar:  # fmt: skip
        task = bar.add_task("starting", total=None)

        def progress(description: str, done: int, total: int) -> None:
            bar.update(task, description=description, **({"completed": done, "total": total} if total else {}))
            bar.refresh()

        yield progress


def render_result(table: Any, lines: List[str], json_file: Optional[Path], plot_file: Optional[Path],
                  failed: List[str], what: str) -> None:  # fmt: skip
    """The table and the notes on stdout (unless the JSON goes there), and where the files went;
    then exit 1 with one line when ``failed`` lists failed runs (``what`` names them)."""
    from rich.markup import escape

    from ipcluster_kit.errors import KitError
    from ipcluster_kit.files import is_stdout

    out = err_console if any(p is not None and is_stdout(p) for p in (json_file, plot_file)) else console
    out.print(table)
    for line in lines:
        out.print(f"• {escape(line)}", soft_wrap=True, highlight=False)
    for label, path in (("result", json_file), ("plot", plot_file)):
        if path is not None and not is_stdout(path):
            out.print(f"{label}: {path}", highlight=False)
    if failed:
        raise KitError(f"{len(failed)} {what} failed; first: {failed[0]}")


JSON_OPTION = typer.Option(None, "--json", help="Write the result document (JSON) to FILE (- for standard output).")
PLOT_OPTION = typer.Option(None, "--plot", help="Write a PNG plot to FILE.")
PROFILE_OPTION = typer.Option(
    None, "--profile", help="Run on the cluster `ipcluster-kit up NAME` started (default: a temporary local one)."
)
IPYTHON_DIR_OPTION = typer.Option(None, "--ipython-dir", help="IPython directory of --profile.")
ENGINES_OPTION = typer.Option(
    None, "--engines", help="Engines of the temporary cluster (default: CPU count), or how many of --profile's to use."
)
SUM_N_OPTION = typer.Option(None, "--sum-n", help="n of the sum workload's sum(range(n)).")
TIMEOUT_OPTION = typer.Option(600.0, "--timeout", help="Seconds one map call may take before it counts as failed.")
HETERO_MEAN_OPTION = typer.Option(
    None, "--hetero-mean", help="Mean duration of a heterogeneous task, in seconds (default 0.015, --quick 0.01)."
)
FUNCTION_OPTION = typer.Option(
    None, "--function", help="Your own task function as module:function (importable here and on the engines)."
)
ARGS_OPTION = typer.Option(None, "--args", help="Its arguments: a JSON list, or a .py file defining ARGS; one task per element.")


@bench_app.command("run")
def run(
    workloads: Optional[List[str]] = typer.Argument(
        None, metavar="WORKLOAD", help="sum, primes, overhead or all (default: all); several may be given."
    ),
    profile: Optional[str] = PROFILE_OPTION,
    ipython_dir: Optional[Path] = IPYTHON_DIR_OPTION,
    engines: Optional[int] = ENGINES_OPTION,
    repeat: int = typer.Option(5, "--repeat", help="Timed repeats per backend and workload (6+ for a true 95% interval)."),
    warmup: int = typer.Option(1, "--warmup", help="Untimed warm-up runs before the repeats (verified, discarded)."),
    backend: Optional[List[str]] = typer.Option(
        None, "--backend", "-b",
        help="Backend to run (repeatable; default: all). serial always runs. See `bench backends`.",
    ),  # fmt: skip
    json_file: Optional[Path] = JSON_OPTION,
    plot_file: Optional[Path] = PLOT_OPTION,
    quick: bool = typer.Option(False, "--quick", help="Small workload sizes (seconds, for tests)."),
    scaling: bool = typer.Option(False, "--scaling", help="Also measure with 1..N-1 workers (for the plot)."),
    tasks: Optional[int] = typer.Option(None, "--tasks", help="Number of tasks of each workload."),
    sum_n: Optional[int] = SUM_N_OPTION,
    timeout: float = TIMEOUT_OPTION,
) -> None:
    """Run workloads on every backend, check results against serial, time them, report."""
    from ipcluster_kit import api
    from ipcluster_kit.bench import report
    from ipcluster_kit.bench.runner import failures

    with progress_bar() as progress:
        document = api.bench(
            workloads or ["all"], backends=backend, repeat=repeat, warmup=warmup, quick=quick, profile=profile,
            ipython_dir=ipython_dir, engines=engines, scaling=scaling, tasks=tasks, sum_n=sum_n, timeout=timeout,
            json_path=json_file, plot_path=plot_file, command=["ipcluster-kit", *sys.argv[1:]], progress=progress,
        )  # fmt: skip
    render_result(report.table(document), report.explanations(document), json_file, plot_file, failures(document),
                  "backend run(s)")  # fmt: skip


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


def register(app: typer.Typer) -> None:
    from ipcluster_kit.cli import bench_schemes, bench_sweep

    bench_schemes.register(bench_app)
    bench_sweep.register(bench_app)
    app.add_typer(bench_app, name="bench")
