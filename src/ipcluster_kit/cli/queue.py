"""``ipcluster-kit queue serve|produce|work|collect|status``: the multiprocessing.managers job queue."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from ipcluster_kit.cli.render import console, err_console, print_json, warn

queue_app = typer.Typer(
    help="A job queue over TCP with multiprocessing.managers: serve, produce, work (on any host), collect.",
    no_args_is_help=True,
)

DEFAULT_ADDRESS = "127.0.0.1:50000"
ADDRESS_ENV = "IPCK_QUEUE_ADDRESS"

ADDRESS = typer.Option(
    DEFAULT_ADDRESS, "--address", "-a", envvar=ADDRESS_ENV,
    help=f"Server address HOST:PORT (env {ADDRESS_ENV}).",
)  # fmt: skip
KEY_FILE = typer.Option(
    None, "--key-file",
    help="Key file (default: $IPCK_QUEUE_AUTHKEY, then $IPCK_QUEUE_KEY_FILE, then ~/.ipcluster-kit/queue.key).",
)  # fmt: skip


def _address(text: str, *, listen: bool = False) -> tuple[str, int]:
    from ipcluster_kit.mqueue.net import parse_address

    return parse_address(text, listen=listen)


def _key(key_file: Optional[Path], create: bool = False) -> Any:
    from ipcluster_kit.mqueue.authkey import load_authkey

    return load_authkey(key_file, create=create)


def _log_refusals_on_stderr() -> None:
    """The server logs refused connections (wrong key, garbage); a server's log is its stderr."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s queue server: %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger = logging.getLogger("ipcluster_kit.mqueue.server")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


@queue_app.command("serve")
def serve(
    address: str = ADDRESS,
    key_file: Optional[Path] = KEY_FILE,
    task: str = typer.Option(
        "ipcluster_kit.bench.workloads:nth_prime", help="Default task module:function for jobs produced without --task."
    ),
    lease_timeout: float = typer.Option(
        30.0, help="Seconds without a heartbeat after which a worker's jobs go back to the queue."
    ),
    until_drained: bool = typer.Option(
        False, "--until-drained", help="Exit once the queue is closed, every job has a result and it was collected."
    ),
    grace: float = typer.Option(2.0, help="Seconds to let workers leave when stopping."),
) -> None:
    """Serve a job queue and a result store until stopped (Ctrl-C, SIGTERM) or drained."""
    from ipcluster_kit.mqueue.authkey import save_new_key
    from ipcluster_kit.mqueue.server import QueueServer, check_server_options
    from ipcluster_kit.mqueue.tasks import check_task

    addr = _address(address, listen=True)
    check_task(task)
    lease_timeout, grace = check_server_options(lease_timeout, grace)

    key = _key(key_file, create=True)
    server = QueueServer(addr, key.key, lease_timeout=lease_timeout, default_task=task)  # binds the port
    save_new_key(key)
    if key.created:
        err_console.print(f"created key file {key.path} (0600): copy it to every worker host", soft_wrap=True)
    else:
        err_console.print(f"using the key from {key.source}", soft_wrap=True)
    if addr[0] not in ("127.0.0.1", "localhost", "::1"):
        warn(
            f"listening on {addr[0]}: anyone who can reach this port and holds the key can run code here "
            "(jobs are pickles); traffic is authenticated, not encrypted"
        )

    _log_refusals_on_stderr()

    def ready(srv: QueueServer) -> None:
        # The one line scripts wait for: plain print, flushed.
        print(f"queue server listening on {srv.where}", flush=True)

    reason = server.run(until_drained=until_drained, grace=grace, on_ready=ready)
    stats = server.broker.stats()
    err_console.print(
        f"stopped: {reason}; {stats['submitted']} jobs, {stats['done']} done ({stats['failed']} failed), "
        f"{stats['requeued']} requeued, {stats['duplicates']} duplicate results discarded",
        soft_wrap=True,
    )


