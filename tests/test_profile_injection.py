"""Free text never reaches a generated config file or job script as code (issue 11, class 4).

Two layers: ``build_spec`` refuses newlines, control characters and quotes in every free-text
option; and the renderer writes every value as a Python literal (config files) or with its
braces escaped (job scripts, which ipyparallel fills in with IPython's EvalFormatter, evaluating
each ``{...}``), so even a spec that skipped the checks cannot inject.
"""

from __future__ import annotations

import dataclasses

import pytest
from traitlets.config.loader import PyFileConfigLoader

from ipcluster_kit.errors import BadInput
from ipcluster_kit.profile.render import batch_script_preview, render_profile
from ipcluster_kit.profile.spec import ProfileSpec, build_spec

LOCATION = "10.0.0.1"  # batch and ssh presets listen on 0.0.0.0 and need a reachable location

HOSTILE_TEXT = [
    "short\n#SBATCH --wrap=id",
    'x"""\nimport os; os.system("id")\n"""',
    "x'; import os #",
    "tab\there",
    "nul\x00",
    "esc\x1b[2J",
    "line\u2028sep",
    "back`tick`",
    "back\\slash",
]


def _load(path):
    """Load a generated config file the way ipyparallel does (traitlets' Python config loader)."""
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


@pytest.mark.parametrize("value", HOSTILE_TEXT)
@pytest.mark.parametrize(
    "option, kwargs",
    [
        ("--queue", dict(preset="pbs", location=LOCATION)),
        ("--account", dict(preset="slurm", location=LOCATION)),
        ("--walltime", dict(preset="pbs", location=LOCATION)),
        ("--remote-python", dict(hosts=["h1"], location=LOCATION)),
        ("--remote-profile-dir", dict(hosts=["h1"], location=LOCATION)),
    ],
)
def test_free_text_options_refuse_hostile_text(option, kwargs, value):
    field = option[2:].replace("-", "_")
    if field == "remote_profile_dir":
        value = "/" + value
    with pytest.raises(BadInput) as info:
        build_spec("p", **kwargs, **{field: value})
    message = info.value.message
    assert "\n" not in message and repr(value) in message and option in message


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(queue="two words", preset="pbs", location=LOCATION), "one word"),
        (dict(location="host\nname"), "not a host name"),
        (dict(hosts=["h1\nh2"], location=LOCATION), "host spec"),
        (dict(hosts=["h1'"], location=LOCATION), "host spec"),
    ],
)
def test_other_text_reaching_configs_is_refused(kwargs, needle):
    with pytest.raises(BadInput, match=needle):
        build_spec("p", **kwargs)


def test_profile_name_with_a_newline_is_refused():
    with pytest.raises(BadInput, match="profile name"):
        build_spec("p\nimport os")


def _unchecked(**changes) -> ProfileSpec:
    """A spec with hostile values that never went through build_spec's checks."""
    return dataclasses.replace(build_spec("p", hosts=["h1"], location=LOCATION), **changes)


def test_a_hostile_value_that_skipped_the_checks_is_data_in_the_config(tmp_path):
    marker = tmp_path / "INJECTED"
    payload = f"python3'''\"\"\"\nopen({str(marker)!r}, 'w')\n#"
    spec = _unchecked(remote_python=payload, remote_profile_dir=f"/r\n{payload}")
    for name, text in render_profile(spec, tmp_path / "profile").items():
        (tmp_path / name).write_text(text)
    config = _load(tmp_path / "ipcluster_config.py")
    assert not marker.exists()
    assert config.SSHEngineSetLauncher.remote_python == payload
    assert config.SSHEngineSetLauncher.remote_profile_dir == f"/r\n{payload}"


def test_a_newline_that_skipped_the_checks_cannot_reach_a_job_script(tmp_path):
    spec = dataclasses.replace(build_spec("p", preset="pbs", location=LOCATION), queue="q\n#PBS -l mem=1T")
    with pytest.raises(BadInput, match="job script"):
        render_profile(spec, tmp_path)


BRACE_PAYLOAD = "{__import__(chr(111)+chr(115)).getpid()}"  # passes check_text: no quotes, one word


def test_braces_in_a_batch_value_stay_literal_through_ipyparallels_launcher(tmp_path):
    """ipyparallel fills in the batch template with EvalFormatter, which evaluates ``{...}``."""
    from ipyparallel.cluster.launcher import PBSEngineSetLauncher

    spec = build_spec("p", preset="pbs", queue=BRACE_PAYLOAD, account="acct{n}", location=LOCATION, engines=2)
    config_file = tmp_path / "ipcluster_config.py"
    config_file.write_text(render_profile(spec, tmp_path)["ipcluster_config.py"])
    config = _load(config_file)
    launcher = PBSEngineSetLauncher(work_dir=str(tmp_path), config=config, profile_dir=str(tmp_path), cluster_id="c1")
    launcher.write_batch_script(2)
    script = (tmp_path / launcher.batch_file_name).read_text()
    assert f"#PBS -q {BRACE_PAYLOAD}\n" in script
    assert "#PBS -A acct{n}\n" in script
    assert "#PBS -t 1-2\n" in script  # the template's own fields are still filled in
    # the kit's preview is the same script
    preview = batch_script_preview(spec, tmp_path)
    assert f"#PBS -q {BRACE_PAYLOAD}\n" in preview and "#PBS -t 1-2\n" in preview


def test_slurm_batch_values_are_escaped_by_the_same_mechanism(tmp_path):
    spec = build_spec("p", preset="slurm", queue="part{n}", account=BRACE_PAYLOAD, location=LOCATION)
    preview = batch_script_preview(spec, tmp_path)
    assert "part{n}" in preview and BRACE_PAYLOAD in preview


@pytest.mark.parametrize("preset", ["local", "lan", "ssh", "mpi", "slurm", "pbs"])
def test_every_preset_renders_configs_that_ipyparallel_loads(tmp_path, preset):
    kwargs = {"hosts": ["u@h1:2222=2"]} if preset == "ssh" else {}
    spec = build_spec("p", preset=preset, location=LOCATION, ports="20000-20019", **kwargs)
    files = render_profile(spec, tmp_path)
    for name in ("ipcontroller_config.py", "ipengine_config.py", "ipcluster_config.py"):
        (tmp_path / name).write_text(files[name])
        _load(tmp_path / name)
    controller = _load(tmp_path / "ipcontroller_config.py")
    assert controller.IPController.location == LOCATION
    assert controller.IPController.ports == list(range(20000, 20020))
    assert _load(tmp_path / "ipcluster_config.py").Cluster.n == spec.engines
