"""The remote layer's checks that need no lab: inputs refused before any host is touched, messages."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys

import pytest

from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.remote import SSHOptions, Versions, bootstrap_hosts, parse_hosts
from ipcluster_kit.processes import ProcessRecord
from ipcluster_kit.remote.commands import check_hosts, resolve_remote_profile_dir
from ipcluster_kit.remote.records import HostRecord
from ipcluster_kit.remote.connfile import load_engine_file
from ipcluster_kit.remote.ssh import connect

ENGINE = {
    "ssh": "", "interface": "tcp://10.213.1.1", "registration": 1001, "control": 1002, "mux": 1003, "task": 1004,
    "iopub": 1005, "hb_ping": 1006, "hb_pong": 1007, "broadcast": [1008, 1009], "key": "sekrit-key-123",
    "curve_serverkey": None, "location": "ctl", "pack": "json", "unpack": "json", "signature_scheme": "hmac-sha256",
}  # fmt: skip


def write_engine_file(tmp_path, **changes):
    security = tmp_path / "security"
    security.mkdir(mode=0o700, exist_ok=True)
    path = security / "ipcontroller-engine.json"
    path.write_text(json.dumps({**ENGINE, **changes}))
    path.chmod(0o600)
    return path


def test_engine_file_ports_and_address(tmp_path):
    info = load_engine_file(write_engine_file(tmp_path))
    assert info.address == "10.213.1.1" and not info.is_loopback
    assert info.port_list() == list(range(1001, 1010))
    assert "sekrit" not in repr(info)
    listen_all = load_engine_file(write_engine_file(tmp_path, interface="tcp://*", location="10.0.0.5"))
    assert listen_all.address == "10.0.0.5"


def test_client_file_and_loose_modes_are_refused(tmp_path):
    client = tmp_path / "ipcontroller-client.json"
    client.write_text(json.dumps({**ENGINE, "notification": 1, "task_scheme": "lru"}))
    with pytest.raises(BadInput, match="client connection file"):
        load_engine_file(client)
    renamed = tmp_path / "renamed.json"
    renamed.write_text(json.dumps({k: v for k, v in ENGINE.items() if not k.startswith("hb")} | {"notification": 1}))
    renamed.chmod(0o600)
    with pytest.raises(BadInput, match="client connection file"):
        load_engine_file(renamed)
    path = write_engine_file(tmp_path)
    path.chmod(0o644)
    with pytest.raises(BadInput, match="mode 0644"):
        load_engine_file(path)
    with pytest.raises(BadInput, match="does not exist"):
        load_engine_file(tmp_path / "nope.json")


def test_bad_input_before_touching_any_host(tmp_path):
    hosts = parse_hosts(["root@10.213.1.11=2"])
    loopback = write_engine_file(tmp_path, interface="tcp://127.0.0.1")
    with pytest.raises(BadInput, match="listens on 127.0.0.1 only"):
        bootstrap_hosts(hosts, loopback, remote_profile_dir="/srv/p")
    good = write_engine_file(tmp_path)
    with pytest.raises(BadInput, match="given twice"):
        bootstrap_hosts(parse_hosts(["root@10.213.1.11=2", "root@10.213.1.11"]), good, remote_profile_dir="/srv/p")
    with pytest.raises(BadInput, match="no remote hosts"):
        bootstrap_hosts([], good, remote_profile_dir="/srv/p")
    with pytest.raises(BadInput, match="'..' is not allowed"):
        bootstrap_hosts(hosts, good, remote_profile_dir="/srv/../etc")
    with pytest.raises(BadInput, match="engine argument"):
        bootstrap_hosts(hosts, good, remote_profile_dir="/srv/p", engine_args=["; rm -rf /"])


def test_malformed_host_spec_is_bad_input():
    with pytest.raises(BadInput, match="malformed host spec 'root@@x'"):
        parse_hosts(["root@@x"])
    with pytest.raises(BadInput, match="engine count"):
        parse_hosts(["h=0"])
    assert [h.label for h in check_hosts(parse_hosts(["a", "u@b:2222=3"]))] == ["a", "u@b:2222"]


def test_version_messages_name_both_versions():
    local = Versions(python="3.11.7", ipyparallel="9.2.0")
    assert local.mismatch(Versions("3.11.2", "9.2.0"), host="h", python_path="/p") is None
    assert local.mismatch(Versions("3.12.1", "9.2.0"), host="h", python_path="/p") == (
        "h: Python 3.12.1 (/p) but the controller runs Python 3.11.7; engines need the same minor version 3.11"
        " (set --remote-python)"
    )
    assert "ipyparallel 8.6.1 (/p) but the controller has ipyparallel 9.2.0" in local.mismatch(
        Versions("3.11.7", "8.6.1"), host="h", python_path="/p"
    )
    assert "ipyparallel is not installed for /p (Python 3.11.7); the controller has ipyparallel 9.2.0" in local.mismatch(
        Versions("3.11.7", None), host="h", python_path="/p"
    )


def test_remote_profile_dir_resolution():
    assert resolve_remote_profile_dir(".ipcluster-kit/profiles/x", "/home/u", "h") == "/home/u/.ipcluster-kit/profiles/x"
    assert resolve_remote_profile_dir("~/p", "/home/u", "h") == "/home/u/p"
    assert resolve_remote_profile_dir("/srv/p/", "/home/u", "h") == "/srv/p"
    with pytest.raises(KitError, match="home directory unknown"):
        resolve_remote_profile_dir("p", None, "h")


def test_record_round_trip_has_no_none():
    record = HostRecord(
        host=parse_hosts(["u@h:2222=2"])[0], python="/usr/bin/python3", profile_dir="/p", engine_file="/p/e.json",
        engines=(ProcessRecord(1, 1700000000.25, "engine", "/p/log/a", "u@h:2222"), ProcessRecord(2, None, "engine", "/p/log/b")),
    )  # fmt: skip
    data = json.loads(json.dumps(record.to_dict()))
    assert "None" not in json.dumps(data) and "null" not in json.dumps(data)
    assert HostRecord.from_dict(data) == record


def test_ssh_config_must_exist(tmp_path):
    with pytest.raises(BadInput, match="--ssh-config '.*nope': no such readable file"):
        SSHOptions.build(str(tmp_path / "nope"))


def test_connection_refused_on_loopback(tmp_path):
    """A closed port on 127.0.0.1: a one-line KitError naming the host, quickly."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n  User nobody\n")
    host = parse_hosts([f"127.0.0.1:{port}"])[0]
    with pytest.raises(KitError) as info:
        asyncio.run(connect(host, SSHOptions.build(config, connect_timeout=3)))
    assert info.value.message == f"127.0.0.1:{port}: connection refused (is sshd running on that host and port?)"


def test_importing_the_remote_layer_is_light():
    code = "import sys, ipcluster_kit.remote, ipcluster_kit.cli.remote; print(sorted(m for m in ('asyncssh', 'ipyparallel', 'zmq') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
