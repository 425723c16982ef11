"""Unit tests of the profile spec: validation, presets, rendering."""

from __future__ import annotations

import pytest

from ipcluster_kit import netinfo
from ipcluster_kit.errors import BadInput
from ipcluster_kit.profile.hosts import HostSpec
from ipcluster_kit.profile.render import batch_script_preview, render_profile
from ipcluster_kit.profile.spec import (
    CONTROLLER_PORT_COUNT,
    SCHEMES,
    ProfileSpec,
    build_spec,
    parse_ports,
    preset_names,
)


def test_presets_include_the_required_ones():
    assert {"local", "lan", "ssh", "mpi", "slurm", "pbs"} <= set(preset_names())


@pytest.mark.parametrize(
    "text, expected",
    [
        ("h", HostSpec("h")),
        ("alice@h.example.org", HostSpec("h.example.org", user="alice")),
        ("alice@10.0.0.2:2222=4", HostSpec("10.0.0.2", user="alice", port=2222, engines=4)),
        ("node1=3", HostSpec("node1", engines=3)),
    ],
)
def test_host_spec_parses(text, expected):
    assert HostSpec.parse(text) == expected


@pytest.mark.parametrize("text", ["", "a@@b", "h:port", "h:70000", "h=0", "h=-1", "h=x", "bad host", "h:22=2=3", "@h"])
def test_host_spec_rejects_malformed(text):
    with pytest.raises(BadInput, match="host spec"):
        HostSpec.parse(text)


def test_ports_need_the_controllers_count():
    first, last = parse_ports(f"10000-{10000 + CONTROLLER_PORT_COUNT - 1}")
    assert last - first + 1 == CONTROLLER_PORT_COUNT
    with pytest.raises(BadInput, match=f"needs {CONTROLLER_PORT_COUNT}"):
        parse_ports(f"10000-{10000 + CONTROLLER_PORT_COUNT - 2}")
    for bad in ("10000", "a-b", "20-10", "0-100", "65530-70000"):
        with pytest.raises(BadInput, match="port range"):
            parse_ports(bad)


def test_listen_all_uses_the_default_route_address_never_loopback(monkeypatch):
    monkeypatch.setattr(netinfo, "routable_address", lambda: "10.9.8.7")
    spec = build_spec("p", ip="0.0.0.0")
    assert spec.location == "10.9.8.7"
    assert spec.listens_beyond_localhost
    with pytest.raises(BadInput, match="127.0.1.1"):
        build_spec("p", ip="0.0.0.0", location="127.0.1.1")


def test_listen_all_without_a_route_asks_for_location(monkeypatch):
    monkeypatch.setattr(netinfo, "routable_address", lambda: None)
    with pytest.raises(BadInput, match="--location"):
        build_spec("p", ip="*")
    assert build_spec("p", ip="*", location="node.example.org").ip == "0.0.0.0"


def test_exposure_warning_only_beyond_localhost_without_encryption(monkeypatch):
    monkeypatch.setattr(netinfo, "routable_address", lambda: "10.9.8.7")
    assert build_spec("p").exposure_warning() is None
    assert build_spec("p", ip="0.0.0.0", encrypt=True).exposure_warning() is None
    warning = build_spec("p", ip="0.0.0.0", encrypt=False, ports="20000-20019").exposure_warning()
    assert "20000-20019" in warning and "--encrypt" in warning


def test_ssh_engines_are_the_sum_of_hosts():
    spec = build_spec("p", hosts=["a=2", "u@b:2200=3"], location="10.0.0.1")
    assert spec.launcher == "ssh" and spec.engines == 5
    with pytest.raises(BadInput, match="disagrees"):
        build_spec("p", hosts=["a=2"], engines=3, location="10.0.0.1")
    with pytest.raises(BadInput, match="needs at least one --host"):
        build_spec("p", launcher="ssh")


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(scheme="fast"), "unknown scheme 'fast'"),
        (dict(launcher="nope"), "unknown launcher 'nope'"),
        (dict(engines=0), "invalid --engines 0: it must be at least 1"),
        (dict(hwm=-1), "invalid --hwm -1: it must be at least 0"),
        (dict(ip="1.2.3"), "invalid --ip '1.2.3': not an IPv4 address"),
        (dict(walltime="1h", launcher="slurm"), "invalid --walltime '1h'"),
        (dict(queue="q"), "--queue 'q': only for batch launchers"),
    ],
)
def test_bad_values_are_named(bad, message):
    with pytest.raises(BadInput) as info:
        build_spec("p", **bad)
    assert message in info.value.message


def test_unknown_launcher_lists_the_valid_ones():
    with pytest.raises(BadInput) as info:
        build_spec("p", launcher="nope")
    for name in ("local", "ssh", "mpi", "slurm", "pbs"):
        assert name in str(info.value)


@pytest.mark.parametrize("name", ["a/b", "../x", "", "a\\b", ".hidden"])
def test_profile_names_with_separators_are_refused(name):
    with pytest.raises(BadInput, match="profile name"):
        build_spec(name)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_rendered_controller_config_names_the_scheme(tmp_path, scheme):
    hwm = None if scheme == "pure" else 0
    files = render_profile(build_spec("p", scheme=scheme, hwm=hwm), tmp_path)
    text = files["ipcontroller_config.py"]
    assert f"c.TaskScheduler.scheme_name = {scheme!r}" in text
    assert ("c.TaskScheduler.hwm = 0" in text) == (scheme != "pure")
    # the stale names of old tutorials never appear
    assert "HubFactory" not in text and "schemename" not in text
    compile(text, "ipcontroller_config.py", "exec")


