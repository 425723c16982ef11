"""``doctor`` and ``bootstrap``: engine hosts over SSH (checks, and adding engines to a running cluster).

Parse, call :mod:`ipcluster_kit.api`, render: the SSH settings and the state are the API's business.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ipcluster_kit.cli.render import console, err_console, print_json

IPYTHON_DIR = typer.Option(None, "--ipython-dir", help="IPython directory (default: $IPYTHONDIR, then ~/.ipython).")
HOSTS = typer.Option(None, "--host", help="\\[user@]host[:port][=N]; repeatable (default: the profile's hosts).")
SSH_CONFIG = typer.Option(
    None, "--ssh-config", help="OpenSSH client config file to use instead of ~/.ssh/config (like ssh -F); repeatable."
)
ACCEPT_NEW = typer.Option(
    False, "--accept-new-host-keys", help="Accept and record host keys never seen before (a changed key is still refused)."
)
REMOTE_PYTHON = typer.Option(None, "--remote-python", help="Python on the hosts (default: the profile's).")
CONNECT_TIMEOUT = typer.Option(None, "--connect-timeout", help="Seconds for each SSH connection (default: 10).")
JSON = typer.Option(False, "--json", help="Print the result as JSON.")


def doctor(
    name: str = typer.Argument(..., help="Profile name."),
    host: Optional[List[str]] = HOSTS,
    ssh_config: Optional[List[str]] = SSH_CONFIG,
    accept_new_host_keys: bool = ACCEPT_NEW,
    remote_python: Optional[str] = REMOTE_PYTHON,
    connect_timeout: Optional[float] = CONNECT_TIMEOUT,
    max_clock_skew: float = typer.Option(1.0, "--max-clock-skew", help="Seconds of clock skew tolerated."),
    ipython_dir: Optional[Path] = IPYTHON_DIR,
    json_output: bool = JSON,
) -> None:
    """Check every engine host: SSH, versions, connection file, controller ports from the host, clock."""
    from rich.table import Table

    from ipcluster_kit import api
    from ipcluster_kit.checks import FAIL
    from ipcluster_kit.errors import KitError

    checks = api.doctor(name, ipython_dir=ipython_dir, hosts=host, ssh_config=ssh_config,
                        accept_new_host_keys=accept_new_host_keys, remote_python=remote_python,
                        connect_timeout=connect_timeout, max_clock_skew=max_clock_skew)  # fmt: skip
    failed = [c for c in checks if c.status == FAIL]
    if json_output:
        print_json({"profile": name, "ok": not failed, "checks": [c.to_dict() for c in checks]})
    else:
        colour = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim"}
        table = Table("where", "check", "status", "detail")
        for c in checks:
            table.add_row(c.where, c.name, f"[{colour[c.status]}]{c.status}[/]", c.detail)
        console.print(table)
    if failed:
        raise KitError(f"doctor found {len(failed)} problem(s); first: {failed[0].where} {failed[0].name}: {failed[0].detail}")


def bootstrap(
    name: str = typer.Argument(..., help="Profile whose cluster is up (`ipcluster-kit up NAME`)."),
    host: Optional[List[str]] = HOSTS,
    ssh_config: Optional[List[str]] = SSH_CONFIG,
    accept_new_host_keys: bool = ACCEPT_NEW,
    remote_python: Optional[str] = REMOTE_PYTHON,
    connect_timeout: Optional[float] = CONNECT_TIMEOUT,
    timeout: float = typer.Option(60.0, help="Seconds for the hosts' bring-up and the engines' registration."),
    ipython_dir: Optional[Path] = IPYTHON_DIR,
    json_output: bool = JSON,
) -> None:
    """Start engines on remote hosts for a running cluster; return once they have registered."""
    from ipcluster_kit import api

    with err_console.status("starting remote engines") as spinner:
        record, engines = api.bootstrap(name, ipython_dir=ipython_dir, hosts=host, ssh_config=ssh_config,
                                        accept_new_host_keys=accept_new_host_keys, remote_python=remote_python,
                                        connect_timeout=connect_timeout, timeout=timeout,
                                        progress=lambda msg: spinner.update(msg))  # fmt: skip
    if json_output:
        print_json({"profile": name, "hosts": [h.to_dict() for h in record.hosts], "engines": engines})
        return
    for h in record.hosts:
        console.print(f"{h.host.label}: {len(h.engines)} engine(s) on {h.hostname}")
    console.print(f"Cluster [bold]{name}[/]: {engines} engine(s) registered.")


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
    app.command("bootstrap")(bootstrap)
