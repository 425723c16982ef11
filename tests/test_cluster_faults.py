"""Faults around a live cluster, each with real processes: a controller killed with SIGKILL, a corrupt
state file, concurrent `up`, Ctrl-C during `up`, bad option values."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from helpers import KIT, process_group, run_kit, wait_for
from ipcluster_kit.processes import find_by_argument

pytestmark = pytest.mark.e2e

# Engines that never register: a sitecustomize that makes `python -m ipyparallel.engine` sleep, so a
# bring-up is reliably still waiting when the test interrupts it.
HANG_ENGINES = "import sys, time\nif 'ipyparallel.engine' in getattr(sys, 'orig_argv', []):\n    time.sleep(120)\n"


# One engine that exits at once (the first to create a flag file), the others start normally.
ONE_ENGINE_EXITS = (
    "import os, sys\n"
    "if 'ipyparallel.engine' in getattr(sys, 'orig_argv', []):\n"
    "    try:\n"
    "        os.close(os.open(os.path.join(os.path.dirname(__file__), 'exited'), os.O_CREAT | os.O_EXCL))\n"
    "    except FileExistsError:\n"
    "        pass\n"
    "    else:\n"
    "        print('test: this engine exits', flush=True)\n"
    "        os._exit(3)\n"
)


def _kit(ipython_dir: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return run_kit(*args, "--ipython-dir", str(ipython_dir), **kw)


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ipcluster-kit: error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def _of_profile(profile_dir: Path) -> list[int]:
    return [r.pid for r in find_by_argument(str(profile_dir))]


@pytest.fixture
def cluster(ipython_dir):
    """Profile `f` with 2 engines, up; everything of it is stopped after the test."""
    _kit(ipython_dir, "init", "f", "--engines", "2", check=True)
    _kit(ipython_dir, "up", "f", check=True)
    profile_dir = ipython_dir / "profile_f"
    yield profile_dir
    _kit(ipython_dir, "down", "f", "--force")
    assert _of_profile(profile_dir) == []


def test_down_after_the_controller_was_killed_stops_its_schedulers(ipython_dir, cluster):
    state = json.loads((cluster / "ipcluster_kit_state.json").read_text())
    controller = state["controller"]["pid"]
    schedulers = process_group(controller) - {controller}
    assert schedulers, "the controller's schedulers run in its process group"
    os.kill(controller, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(controller) or psutil.Process(controller).status() == psutil.STATUS_ZOMBIE,
             10, what="the controller to die")  # fmt: skip
    assert process_group(controller) == schedulers  # orphaned, still running and listening

    report = json.loads(_kit(ipython_dir, "down", "f", "--json", check=True).stdout)
    assert not report["controller_stopped"] and report["engines_stopped"] == 2 and report["left_running"] == []
    listed = {e["pid"]: e["role"] for e in report["stopped"]}
    assert schedulers <= set(listed) and {listed[p] for p in schedulers} == {"controller group"}
    assert process_group(controller) == set() and _of_profile(cluster) == []


@pytest.mark.parametrize("content, problem", [
    ("{}", "not a cluster state"), ("[]", "not a cluster state"), ("{not json", "is not JSON"),
    (None, "not a cluster state"),  # a record missing a field
])  # fmt: skip
def test_a_corrupt_state_file_under_a_live_cluster(ipython_dir, cluster, content, problem):
    state_file = cluster / "ipcluster_kit_state.json"
    good = json.loads(state_file.read_text())
    if content is None:
        del good["engine_sets"][0]["processes"][0]["pid"]
        content = json.dumps(good)
    state_file.write_text(content)
    live = set(_of_profile(cluster))
    assert len(live) >= 3  # controller and two engines (and their helpers)

    for command in (["status", "f"], ["up", "f"], ["down", "f"]):
        result = _kit(ipython_dir, *command)
        line = _one_error_line(result)
        assert result.returncode == 1 and problem in line and "`ipcluster-kit down f --force`" in line, line
    assert set(_of_profile(cluster)) == live  # no second cluster, nothing stopped, nothing started
    assert state_file.read_text() == content

    report = json.loads(_kit(ipython_dir, "down", "f", "--force", "--json", check=True).stdout)
    assert report["left_running"] == [] and {e["pid"] for e in report["found_by_profile_dir"]} >= live
    assert _of_profile(cluster) == [] and not state_file.exists()
    assert json.loads(_kit(ipython_dir, "status", "f", "--json", check=True).stdout)["up"] is False


def test_three_concurrent_up_make_one_cluster(ipython_dir):
    _kit(ipython_dir, "init", "race", "--engines", "2", check=True)
    profile_dir = ipython_dir / "profile_race"
    env = dict(os.environ, COLUMNS="200")
    ups = [subprocess.Popen(KIT + ["up", "race", "--json", "--ipython-dir", str(ipython_dir)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env) for _ in range(3)]  # fmt: skip
    try:
        results = [p.communicate(timeout=120) for p in ups]
        assert [p.returncode for p in ups] == [0, 0, 0], [err for _, err in results]
        assert sorted(json.loads(out)["already_up"] for out, _ in results) == [False, True, True]
        commands = {pid: " ".join(psutil.Process(pid).cmdline()) for pid in _of_profile(profile_dir)}
        leaders = [pid for pid, c in commands.items() if "ipyparallel.controller" in c and os.getpgid(pid) == pid]
        assert len(leaders) == 1  # one controller (its schedulers are forks of it, in its group)
        assert sum("ipyparallel.engine" in c for c in commands.values()) == 2
    finally:
        report = json.loads(_kit(ipython_dir, "down", "race", "--json").stdout)
    assert report["left_running"] == [] and report["found_by_profile_dir"] == []
    assert _of_profile(profile_dir) == []


def test_ctrl_c_during_up_stops_what_was_started(ipython_dir, tmp_path):
    _kit(ipython_dir, "init", "ctrlc", "--engines", "2", check=True)
    profile_dir = ipython_dir / "profile_ctrlc"
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HANG_ENGINES)
    env = dict(os.environ, PYTHONPATH=str(site), COLUMNS="200")
    up = subprocess.Popen(KIT + ["up", "ctrlc", "--ipython-dir", str(ipython_dir)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        def engines_started():
            try:
                sets = json.loads((profile_dir / "ipcluster_kit_state.json").read_text())["engine_sets"]
            except (OSError, ValueError):
                return False
            return bool(sets) and len(sets[0]["processes"]) == 2

        wait_for(engines_started, 60, what="up to start its engines")
        up.send_signal(signal.SIGINT)
        _, err = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
    assert up.returncode == 130
    assert err.strip().splitlines() == [
        "ipcluster-kit: error: interrupted: `up ctrlc` stopped the controller and 2 engine(s) it had started"]
    assert _of_profile(profile_dir) == [] and not (profile_dir / "ipcluster_kit_state.json").exists()


def test_min_engines_accepts_local_engines_when_one_exits(ipython_dir, tmp_path):
    """Without --min-engines an engine that exits fails `up`; with it, the others are enough (a warning
    names the engine's log), and the cluster counts the engines that registered."""
    _kit(ipython_dir, "init", "m", "--engines", "3", check=True)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(ONE_ENGINE_EXITS)
    env = {"PYTHONPATH": str(site)}
    failed = _kit(ipython_dir, "up", "m", env=env)
    line = _one_error_line(failed)
    assert "1 engine process(es) exited before registering" in line and "test: this engine exits" in line
    assert failed.returncode == 1 and _of_profile(ipython_dir / "profile_m") == []

    (site / "exited").unlink()
    up = _kit(ipython_dir, "up", "m", "--min-engines", "2", "--json", env=env)
    try:
        assert up.returncode == 0, up.stderr
        result = json.loads(up.stdout)
        (warning,) = result["warnings"]
        assert result["engines"] == 2 and warning.startswith("continuing with 2 of 3 engine(s) (at least 2 required): 1 engine")
        assert "test: this engine exits" in warning
        status = json.loads(_kit(ipython_dir, "status", "m", "--json", check=True).stdout)
        assert status["registered_engines"] == 2 and [e["running"] for e in status["engines"]].count(True) == 2
    finally:
        _kit(ipython_dir, "down", "m", check=True)
    assert _of_profile(ipython_dir / "profile_m") == []


@pytest.mark.parametrize("args, needle", [
    (["up", "v", "--timeout", "nan"], "invalid --timeout nan"), (["up", "v", "--timeout", "inf"], "invalid --timeout inf"),
    (["up", "v", "--min-engines", "-1"], "--min-engines"), (["up", "v", "--engines", "-2"], "--engines"),
    (["down", "v", "--timeout", "nan"], "invalid --timeout nan"),
    (["doctor", "v", "--host", "h", "--max-clock-skew", "-1"], "invalid --max-clock-skew -1"),
    (["doctor", "v", "--host", "h", "--connect-timeout", "nan"], "invalid --connect-timeout nan"),
    (["bootstrap", "v", "--host", "h", "--connect-timeout", "0"], "invalid --connect-timeout 0"),
])  # fmt: skip
def test_bad_values_are_one_line_and_start_nothing(ipython_dir, args, needle):
    _kit(ipython_dir, "init", "v", check=True)
    result = _kit(ipython_dir, *args)
    assert result.returncode == 2
    assert needle in _one_error_line(result)
    assert _of_profile(ipython_dir / "profile_v") == []
    assert not (ipython_dir / "profile_v" / "ipcluster_kit_state.json").exists()


def test_the_api_refuses_the_same_values():
    from ipcluster_kit import api
    from ipcluster_kit.errors import BadInput

    for call, needle in [(lambda: api.up("x", timeout=float("nan")), "--timeout"),
                         (lambda: api.up("x", min_engines=-1), "--min-engines"),
                         (lambda: api.down("x", timeout=float("inf")), "--timeout"),
                         (lambda: api.doctor("x", max_clock_skew=-1), "--max-clock-skew"),
                         (lambda: api.doctor("x", connect_timeout=float("nan")), "--connect-timeout")]:  # fmt: skip
        with pytest.raises(BadInput, match=needle):
            call()


def test_a_busy_profile_names_who_holds_it_and_a_dead_holder_frees_it(ipython_dir):
    """The profile lock dies with its holder: a killed `up` never blocks the next command."""
    _kit(ipython_dir, "init", "lk", "--engines", "1", check=True)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from ipcluster_kit.cluster.lock import profile_lock\n"
        "with profile_lock(Path(sys.argv[1]), 'test holder', 5):\n    print('held', flush=True); time.sleep(120)\n"),
        str(ipython_dir / "profile_lk")], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = _kit(ipython_dir, "down", "lk", "--timeout", "0.2")
        line = _one_error_line(busy)
        assert "profile 'lk' is busy: `test holder`" in line and f"PID {holder.pid}" in line
    finally:
        holder.kill()
        holder.wait(10)
    assert _kit(ipython_dir, "down", "lk", check=True).stdout.strip() == "Cluster lk was not up; nothing to stop."


