"""``ipcluster-kit init NAME``: write a small, working profile from a preset and options."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ipcluster_kit.cli.render import console, print_json, warn


def init(
    name: str = typer.Argument(..., help="Profile name; files go to IPYTHONDIR/profile_NAME."),
    preset: Optional[str] = typer.Option(None, help="Starting point: local, lan, ssh, mpi, slurm, pbs (files in profiles/presets)."),
    ip: Optional[str] = typer.Option(None, help="Interface the controller listens on (127.0.0.1, 0.0.0.0 or an address)."),
    location: Optional[str] = typer.Option(None, help="Address engines and clients use to reach the controller."),
    ports: Optional[str] = typer.Option(None, help="Fixed controller port range A-B (so a firewall can be opened)."),
    scheme: Optional[str] = typer.Option(None, "--scheme", "--scheduler", help="Task scheme: lru, leastload, weighted, plainrandom, twobin, pure, or auto (with --from-bench). --scheduler is an alias."),
    from_bench: Optional[Path] = typer.Option(None, help="A `bench schemes --json` result: take its recommended scheme and hwm."),
    bench_workload: Optional[str] = typer.Option(None, help="With --from-bench: whose recommendation (default: your function, else hetero, primes, sum)."),
    hwm: Optional[int] = typer.Option(None, help="Tasks outstanding per engine (0 = no limit)."),
    launcher: Optional[str] = typer.Option(None, help="Engine launcher, as ipyparallel names it (local, ssh, mpi, slurm, pbs, ...)."),
    engines: Optional[int] = typer.Option(None, help="Number of engines (default: CPUs here; with hosts, their sum)."),
    host: Optional[List[str]] = typer.Option(None, "--host", help="Engine host [user@]host[:port][=N]; repeatable."),
    encrypt: Optional[bool] = typer.Option(None, "--encrypt/--no-encrypt", help="CurveZMQ encryption of all traffic."),
    remote_python: Optional[str] = typer.Option(None, help="Python on the engine hosts (ssh)."),
    remote_profile_dir: Optional[str] = typer.Option(None, help="Absolute profile directory on the engine hosts (ssh)."),
    ssh_config: Optional[str] = typer.Option(None, help="OpenSSH client config for the hosts (instead of ~/.ssh/config)."),
    queue: Optional[str] = typer.Option(None, "--queue", "--partition", help="Batch queue / Slurm partition (slurm, pbs)."),
    walltime: Optional[str] = typer.Option(None, help="Batch walltime HH:MM:SS (slurm, pbs)."),
    account: Optional[str] = typer.Option(None, help="Batch account (slurm, pbs)."),
    nodes: Optional[int] = typer.Option(None, min=1, help="Slurm: nodes the engine job spans."),
    tasks_per_node: Optional[int] = typer.Option(None, min=1, help="Slurm: engines per node (with --nodes, --engines is their product)."),
    batch_option: Optional[List[str]] = typer.Option(None, "--batch-option", help="Slurm: an extra sbatch option, written as `#SBATCH TEXT`; repeatable."),
    mpi: Optional[bool] = typer.Option(None, "--mpi/--no-mpi", help="Slurm: engines as one MPI world (srun --mpi=pmi2; needs mpi4py)."),
    ipython_dir: Optional[Path] = typer.Option(None, help="IPython directory (default: $IPYTHONDIR, then ~/.ipython)."),
    force: bool = typer.Option(False, help="Replace an existing profile (its files are backed up first)."),
    dry_run: bool = typer.Option(False, help="Print every file that would be written (and a diff), write nothing."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Create a profile that ipcontroller, ipcluster and ipp.Cluster use as it is."""
    from ipcluster_kit import api

    made = api.init_profile(
        name, ipython_dir=ipython_dir, scheme=scheme, hwm=hwm, from_bench=from_bench, bench_workload=bench_workload,
        force=force, dry_run=dry_run, preset=preset, ip=ip, location=location, ports=ports, launcher=launcher,
        engines=engines, hosts=host, encrypt=encrypt, remote_python=remote_python, remote_profile_dir=remote_profile_dir,
        ssh_config=ssh_config, queue=queue, walltime=walltime, account=account,
        nodes=nodes, tasks_per_node=tasks_per_node, batch_options=batch_option, mpi=mpi,
    )  # fmt: skip
    spec, plan, batch_script, note = made.spec, made.plan, made.batch_script, made.note
    warnings = made.warnings

    if dry_run:
        if plan.exists and not force:
            warn(f"profile {name!r} exists; writing it would need --force")
        if json_output:
            print_json({"dry_run": True, "profile_dir": str(plan.profile_dir), "files": plan.files,
                        "diff": plan.diff(), "batch_script": batch_script, "warnings": warnings})  # fmt: skip
            return
        # Plain writes, not Rich: the files must appear exactly as they would be written.
        for file_name, text in plan.files.items():
            print(f"==> {plan.profile_dir / file_name} <==")
            print(text, end="" if text.endswith("\n") else "\n")
        if batch_script:
            print("==> engine batch script, as it would be submitted <==")
            print(batch_script, end="")
        if plan.exists:
            print("==> diff against the existing profile <==")
            print(plan.diff() or "(no change)\n", end="")
        for warning in warnings:
            warn(warning)
        console.print("[dim]dry run: nothing was written[/]")
        return

    backup = made.backup_dir
    if json_output:
        print_json({"profile_dir": str(plan.profile_dir), "files": sorted(plan.files), "settings": spec.to_record(),
                    "backup_dir": str(backup) if backup else None, "warnings": warnings})  # fmt: skip
        for warning in warnings:
            warn(warning)
        return
    for warning in warnings:
        warn(warning)
    if note:
        console.print(note)
    console.print(f"Created profile [bold]{name}[/] in {plan.profile_dir}")
    if backup:
        console.print(f"  previous files backed up to {backup}")
    console.print(f"  controller {spec.ip} (location {spec.location}), scheme {spec.scheme}, "
                  f"{spec.engines} engine(s) via {spec.launcher}{', encrypted' if spec.encrypt else ''}")  # fmt: skip
    console.print(f"Next: [bold]ipcluster-kit up {name}[/]  (or: ipcluster start --profile={name})")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
