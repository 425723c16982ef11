"""Profiles against the real ipyparallel: ipcontroller, ipengine, Client and ipp.Cluster honour them."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import Controller, ipyparallel_batch_script, listening_ports, process_group, run_kit, wait_for
from ipcluster_kit.profile.spec import CONTROLLER_PORT_COUNT, SCHEMES

pytestmark = pytest.mark.e2e


def free_port_range(count: int) -> tuple[int, int]:
    """A run of ``count`` ports on 127.0.0.1 that are free right now."""
    for _ in range(200):
        base = random.randrange(30000, 60000 - count)
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base, base + count - 1
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port range")


def test_every_scheme_is_used_by_a_real_controller_within_the_port_range(ipython_dir):
    """All six schemes at once: each controller reports its scheme and binds only the ports given."""
    controllers = {}
    try:
        for scheme in SCHEMES:
            first, last = free_port_range(CONTROLLER_PORT_COUNT)
            run_kit("init", scheme, "--ipython-dir", str(ipython_dir), "--scheduler", scheme,
                    "--ports", f"{first}-{last}", "--engines", "1", check=True)  # fmt: skip
            controllers[scheme] = (Controller(ipython_dir / f"profile_{scheme}"), first, last)
        for scheme, (controller, first, last) in controllers.items():
            client_info = controller.connection_info("client")
            engine_info = controller.connection_info("engine")
            assert client_info["task_scheme"] == scheme
            assert client_info["interface"] == engine_info["interface"] == "tcp://127.0.0.1"
            named = {v for info in (client_info, engine_info) for v in info.values() if isinstance(v, int) and v > 1000}
            named |= set(engine_info["broadcast"])
            assert named and all(first <= port <= last for port in named), (scheme, named, first, last)
            bound = wait_for(lambda: listening_ports(process_group(controller.proc.pid)), 10, what="bound ports")
            assert bound <= set(range(first, last + 1)), (scheme, sorted(bound - set(range(first, last + 1))))
    finally:
        for controller, _, _ in controllers.values():
            controller.stop()


def test_the_port_count_is_what_the_controller_binds(ipython_dir):
    first, last = free_port_range(CONTROLLER_PORT_COUNT + 10)
    run_kit("init", "wide", "--ipython-dir", str(ipython_dir), "--ports", f"{first}-{last}", check=True)
    with Controller(ipython_dir / "profile_wide") as controller:
        controller.connection_info("client")
        expected = CONTROLLER_PORT_COUNT
        bound = wait_for(lambda: (b := listening_ports(process_group(controller.proc.pid))) and len(b) >= expected and b, 15,
                         what=f"{expected} bound ports")  # fmt: skip
        assert len(bound) == CONTROLLER_PORT_COUNT


PRESET_ARGS = {
    "local": [],
    "lan": [],
    "ssh": ["--host", "root@node-a:2222=2", "--host", "node-b"],
    "mpi": [],
    "slurm": ["--queue", "short", "--walltime", "00:10:00"],
    "pbs": ["--queue", "batch"],
}
PRESET_LAUNCHER_CLASS = {
    "local": "LocalEngineSetLauncher",
    "lan": "LocalEngineSetLauncher",
    "ssh": "SSHEngineSetLauncher",
    "mpi": "MPIEngineSetLauncher",
    "slurm": "SlurmEngineSetLauncher",
    "pbs": "PBSEngineSetLauncher",
}


@pytest.mark.parametrize("preset", sorted(PRESET_ARGS))
def test_each_preset_runs_a_real_controller_and_resolves_in_ipp_cluster(ipython_dir, preset):
    import json

    # 3 engines everywhere; for ssh that is the sum of the hosts' counts (2 + 1)
    result = run_kit("init", preset, "--ipython-dir", str(ipython_dir), "--preset", preset, "--engines", "3",
                     *PRESET_ARGS[preset], "--json", check=True)  # fmt: skip
    settings = json.loads(result.stdout)["settings"]
    profile_dir = ipython_dir / f"profile_{preset}"
    with Controller(profile_dir) as controller:
        info = controller.connection_info("client")
        assert info["interface"] == f"tcp://{settings['ip']}"
        assert info["location"] == settings["location"]
        assert info["task_scheme"] == settings["scheme"]
        assert bool(info.get("curve_serverkey")) == settings["encrypt"]
    code = (
        "import ipyparallel as ipp, json, sys\n"
        f"c = ipp.Cluster(profile_dir={str(profile_dir)!r})\n"
        "cfg = c.config\n"
        "out = {'launcher': c.engine_launcher_class.__name__, 'n': c.n}\n"
        "if 'SSHEngineSetLauncher' in cfg: out['engines'] = dict(cfg.SSHEngineSetLauncher.engines); "
        "out['remote_profile_dir'] = cfg.SSHEngineSetLauncher.remote_profile_dir\n"
        "print(json.dumps(out))\n"
    )
    resolved = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout)
    assert resolved["launcher"] == PRESET_LAUNCHER_CLASS[preset]
    assert resolved["n"] == 3
    if preset == "ssh":
        assert resolved["engines"] == {"root@node-a:2222": {"n": 2}, "node-b": {"n": 1}}
        assert Path(resolved["remote_profile_dir"]).is_absolute()


def test_encrypted_profile_runs_a_task_with_a_real_engine(ipython_dir):
    run_kit("init", "enc", "--ipython-dir", str(ipython_dir), "--encrypt", "--engines", "1", check=True)
    profile_dir = ipython_dir / "profile_enc"
    with Controller(profile_dir) as controller:
        info = controller.connection_info("client")
        engine_info = controller.connection_info("engine")
        assert info["curve_serverkey"] and engine_info["curve_serverkey"]
        assert info["key"] == "" and engine_info["key"] == ""
        engine = subprocess.Popen([sys.executable, "-m", "ipyparallel.engine", f"--profile-dir={profile_dir}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        try:
            code = (
                "import ipyparallel as ipp, os\n"
                f"c = ipp.Client({str(profile_dir / 'security' / 'ipcontroller-client.json')!r}, timeout=30)\n"
                "c.wait_for_engines(1, timeout=60)\n"
                "print('RESULT', c[0].apply_sync(lambda x: x * 7, 6), c[0].apply_sync(os.getpid))\n"
                "c.close()\n"
            )
            result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90)
            assert f"RESULT 42 {engine.pid}" in result.stdout, result.stderr[-2000:]
        finally:
            engine.terminate()
            try:
                engine.wait(timeout=10)
            except subprocess.TimeoutExpired:
                engine.kill()
                engine.wait(timeout=5)


@pytest.mark.parametrize("launcher, directive", [("slurm", "#SBATCH"), ("pbs", "#PBS")])
def test_batch_preview_matches_what_ipyparallel_submits(ipython_dir, tmp_path, launcher, directive):
    import json

    args = ["--preset", launcher, "--queue", "short", "--walltime", "00:10:00", "--account", "proj", "--engines", "4",
            "--location", "10.1.2.3"]  # fmt: skip
    preview = json.loads(run_kit("init", "b", "--ipython-dir", str(ipython_dir), *args, "--dry-run", "--json", check=True).stdout)
    run_kit("init", "b", "--ipython-dir", str(ipython_dir), *args, check=True)
    profile_dir = ipython_dir / "profile_b"
    batch_file = tmp_path / "engines.sh"
    submitted = ipyparallel_batch_script(profile_dir, batch_file, engines=4)
    ours = preview["batch_script"].replace("<cluster-id>", "cid")
    directives = [line for line in ours.splitlines() if line.startswith(directive)]
    assert directives == [line for line in submitted.splitlines() if line.startswith(directive)]
    assert ours == submitted
    assert "short" in submitted and "00:10:00" in submitted and "proj" in submitted
