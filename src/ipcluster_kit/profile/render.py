"""Render a ProfileSpec into ipyparallel's config files, from the Jinja2 templates in ``profiles/``."""

from __future__ import annotations

import shlex
import sys
import unicodedata
from pathlib import Path

import jinja2

from ipcluster_kit import __version__
from ipcluster_kit.errors import BadInput
from ipcluster_kit.profile.hosts import HostSpec
from ipcluster_kit.profile.launchers import engine_launcher_target
from ipcluster_kit.profile.spec import CONTROLLER_PORT_COUNT, RECORD_FILE, ProfileSpec, record_text
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


class _Rendered(str):
    """Text a filter has already made safe for where it goes (a Python literal, an identifier)."""


def _python_literal(value: object) -> _Rendered:
    return _Rendered(repr(value))


def _identifier(value: object) -> _Rendered:
    text = str(value)
    if not all(part.isidentifier() for part in text.split(".")):
        raise BadInput(f"refusing to write {text!r} into a config file as a name")
    return _Rendered(text)


def _plain_text(value: object, where: str) -> str:
    """A value placed as it is (into a comment, a directive line): one line, no control character."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    if any(unicodedata.category(char).startswith("C") for char in text):
        raise BadInput(f"refusing to write {text!r} into {where}: it contains a newline or control character")
    return text


def _config_value(value: object) -> str:
    # Every ``{{ ... }}`` of a config template ends here: a value that went through ``py`` (or
    # ``ident``) is kept; anything else must be plain one-line text (it can only be in a comment).
    if isinstance(value, _Rendered):
        return value
    return _plain_text(value, "a config file")


def _batch_value(value: object) -> str:
    # Every ``{{ ... }}`` of a batch template ends here. ipyparallel fills the script in with
    # IPython's EvalFormatter, which *evaluates* each ``{...}`` as Python: a brace in a value
    # would run code on `ipcluster start`, so braces are doubled (format's own escape).
    return _plain_text(value, "a job script").replace("{", "{{").replace("}", "}}")


def _environment(finalize=_config_value) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=finalize,
    )
    env.filters["py"] = _python_literal  # a Python literal: strings quoted and escaped, dicts as dicts
    env.filters["ident"] = _identifier
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
    return _environment(_batch_value).get_template(name).render(spec=spec)


def fill_batch_template(spec: ProfileSpec, profile_dir: Path, command: list[str], cluster_id: str) -> str | None:
    """The engine job script with ``{n}``, ``{program_and_args}``, ``{profile_dir}`` and ``{cluster_id}`` filled in."""
    template = batch_template(spec)
    if template is None:
        return None
    return template.format(n=spec.engines, program_and_args=shlex.join(command), cluster_id=cluster_id,
                           profile_dir=_batch_profile_dir(profile_dir))  # fmt: skip


def _batch_profile_dir(profile_dir: Path) -> str:
    # The job script names log files under the profile directory, as a shell word and an #SBATCH value.
    text = str(Path(profile_dir).absolute())
    if shlex.quote(text) != text or "{" in text or "}" in text:
        raise BadInput(f"profile directory {text!r} cannot be named in a job script (spaces or shell characters):"
                       " choose another --ipython-dir")  # fmt: skip
    return text


def batch_script_preview(spec: ProfileSpec, profile_dir: Path) -> str | None:
    """The engine job script as ipyparallel will submit it, with the engine command filled in."""
    # ipyparallel passes the connection info to batch engines in the environment (--export=ALL / -V),
    # so the engine command carries no arguments.
    return fill_batch_template(spec, profile_dir, [sys.executable, "-m", "ipyparallel.engine"], "<cluster-id>")


def render_profile(spec: ProfileSpec, profile_dir: Path) -> dict[str, str]:
    """The text of every file of the profile, by file name (config files and the kit's record)."""
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
    if spec.launcher in BATCH_TEMPLATES:
        _batch_profile_dir(profile_dir)
    files = {name: env.get_template(f"{name}.j2").render(**context) for name in CONFIG_FILES}
    files[RECORD_FILE] = record_text(spec)
    return files
