"""Render a ProfileSpec into ipyparallel's config files, from the Jinja2 templates in ``profiles/``."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import jinja2

from ipcluster_kit import __version__
from ipcluster_kit.profile.hosts import HostSpec
from ipcluster_kit.profile.launchers import engine_launcher_target
from ipcluster_kit.profile.spec import CONTROLLER_PORT_COUNT, RECORD_FILE, ProfileSpec
from ipcluster_kit.resources import templates_dir

CONFIG_FILES = ("ipcontroller_config.py", "ipengine_config.py", "ipcluster_config.py")

# Batch systems whose engine job script the kit writes itself (queue, walltime, account).
BATCH_TEMPLATES = {"slurm": "slurm_engines.sh.j2", "pbs": "pbs_engines.sh.j2"}

LAUNCHER_HELP = {
    "local": "local processes on this machine.",
    "ssh": "over SSH on the hosts below (ipyparallel's launcher; `ipcluster-kit up` does it in parallel).",
    "sshproxy": "over SSH, one ipcluster per host.",
    "mpi": "together under mpiexec.",
    "slurm": "as a Slurm job (sbatch).",
    "pbs": "as a PBS job (qsub).",
}


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["py"] = repr  # a Python literal: strings quoted and escaped, dicts as dicts
    return env


def launcher_class_name(launcher: str) -> str:
    target = engine_launcher_target(launcher) or ""
    return target.rpartition(":")[2] or target.rpartition(".")[2]


def host_key(host: HostSpec) -> str:
    """The key of ipyparallel's ``engines`` dict: ``[user@]host[:port]``."""
    return host.destination + (f":{host.port}" if host.port != 22 else "")


def host_config(host: HostSpec) -> dict:
    config: dict = {"n": host.engines}
    if host.remote_python:
        config["remote_python"] = host.remote_python
    return config


def remote_profile_dir(spec: ProfileSpec, profile_dir: Path) -> str:
    # ipyparallel's own default is the local path; the kit writes it out so it is absolute and visible.
    return spec.remote_profile_dir or str(Path(profile_dir).absolute())


def batch_template(spec: ProfileSpec) -> str | None:
    name = BATCH_TEMPLATES.get(spec.launcher)
    if name is None:
        return None
    return _environment().get_template(name).render(spec=spec)


def batch_script_preview(spec: ProfileSpec, profile_dir: Path) -> str | None:
    """The engine job script as ipyparallel will submit it, with the engine command filled in."""
    template = batch_template(spec)
    if template is None:
        return None
    # ipyparallel passes the connection info to batch engines in the environment (--export=ALL / -V),
    # so the engine command carries no arguments.
    command = [sys.executable, "-m", "ipyparallel.engine"]
    return template.format(n=spec.engines, program_and_args=shlex.join(command), cluster_id="<cluster-id>")


def render_profile(spec: ProfileSpec, profile_dir: Path) -> dict[str, str]:
    """The text of every file of the profile, by file name (config files and the kit's record)."""
    from ipcluster_kit.profile.store import record_text

    env = _environment()
    context = {
        "spec": spec,
        "version": __version__,
        "port_count": CONTROLLER_PORT_COUNT,
        "launcher_class": launcher_class_name(spec.launcher),
        "launcher_help": LAUNCHER_HELP.get(spec.launcher, f"ipyparallel's {spec.launcher!r} launcher."),
        "host_key": host_key,
        "host_config": host_config,
        "remote_profile_dir": remote_profile_dir(spec, profile_dir),
        "batch_template": batch_template(spec),
    }
    files = {name: env.get_template(f"{name}.j2").render(**context) for name in CONFIG_FILES}
    files[RECORD_FILE] = record_text(spec)
    return files