def test_rendered_ssh_config_uses_the_dict_form_and_absolute_dir(tmp_path):
    spec = build_spec("p", hosts=["u@a:2200=2", "b"], location="10.0.0.1", remote_python="/opt/py/bin/python3")
    text = render_profile(spec, tmp_path)["ipcluster_config.py"]
    namespace: dict = {}

    class Section(dict):
        def __getattr__(self, name):
            return self.setdefault(name, Section())

        def __setattr__(self, name, value):
            self[name] = value

    config = Section()
    exec(compile(text, "ipcluster_config.py", "exec"), {"get_config": lambda: config}, namespace)
    assert config.Cluster.n == 3
    assert config.SSHEngineSetLauncher.engines == {"u@a:2200": {"n": 2}, "b": {"n": 1}}
    assert config.SSHEngineSetLauncher.remote_profile_dir.startswith("/")
    assert config.SSHEngineSetLauncher.remote_python == "/opt/py/bin/python3"


def test_record_round_trips(tmp_path):
    spec = build_spec("p", hosts=["u@a:2200=2"], location="10.0.0.1", ports="20000-20019", hwm=1)
    import tomllib

    record = tomllib.loads(render_profile(spec, tmp_path)["ipcluster_kit.toml"])
    again = ProfileSpec.from_record(record)
    assert again.to_record() == spec.to_record()


def test_batch_preview_has_queue_walltime_account(tmp_path):
    spec = build_spec("p", preset="pbs", queue="short", walltime="02:00:00", account="proj7", engines=4, location="10.0.0.1")
    script = batch_script_preview(spec, tmp_path)
    assert "#PBS -q short" in script and "#PBS -l walltime=02:00:00" in script and "#PBS -A proj7" in script
    assert "#PBS -t 1-4" in script and "ipyparallel.engine" in script


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(location="999.1.1.1"), "not a valid IPv4 address"),
        (dict(location="10.0.0.256"), "not a valid IPv4 address"),
        (dict(location="1.2.3"), "not a valid IPv4 address"),
        (dict(location="0.0.0.0"), "not an address engines can connect to"),
        (dict(location="224.0.0.1"), "not an address engines can connect to"),
        (dict(location="::1"), "IPv6 is not supported"),
        (dict(ip="::1"), "IPv6 is not supported"),
        (dict(ip="::"), "IPv6 is not supported"),
        (dict(ip="999.1.1.1"), "not an IPv4 address"),
        (dict(ip="255.255.255.255"), "broadcast"),
        (dict(scheme="pure", hwm=5), "does not apply to the 'pure' scheme"),
        (dict(scheme="pure", hwm=0), "does not apply to the 'pure' scheme"),
        (dict(engines=-1), "invalid --engines -1: it must be at least 1"),
        (dict(engines=10**9), "at most"),
        (dict(hwm=2**40), "at most"),
        (dict(heartbeat_ms=10), "at least 50"),
    ],
)
def test_values_that_cannot_work_are_refused_at_build_spec(kwargs, needle):
    with pytest.raises(BadInput) as info:
        build_spec("p", **kwargs)
    assert needle in info.value.message and "\n" not in info.value.message
    value = list(kwargs.values())[-1]
    assert repr(value) in info.value.message or str(value) in info.value.message


def test_a_host_name_location_is_kept():
    assert build_spec("p", ip="0.0.0.0", location="login1.cluster.example.org").location == "login1.cluster.example.org"


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"engines": "4"}, "wrong type"),
        ({"engines": True}, "wrong type"),
        ({"engines": 0}, "--engines"),
        ({"scheme": "fastest"}, "unknown scheme"),
        ({"location": "999.1.1.1"}, "--location"),
        ({"remote_python": "py\nthon"}, "--remote-python"),
        ({"ports": [1, 2, 3]}, "'ports'"),
        ({"ports": [20000, 20001]}, "port range"),
        ({"hosts": [{"host": "bad host"}]}, "bad host name"),
        ({"hosts": "h1"}, "'hosts'"),
        ({"launcher": "nope"}, "unknown launcher"),
        ({"name": None}, "missing field 'name'"),
    ],
)
def test_a_corrupt_record_is_refused_naming_the_field(change, needle):
    record = build_spec("p").to_record()
    record.update(change)
    record = {k: v for k, v in record.items() if v is not None}
    with pytest.raises(ValueError) as info:
        ProfileSpec.from_record(record)
    assert needle in str(info.value)


def test_with_changes_checks_the_result():
    spec = build_spec("p", hosts=["h1"], location="10.0.0.1")
    assert spec.with_changes(remote_python="/opt/py/bin/python3").remote_python == "/opt/py/bin/python3"
    with pytest.raises(BadInput, match="--remote-python"):
        spec.with_changes(remote_python="python3\nimport os")


def test_render_and_store_do_not_import_each_other_in_a_circle():
    import ast
    from pathlib import Path

    import ipcluster_kit.profile.render as render

    tree = ast.parse(Path(render.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "ipcluster_kit.profile.store" not in imported