def _kill_when_busy(engine_pid: int, victim: int) -> None:
    """SIGKILL ``victim`` once the engine has worked a second of CPU time: a benchmark is mid-run."""
    engine = psutil.Process(engine_pid)
    base = engine.cpu_times().user
    wait_for(lambda: engine.cpu_times().user > base + 1.0, 120, interval=0.05, what="the benchmark to keep the engine busy")
    os.kill(victim, signal.SIGKILL)


@pytest.mark.parametrize("victim", ["controller", "engine"])
def test_kill_9_during_bench_on_a_profile(ipython_dir, cluster, victim):
    """The kit itself notices (cluster.watch): the map in flight fails at once and the benchmark stops
    there, naming what died, instead of running on (a dead controller's schedulers still route tasks)
    or waiting for the controller's heartbeat to miss a dead engine."""
    state = json.loads((cluster / "ipcluster_kit_state.json").read_text())
    engine = state["engine_sets"][0]["processes"][0]["pid"]
    target = state["controller"]["pid"] if victim == "controller" else engine
    bench = subprocess.Popen(KIT + ["bench", "run", "primes", "--profile", "f", "--backend", "ipp-lbv-chunk1", "--repeat", "6",
                                    "--warmup", "0", "--timeout", "60", "--ipython-dir", str(ipython_dir)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _kill_when_busy(engine, target)
        _, err = bench.communicate(timeout=180)
    finally:
        if bench.poll() is None:
            bench.kill()
    assert bench.returncode == 1
    line = _one_error_line(subprocess.CompletedProcess(bench.args, bench.returncode, "", err))
    assert f"the {victim} of cluster 'f' (PID {target}) stopped running" in line
    report = json.loads(_kit(ipython_dir, "down", "f", "--json", check=True).stdout)
    assert report["left_running"] == [] and _of_profile(cluster) == []


def _engines_registered(tmp: Path) -> Path | None:
    """The profile directory of the temporary cluster under ``tmp`` once `up` saved it with every
    engine registered (the state's timeline is written then), else None."""
    for state_file in tmp.glob("ipck-*/profile_*/ipcluster_kit_state.json"):
        try:
            if json.loads(state_file.read_text()).get("timeline"):
                return state_file.parent
        except (OSError, ValueError):
            pass
    return None


def test_a_killed_bench_leaves_no_temporary_cluster_behind(tmp_path):
    """SIGKILL of a `bench` that runs on a temporary cluster: its watchdog stops the controller and the
    engines (each in a session of its own) and removes the temporary directory."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp), COLUMNS="200")
    bench = subprocess.Popen(KIT + ["bench", "sum", "--quick", "--engines", "2", "--backend", "ipp-lbv-chunk1", "--repeat", "50"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)  # fmt: skip
    try:
        profile_dir = wait_for(lambda: bench.poll() is None and _engines_registered(tmp), 120, what="the bench's engines")
        (watchdog,) = [p for p in psutil.Process(bench.pid).children() if "ipcluster_kit.cluster.watchdog" in p.cmdline()]
        cluster = _of_profile(profile_dir)
        assert len(cluster) >= 3 and bench.pid not in cluster  # the controller (and its schedulers), two engines
        bench.kill()
        bench.wait(30)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait(30)
    wait_for(lambda: not _of_profile(profile_dir) and not profile_dir.parent.exists(), 60,
             what="the watchdog to stop the cluster and remove its directory")  # fmt: skip
    wait_for(lambda: not watchdog.is_running() or watchdog.status() == psutil.STATUS_ZOMBIE, 30, what="the watchdog to exit")
    assert list(tmp.iterdir()) == []
