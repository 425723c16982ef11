"""``doctor`` and ``bootstrap``: engine hosts over SSH (checks, and adding engines to a running cluster)."""

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
CONNECT_TIMEOUT = typer.Option(10.0, "--connect-timeout", help="Seconds for each SSH connection.")
JSON = typer.Option(False, "--json", help="Print the result as JSON.")


def _context(name, ipython_dir, host, ssh_config, accept_new_host_keys, connect_timeout):
    from ipcluster_kit.errors import BadInput
    from ipcluster_kit.profile.store import read_spec
    from ipcluster_kit.remote.glue import ssh_options_for
    from ipcluster_kit.remote.hosts import parse_hosts
    from ipcluster_kit.remote.ssh import SSHOptions

    spec, profile_dir = read_spec(name, ipython_dir)
    hosts = parse_hosts(host) if host else list(spec.hosts)
    if not hosts:
        raise BadInput(f"profile {name!r} has no remote hosts; pass --host [user@]host[:port][=N]")
    if ssh_config or accept_new_host_keys or connect_timeout != 10.0:
        configs = ssh_config or getattr(spec, "ssh_config", None) or None
        options = SSHOptions.build(configs, accept_new_host_keys=accept_new_host_keys, connect_timeout=connect_timeout)
    else:
        options = ssh_options_for(spec)
    return spec, profile_dir, hosts, options


def doctor(
    name: str = typer.Argument(..., help="Profile name."),
    host: Optional[List[str]] = HOSTS,
    ssh_config: Optional[List[Path]] = SSH_CONFIG,
    accept_new_host_keys: bool = ACCEPT_NEW,
    remote_python: Optional[str] = REMOTE_PYTHON,
    connect_timeout: float = CONNECT_TIMEOUT,
    max_clock_skew: float = typer.Option(1.0, "--max-clock-skew", help="Seconds of clock skew tolerated."),
    ipython_dir: Optional[Path] = IPYTHON_DIR,
    json_output: bool = JSON,
) -> None:
    """Check every engine host: SSH, versions, connection file, controller ports from the host, clock."""
    from rich.table import Table

    from ipcluster_kit.errors import KitError
    from ipcluster_kit.remote.doctor import FAIL, diagnose
    from ipcluster_kit.remote.glue import ENGINE_FILE, remote_profile_dir_for

    spec, profile_dir, hosts, options = _context(name, ipython_dir, host, ssh_config, accept_new_host_keys, connect_timeout)
    checks = diagnose(
        hosts,
        profile_dir / ENGINE_FILE,
        remote_profile_dir=remote_profile_dir_for(spec),
        remote_python=remote_python or spec.remote_python,
        ssh_options=options,
        max_clock_skew=max_clock_skew,
    )
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
    ssh_config: Optional[List[Path]] = SSH_CONFIG,
    accept_new_host_keys: bool = ACCEPT_NEW,
    remote_python: Optional[str] = REMOTE_PYTHON,
    connect_timeout: float = CONNECT_TIMEOUT,
    timeout: float = typer.Option(60.0, help="Seconds for each host's bring-up, then for registration."),
    ipython_dir: Optional[Path] = IPYTHON_DIR,
    json_output: bool = JSON,
) -> None:
    """Start engines on remote hosts for a running cluster; return once they have registered."""
    from ipcluster_kit.cluster.local import is_up, load_state, wait_for_engines
    from ipcluster_kit.errors import BadInput, KitError
    from ipcluster_kit.profile.store import connection_files
    from ipcluster_kit.remote.glue import start_remote, stop_remote_engines

    if timeout <= 0:
        raise BadInput(f"invalid --timeout {timeout:g}: it must be more than 0 seconds")
    spec, profile_dir, hosts, options = _context(name, ipython_dir, host, ssh_config, accept_new_host_keys, connect_timeout)
    if remote_python:
        spec = spec.with_changes(remote_python=remote_python)
    state = load_state(profile_dir)
    if not is_up(state):
        raise KitError(f"cluster {name!r} is not up (start it with `ipcluster-kit up {name}`)")
    before = len(state.remote)
    expected = state.expected_engines
    with err_console.status("starting remote engines") as spinner:
        try:
            results = start_remote(spec, profile_dir, state, timeout=timeout, hosts=hosts, ssh_options=options,
                                   progress=lambda msg: spinner.update(msg))  # fmt: skip
            added = sum(len(r.engines) for r in results)
            state.expected_engines = expected + added
            state.save()
            wait_for_engines(connection_files(profile_dir)["client"], state.expected_engines, timeout,
                             progress=lambda msg: spinner.update(msg))  # fmt: skip
        except BaseException:
            from ipcluster_kit.remote.bootstrap import HostRecord

            new = [HostRecord.from_dict(entry["record"]) for entry in state.remote[before:]]
            if new:  # stop what this command started; the cluster stays as it was
                stop_remote_engines(new, ssh_options=options)
            del state.remote[before:]
            state.expected_engines = expected
            state.save()
            raise
    if json_output:
        print_json({"profile": name, "hosts": [r.to_dict() for r in results], "engines": state.expected_engines})
        return
    for r in results:
        console.print(f"{r.label}: {len(r.engines)} engine(s) on {r.remote.get('hostname')} in {r.elapsed:.2f} s")
    console.print(f"Cluster [bold]{name}[/]: {state.expected_engines} engine(s) registered.")


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
    app.command("bootstrap")(bootstrap)
