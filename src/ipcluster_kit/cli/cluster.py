"""``up``, ``status`` and ``down``: local cluster control on a profile."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ipcluster_kit.cli.render import console, err_console, print_json, warn

IPYTHON_DIR = typer.Option(None, "--ipython-dir", help="IPython directory (default: $IPYTHONDIR, then ~/.ipython).")


def up(
    name: str = typer.Argument(..., help="Profile made by `ipcluster-kit init`."),
    engines: Optional[int] = typer.Option(None, help="Local engines to start (default: the profile's count)."),
    timeout: float = typer.Option(60.0, help="Seconds to wait for every engine to register."),
    min_engines: Optional[int] = typer.Option(None, help="With remote hosts: succeed when at least this many engines came up."),
    ssh_config: Optional[List[str]] = typer.Option(None, "--ssh-config", help="OpenSSH client config (like ssh -F); repeatable."),
    accept_new_host_keys: bool = typer.Option(False, help="Accept and record host keys never seen before (a changed key is still refused)."),
    ipython_dir: Optional[Path] = IPYTHON_DIR,
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Start the controller and engines (local, and on the profile's hosts over SSH); return once all have registered."""
    from ipcluster_kit.cluster.local import up as start

    with err_console.status("starting cluster") as spinner:
        cluster, started = start(name, ipython_dir, engines=engines, timeout=timeout, min_engines=min_engines,
                                 ssh_config=ssh_config, accept_new_host_keys=accept_new_host_keys,
                                 progress=lambda msg: spinner.update(msg))  # fmt: skip
    for warning in cluster.warnings:
        warn(warning)
    if json_output:
        print_json({"profile": name, "already_up": not started, "engines": cluster.engines, "scheme": cluster.scheme,
                    "hosts": cluster.hosts, "bringup_seconds": cluster.bringup_seconds,
                    "client_file": str(cluster.client_file), "warnings": cluster.warnings})  # fmt: skip
        return
    if not started:
        console.print(f"Cluster [bold]{name}[/] is already up ({cluster.engines} engines, scheme {cluster.scheme}).")
        return
    console.print(f"Cluster [bold]{name}[/] is up: {cluster.engines} engine(s) registered in "
                  f"{cluster.bringup_seconds:.1f} s, scheme {cluster.scheme}.")  # fmt: skip
    console.print(f"Connect with: ipp.Client(profile_dir={str(cluster.profile_dir)!r})  |  stop: ipcluster-kit down {name}")


def status(
    name: str = typer.Argument(..., help="Profile name."),
    ipython_dir: Optional[Path] = IPYTHON_DIR,
    json_output: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Show the controller, the engines (per host) and the scheme of a profile's cluster."""
    from rich.table import Table

    from ipcluster_kit.cluster.local import status as get_status

    info = get_status(name, ipython_dir)
    if json_output:
        print_json(info)
        return
    state = "[green]up[/]" if info["up"] else "[red]down[/]"
    console.print(f"Cluster [bold]{name}[/]: {state}, scheme {info['scheme']}, "
                  f"{info['registered_engines'] if info['registered_engines'] is not None else '-'} of "
                  f"{info['expected_engines']} engines registered")  # fmt: skip
    if info.get("controller_error"):
        console.print(f"[yellow]controller did not answer:[/] {info['controller_error']}")
    table = Table("role", "host", "pid", "running", "log")
    if info["controller"]:
        c = info["controller"]
        table.add_row("controller", "localhost", str(c["pid"]), _yes(c["running"]), c["log"])
    for e in info["engines"]:
        table.add_row("engine", e["host"], str(e["pid"]), _yes(e["running"]), e.get("log", ""))
    if info["controller"] or info["engines"]:
        console.print(table)


def _yes(flag: bool) -> str:
    return "[green]yes[/]" if flag else "[red]no[/]"


def down(
    name: str = typer.Argument(..., help="Profile name."),
    ipython_dir: Optional[Path] = IPYTHON_DIR,
    json_output: bool = typer.Option(False, "--json", help="Print what was stopped as JSON."),
) -> None:
    """Stop everything `up` started for the profile, by PID."""
    from ipcluster_kit.cluster.local import down as stop

    report = stop(name, ipython_dir)
    if json_output:
        print_json(report)
        return
    if not report["was_up"]:
        console.print(f"Cluster [bold]{name}[/] was not up; nothing to stop.")
        return
    remote = f", {report['remote_engines_stopped']} remote engine(s)" if report.get("remote_engines_stopped") else ""
    console.print(f"Cluster [bold]{name}[/] stopped: controller{'' if report['controller_stopped'] else ' (already gone)'}, "
                  f"{report['engines_stopped']} local engine(s){remote}.")  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("status")(status)
    app.command("down")(down)
