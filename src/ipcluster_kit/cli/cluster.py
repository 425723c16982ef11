"""``up``, ``status`` and ``down``: cluster control on a profile (parse, call :mod:`ipcluster_kit.api`, render)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ipcluster_kit.cli.cluster_render import down_summary, engine_set_lines
from ipcluster_kit.cli.render import console, err_console, print_json, warn

IPYTHON_DIR = typer.Option(None, "--ipython-dir", help="IPython directory (default: $IPYTHONDIR, then ~/.ipython).")


def up(
    name: str = typer.Argument(..., help="Profile made by `ipcluster-kit init`."),
    engines: Optional[int] = typer.Option(None, help="Local engines to start (default: the profile's count)."),
    timeout: float = typer.Option(60.0, help="Seconds to wait for every engine to register."),
    min_engines: Optional[int] = typer.Option(None, help="Succeed when at least this many engines registered (once others failed, or at the deadline), with a warning naming what is missing."),
    ssh_config: Optional[List[str]] = typer.Option(None, "--ssh-config", help="OpenSSH client config (like ssh -F); repeatable."),
    accept_new_host_keys: bool = typer.Option(False, help="Accept and record host keys never seen before (a changed key is still refused)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the exact commands and job scripts; start nothing."),
    ipython_dir: Optional[Path] = IPYTHON_DIR,
    json_output: bool = typer.Option(False, "--json", help="Print the result (with the bring-up timeline) as JSON."),
) -> None:
    """Start the controller and the engines (here, on SSH hosts, in an MPI world or a Slurm job); return once all have registered."""
    from ipcluster_kit import api

    if dry_run:
        _render_preview(api.preview_up(name, ipython_dir=ipython_dir, engines=engines, ssh_config=ssh_config,
                                       accept_new_host_keys=accept_new_host_keys), json_output)  # fmt: skip
        return
    with err_console.status("starting cluster") as spinner:
        cluster, started = api.up(name, ipython_dir=ipython_dir, engines=engines, timeout=timeout, min_engines=min_engines,
                                  ssh_config=ssh_config, accept_new_host_keys=accept_new_host_keys,
                                  progress=lambda msg: spinner.update(msg))  # fmt: skip
    for warning in cluster.warnings:
        warn(warning)
    if json_output:
        print_json({"profile": name, "already_up": not started, "engines": cluster.engines, "scheme": cluster.scheme,
                    "hosts": cluster.hosts, "bringup_seconds": cluster.bringup_seconds,
                    "client_file": str(cluster.client_file), "warnings": cluster.warnings,
                    "timeline": cluster.timeline})  # fmt: skip
        return
    if not started:
        console.print(f"Cluster [bold]{name}[/] is already up ({cluster.engines} engines, scheme {cluster.scheme}).")
        return
    console.print(f"Cluster [bold]{name}[/] is up: {cluster.engines} engine(s) registered in "
                  f"{cluster.bringup_seconds:.1f} s, scheme {cluster.scheme}.")  # fmt: skip
    console.print(f"Connect with: ipp.Client(profile_dir={str(cluster.profile_dir)!r})  |  stop: ipcluster-kit down {name}")


def _render_preview(plan: dict, json_output: bool) -> None:
    if json_output:
        print_json(plan)
        return
    console.print(f"[bold]controller[/] (this machine):\n  {plan['controller']}", highlight=False, soft_wrap=True)
    for engine_set in plan["engine_sets"]:
        for item in engine_set["run"]:
            console.print(f"[bold]{item['title']}[/]:", highlight=False, soft_wrap=True)
            console.print("\n".join(f"  {line}" for line in item["text"].splitlines()), highlight=False, markup=False,
                          soft_wrap=True)  # fmt: skip
    console.print("Nothing was started (--dry-run).")


def status(
    name: str = typer.Argument(..., help="Profile name."),
    ipython_dir: Optional[Path] = IPYTHON_DIR,
    json_output: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Show the controller, the engines (per host, PID or MPI rank) and the scheme of a profile's cluster."""
    from rich.table import Table

    from ipcluster_kit import api

    info = api.status(name, ipython_dir=ipython_dir)
    if json_output:
        print_json(info)
        return
    state = "[green]up[/]" if info["up"] else "[red]down[/]"
    registered = info["registered_engines"] if info["registered_engines"] is not None else "-"
    console.print(f"Cluster [bold]{name}[/]: {state}, scheme {info['scheme']}, {registered} of {info['expected_engines']} engines registered")
    if info.get("controller_error"):
        console.print(f"[yellow]controller did not answer:[/] {info['controller_error']}")
    for line in engine_set_lines(info):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    table = Table("role", "host", "pid", "rank", "running", "log")
    if info["controller"]:
        c = info["controller"]
        table.add_row("controller", "localhost", str(c["pid"]), "", _yes(c["running"]), c["log"])
    for e in info["engines"]:
        table.add_row(f"engine ({e['kind']})", e["host"], str(e.get("pid", "")), str(e.get("rank", "")), _yes(e["running"]),
                      e.get("error") or e.get("log", ""))  # fmt: skip
    if info["controller"] or info["engines"]:
        console.print(table)


def _yes(flag: bool) -> str:
    return "[green]yes[/]" if flag else "[red]no[/]"


def down(
    name: str = typer.Argument(..., help="Profile name."),
    force: bool = typer.Option(False, "--force", help="Also without a (readable) state file: stop every process whose command line names the profile directory."),
    timeout: float = typer.Option(10.0, help="Seconds each process gets to stop after SIGTERM before SIGKILL, and a cancelled Slurm job to leave squeue (longer while Slurm may not yet know that a node stopped answering: bounded by its KillWait + SlurmdTimeout + 2 x MessageTimeout)."),
    ipython_dir: Optional[Path] = IPYTHON_DIR,
    json_output: bool = typer.Option(False, "--json", help="Print what was stopped as JSON."),
) -> None:
    """Stop everything of the profile's cluster (by PID, process group, and profile directory) and list it.

    A cancelled Slurm job still COMPLETING only on nodes that no longer answer is left to Slurm, which ends it when they answer again or are marked down: a warning names it, and the exit status is 0.
    """
    from ipcluster_kit import api

    report = api.down(name, ipython_dir=ipython_dir, timeout=timeout, force=force)
    if json_output:
        print_json(report)
        return
    if not report["was_up"]:
        console.print(f"Cluster [bold]{name}[/] was not up; nothing to stop.")
        return
    console.print(down_summary(name, report), soft_wrap=True)
    for entry in report["pending"]:
        warn(entry["note"])


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("status")(status)
    app.command("down")(down)
