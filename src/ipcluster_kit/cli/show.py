"""``ipcluster-kit show NAME``: a profile's settings, files, connection files and ports."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ipcluster_kit.cli.render import console, print_json, warn


def _ranges(ports: list[int] | None) -> str:
    if not ports:
        return "-"
    runs, start, prev = [], ports[0], ports[0]
    for port in ports[1:] + [None]:
        if port is not None and port == prev + 1:
            prev = port
            continue
        runs.append(f"{start}" if start == prev else f"{start}-{prev}")
        if port is not None:
            start = prev = port
    return ", ".join(runs)


def show(
    name: str = typer.Argument(..., help="Profile name."),
    ipython_dir: Optional[Path] = typer.Option(None, help="IPython directory (default: $IPYTHONDIR, then ~/.ipython)."),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show a profile: its settings, its files, its connection files and which ports must be reachable."""
    from rich.table import Table

    from ipcluster_kit.profile.inspect import describe
    from ipcluster_kit.profile.store import read_spec

    spec, profile_dir = read_spec(name, ipython_dir)
    info = describe(spec, profile_dir)
    if json_output:
        print_json(info)
        return
    console.print(f"Profile [bold]{name}[/] in {profile_dir}")
    settings = Table("setting", "value", show_header=False, box=None)
    for key, value in info["settings"].items():
        if key == "hosts":
            value = ", ".join(str(h) for h in spec.hosts) or "-"
        settings.add_row(key, str(value))
    console.print(settings)
    files = Table("file", "present", "mode")
    for file_name, entry in info["files"].items():
        files.add_row(file_name, "yes" if entry["exists"] else "no", entry["mode"] or "-")
    for role, entry in info["connection_files"].items():
        present = "yes" if entry["exists"] else "no (written when the controller starts)"
        files.add_row(f"security/{Path(entry['path']).name}", present, entry["mode"] or "-")
    console.print(files)
    ports = info["ports"]
    if ports["engine_hosts"] or ports["clients"]:
        console.print(f"Ports engine hosts must reach: {_ranges(ports['engine_hosts'])}")
        console.print(f"Ports clients must reach:      {_ranges(ports['clients'])}")
    elif ports["range"]:
        console.print(f"Ports: {ports['range'][0]}-{ports['range'][1]}; the split between engine and client ports"
                      " is listed once the controller has started.")  # fmt: skip
    else:
        console.print("Ports: random (set --ports A-B to fix them for a firewall)")
    if info["warning"]:
        warn(info["warning"])
    for path in info["readable_by_others"]:
        warn(f"{path} is readable by other users; it should be 0700/0600")


def register(app: typer.Typer) -> None:
    app.command("show")(show)