@queue_app.command("produce")
def produce(
    address: str = ADDRESS,
    key_file: Optional[Path] = KEY_FILE,
    count: Optional[int] = typer.Option(None, help="Submit jobs with arguments START..START+COUNT-1."),
    start: int = typer.Option(0, help="First argument with --count."),
    from_file: Optional[Path] = typer.Option(None, "--from-file", help="JSON file with a list of arguments, one job each."),
    task: Optional[str] = typer.Option(None, help="module:function the jobs run (default: the server's --task)."),
    keep_open: bool = typer.Option(False, "--keep-open", help="Do not close the queue (more producers will follow)."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Put jobs on the queue, then close it (so workers know when the work is done)."""
    from ipcluster_kit.errors import BadInput
    from ipcluster_kit.mqueue.producer import job_range, load_jobs_file, submit
    from ipcluster_kit.mqueue.tasks import check_task

    addr = _address(address)
    if (count is None) == (from_file is None):
        raise BadInput("give exactly one of --count N or --from-file PATH")
    if task is not None:
        check_task(task)
    args = job_range(start, count) if count is not None else load_jobs_file(from_file)
    key = _key(key_file)
    result = submit(addr, key.key, args, task=task, close=not keep_open)
    if json_output:
        print_json({"address": address, "first_job": result.first_id, "submitted": result.count,
                    "closed": not keep_open, "total_jobs": result.total})  # fmt: skip
        return
    ids = f"ids {result.first_id}..{result.first_id + result.count - 1}" if result.count else "no jobs"
    closed = f"queue closed ({result.total} jobs in all)" if not keep_open else "queue left open"
    console.print(f"submitted {result.count} jobs ({ids}) to {address}; {closed}", soft_wrap=True)


@queue_app.command("work")
def work(
    address: str = ADDRESS,
    key_file: Optional[Path] = KEY_FILE,
    processes: int = typer.Option(1, "--processes", "-p", help="Worker processes on this host (one per CPU)."),
    batch: int = typer.Option(1, help="Jobs leased per round trip (more: less overhead for tiny jobs)."),
    poll: float = typer.Option(1.0, help="Seconds each request for work waits in the server.", hidden=True),
) -> None:
    """Get a job, compute it, put the result back; exit 0 when the server says the work is done."""
    from ipcluster_kit.mqueue.worker import check_worker_options, run_workers

    addr = _address(address)
    processes, batch, poll = check_worker_options(processes, batch, poll)
    key = _key(key_file)
    report = run_workers(addr, key.key, processes=processes, batch=batch, poll=poll)
    failed = f" ({report.failed} failed)" if report.failed else ""
    console.print(
        f"work done: {report.jobs} jobs{failed} in {report.seconds:.1f} s by {report.processes} process(es)",
        soft_wrap=True,
    )


@queue_app.command("collect")
def collect(
    address: str = ADDRESS,
    key_file: Optional[Path] = KEY_FILE,
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document at the end instead of lines."),
    timeout: Optional[float] = typer.Option(None, help="Give up after this many seconds (default: wait for all)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr (terminals only)."),
) -> None:
    """Gather every result in job order: one JSON value per line on stdout, or --json at the end."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ipcluster_kit.errors import KitError
    from ipcluster_kit.mqueue.collect import check_timeout
    from ipcluster_kit.mqueue.collect import collect as gather

    addr = _address(address)
    timeout = check_timeout(timeout)
    key = _key(key_file)

    def emit(job_id: int, ok: bool, value: Any) -> None:
        if not json_output:
            sys.stdout.write((json.dumps(value, default=repr) if ok else "null") + "\n")

    bar = Progress(
        TextColumn("collect"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, disable=not (progress and err_console.is_terminal),
        redirect_stdout=False, redirect_stderr=False,
    )  # fmt: skip
    with bar:
        bar_task = bar.add_task("results", total=None)

        def on_progress(p: Any) -> None:
            bar.update(bar_task, completed=p.done, total=p.submitted if p.submitted else None)

        result = gather(addr, key.key, timeout=timeout, on_result=emit, on_progress=on_progress)
    sys.stdout.flush()
    stats = result.stats
    if json_output:
        print_json({
            "address": address, "count": len(result.values), "results": result.values,
            "errors": [{"job": j, "error": e} for j, e in sorted(result.errors.items())],
            "stats": stats,
        })  # fmt: skip
    else:
        err_console.print(
            f"collected {len(result.values)} results; {stats.get('requeued', 0)} jobs requeued, "
            f"{stats.get('duplicates', 0)} duplicate results discarded",
            soft_wrap=True,
        )
    if result.errors:
        job, error = min(result.errors.items())
        raise KitError(f"{len(result.errors)} of {len(result.values)} jobs failed; first, job {job}: {error}")


@queue_app.command("status")
def status(
    address: str = ADDRESS,
    key_file: Optional[Path] = KEY_FILE,
    json_output: bool = typer.Option(False, "--json", help="Print the counters as JSON."),
) -> None:
    """Show the server's counters: jobs submitted, pending, leased, done, requeued; workers."""
    from ipcluster_kit.mqueue.collect import status as get_status

    addr = _address(address)
    stats = get_status(addr, _key(key_file).key)
    if json_output:
        print_json(stats)
        return
    w = stats["workers"]
    console.print(
        f"{address}: {stats['submitted']} jobs ({'closed' if stats['closed'] else 'open'}), "
        f"{stats['pending']} pending, {stats['leased']} leased, {stats['done']} done ({stats['failed']} failed), "
        f"{stats['requeued']} requeued, {stats['duplicates']} duplicates discarded; "
        f"workers: {w['active']} active, {w['lost']} lost, {w['disconnected']} disconnected, {w['left']} left",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(queue_app, name="queue")
