"""``ipcluster-kit notebooks``: copy the example notebooks to a working folder and open them in JupyterLab."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ipcluster_kit.cli.render import console, warn
from ipcluster_kit.notebook_server.copying import DEFAULT_DIR


def _say(text: str) -> None:
    # Plain prints, flushed: the URL must reach a pipe at once and never be wrapped.
    print(text, flush=True)


def _say_copied(report) -> None:
    if report.copied:
        _say(f"Copied {len(report.copied)} file(s) to {report.target}: {', '.join(report.copied)}")
    if report.kept:
        _say(f"Kept existing copies in {report.target} (not overwritten; delete them to get the packaged versions): {', '.join(report.kept)}")
    if not report.copied and not report.kept:
        _say(f"No example notebooks are packaged; serving {report.target}")


def notebooks(
    directory: Path = typer.Option(Path(DEFAULT_DIR), "--dir", help="Working folder the notebooks are copied to (existing copies are kept)."),
    port: Optional[int] = typer.Option(None, "--port", help="Port on 127.0.0.1 (default: the first free one from 8888)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a web browser; just print the URL."),
    profile: Optional[str] = typer.Option(None, "--profile", help="Kit profile the notebooks use (passed as $IPCK_PROFILE; default: each notebook makes a temporary one)."),
    ipython_dir: Optional[Path] = typer.Option(None, "--ipython-dir", help="IPython directory holding the profiles (default: $IPYTHONDIR, then ~/.ipython)."),
) -> None:
    """Copy the example notebooks to a working folder and serve them with JupyterLab on 127.0.0.1.

    The IPython Parallel panel of JupyterLab lists the profiles of the IPython directory. Stop with Ctrl-C.
    """
    from ipcluster_kit.notebook_server import checks, copying
    from ipcluster_kit.notebook_server.server import LabServer, running_as_root, serve
    from ipcluster_kit.notebooks import PROFILE_ENV
    from ipcluster_kit.profile.spec import resolve_ipython_dir

    # Everything is checked before anything is written or started.
    target = copying.check_target(directory)
    ipdir = resolve_ipython_dir(ipython_dir)
    name = checks.resolve_profile(profile, ipdir)
    chosen_port = checks.check_port(port)
    warnings = checks.extension_warnings()

    report = copying.copy_examples(target)
    _say_copied(report)
    if running_as_root():
        warnings.append("running JupyterLab as root (allowed because it listens on 127.0.0.1 only, behind a token)")
    for message in warnings:
        warn(message)
    profiles = checks.profiles_in(ipdir)
    listed = ", ".join(profiles) if profiles else "none yet (create one with `ipcluster-kit init NAME`)"
    _say(f"IPYTHONDIR={ipdir}; the IPython Parallel panel lists its profiles: {listed}")
    if name:
        _say(f"Notebooks use profile {name!r} ({PROFILE_ENV}={name})")
    else:
        _say("Notebooks make a temporary profile each (use --profile NAME for one of yours)")

    server = LabServer(report.target, chosen_port, ipdir, profile=name, open_browser=not no_browser)

    def ready(s: LabServer) -> None:
        _say(f"JupyterLab (PID {s.pid}) is serving {s.root_dir} at:")
        _say(f"    {s.url}")
        _say(f"Log: {s.log_path}. Press Ctrl-C to stop.")

    def stopping(reason: str) -> None:
        if reason == "signal":
            _say("Stopping JupyterLab ...")

    def browser_failed(s: LabServer) -> None:
        warn("could not open a web browser; open the URL above yourself")

    result = serve(server, on_ready=ready, on_stopping=stopping, on_no_browser=browser_failed)
    if result["leftovers_stopped"]:
        warn(f"stopped {len(result['leftovers_stopped'])} process(es) JupyterLab left behind: PIDs {result['leftovers_stopped']}")
    from ipcluster_kit.errors import KitError

    if result["left_running"]:
        raise KitError(f"could not stop PIDs {result['left_running']} that JupyterLab started")
    if result["reason"] == "exited":
        raise KitError(f"JupyterLab exited by itself (status {result['returncode']}); log {server.log_path}: {server.log_tail()}")
    how = "" if result["graceful"] else " (killed: it did not exit within the timeout)"
    console.print(f"JupyterLab stopped{how}.", soft_wrap=True)
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command("notebooks")(notebooks)
