"""The scheme shoot-out end to end: every scheme read back from its controller, the CLI writing
JSON and a plot and surviving a raising function, and the pure scheme's engine-id gap."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import Controller, run_kit, wait_for
from ipcluster_kit.bench import hetero
from ipcluster_kit.bench.shootout import controller, plan, recommend
from ipcluster_kit.bench.shootout import run as srun
from ipcluster_kit.processes import record_of, stop_processes
from ipcluster_kit.profile.spec import SCHEMES

pytestmark = pytest.mark.e2e


def test_each_scheme_really_runs_on_its_cluster():
    """Six clusters, one per scheme: the controller's own word (connection file and scheduler log)."""
    config = plan.ShootoutConfig(workloads=["overhead"], schemes=list(SCHEMES), hwms=[1], engines=2, repeat=1, warmup=0,
                                  tasks=10, cluster_timeout=120, timeout=120)  # fmt: skip
    doc = srun.run_shootout(config)
    assert recommend.validation_errors(doc) == []
    assert [(c["scheme"], c["hwm"]) for c in doc["combinations"]] == [(s, None if s == "pure" else 1) for s in SCHEMES]
    for combo in doc["combinations"]:
        ctl = combo["controller"]
        assert combo["status"] == "ok", combo["error"]
        assert ctl["task_scheme"] == combo["scheme"] and ctl["log_scheme"] == combo["scheme"] and ctl["confirmed"]
        assert combo["scheme"] in ctl["log_line"]
        assert combo["engine_ids"] == [0, 1]
        (run,) = combo["runs"]
        assert run["status"] == "ok" and run["verified"] and run["scheme"] == combo["scheme"]
        probe = combo["hwm_probe"]
        if combo["scheme"] == "pure":
            assert probe is None
        else:  # hwm=1 on 2 engines: 4 sleeping tasks, one on each engine, 2 held back by the scheduler
            assert probe["readings"] > 0 and probe["consistent"], probe
            assert (probe["tasks"], probe["max_outstanding_per_engine"], probe["unassigned"]) == (4, 1, 2), probe
    assert doc["defaults"] == {"scheme": "leastload", "hwm": 1, "source": doc["defaults"]["source"]}


def test_cli_quick_run_writes_json_and_plot_and_survives_a_raising_function(tmp_path):
    (tmp_path / "usertasks.py").write_text(
        "def work(x):\n    if x == 3:\n        raise ValueError(f'bad input {x}')\n    return x * x\n"
    )
    (tmp_path / "args.json").write_text("[1, 2, 3, 4]")
    result = run_kit("bench", "schemes", "--quick", "--scheme", "leastload", "--scheme", "pure", "--hwm", "1", "--function", "usertasks:work",
                     "--args", "args.json", "--json", "out.json", "--plot", "out.png", cwd=tmp_path, timeout=240)  # fmt: skip
    # the raising function fails the run (exit 1, one line) after every combination ran and was written
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1].startswith("ipcluster-kit: error: 2 combination/workload run(s) failed")
    doc = json.loads((tmp_path / "out.json").read_text())
    assert recommend.validation_errors(doc) == []
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [(c["scheme"], c["hwm"]) for c in doc["combinations"]] == [("leastload", 1), ("pure", None)]
    durations = hetero.exponential_durations(plan.QUICK_SIZES.hetero_tasks, plan.QUICK_SIZES.hetero_mean, 0)
    for combo in doc["combinations"]:
        assert combo["controller"]["task_scheme"] == combo["controller"]["log_scheme"] == combo["scheme"]
        runs = {r["workload"]: r for r in combo["runs"]}
        assert set(runs) == {"overhead", "hetero", "sum", "primes", "user"}
        user = runs["user"]
        assert user["status"] == "failed" and user["seconds"] == []
        assert "ValueError: bad input 3 (usertasks.py:3 in work)" in user["error"]
        assert user["traceback"][-1] == "ValueError: bad input 3"
        for name in ("overhead", "hetero", "sum", "primes"):  # the rest ran, verified, after the failure
            assert runs[name]["status"] == "ok" and runs[name]["verified"] and len(runs[name]["seconds"]) == 3, runs[name]
        het = runs["hetero"]
        assert het["lower_bound_seconds"] == pytest.approx(hetero.lower_bound(durations, 2))
        assert het["makespan_ratio"]["median"] == pytest.approx(het["stats"]["median"] / het["lower_bound_seconds"])
        assert all(len(work) <= 2 for work in het["params"]["engine_work_seconds"])
    workloads = {w["name"]: w for w in doc["workloads"]}
    assert workloads["hetero"]["lower_bound_seconds"] == pytest.approx(het["lower_bound_seconds"])
    assert workloads["hetero"]["durations"]["max"] == pytest.approx(max(durations))
    assert doc["config"]["function"] == "usertasks:work" and doc["config"]["repeat"] == 3
    assert "for no-op throughput:" in result.stdout and "for heterogeneous tasks:" in result.stdout
    assert "bad input 3" in result.stdout
    # the user's function failed everywhere: the profile's recommendation is the hetero one, as the document says
    rec = doc["recommended"]
    assert rec["workload"] == "hetero" and recommend.recommended_from_file(tmp_path / "out.json") == (rec["scheme"], rec["hwm"])
    hetero_rec = next(r for r in doc["recommendations"] if r["workload"] == "hetero")
    best, default = hetero_rec["best"], hetero_rec["default"]
    expected = best if hetero_rec["verdict"] in ("better", "no-default") else default
    assert (rec["scheme"], rec["hwm"]) == (expected["scheme"], expected["hwm"])
    assert ("pure gives up" in rec["line"]) == (rec["scheme"] == "pure")


def _spawn_engine(profile_dir: Path, engine_id: int, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ipyparallel.engine", f"--profile-dir={profile_dir}", f"--IPEngine.id={engine_id}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the early client's "Task farming will be disabled"
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # clients made during the gap
@pytest.mark.filterwarnings("ignore:Unregistering FD:UserWarning")  # the early client's closed task socket
def test_pure_trap_engine_1_first_breaks_an_early_client_but_not_the_kit(ipython_dir):
    """Engine 1 registers before engine 0, on purpose: a client made in between refuses load-balanced
    tasks for good (ipyparallel's behaviour); the kit's client, made after registration, farms them."""
    import warnings

    import ipyparallel as ipp

    from ipcluster_kit.cluster.running import RunningCluster
    from ipcluster_kit.profile.spec import build_spec
    from ipcluster_kit.profile.store import plan_write, read_spec, write_profile

    write_profile(plan_write(build_spec("puretrap", preset="local", scheme="pure", engines=2), ipython_dir))
    spec, profile_dir = read_spec("puretrap", ipython_dir)
    engines: list[subprocess.Popen] = []
    early = None
    with Controller(profile_dir) as ctl:
        try:
            info = ctl.connection_info("client")
            assert info["task_scheme"] == "pure"
            client_file = profile_dir / "security" / "ipcontroller-client.json"
            early = ipp.Client(str(client_file), timeout=30)  # a client made before the engines registered
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                engines.append(_spawn_engine(profile_dir, 1, profile_dir / "engine-1.log"))
                wait_for(lambda: early.ids == [1], 60, what="engine 1 registered")
            assert any(controller.GAP_WARNING in str(w.message) for w in caught)  # it saw the gap: farming off
            engines.append(_spawn_engine(profile_dir, 0, profile_dir / "engine-0.log"))
            cluster = RunningCluster(name="puretrap", profile_dir=profile_dir, spec=spec, engines=2, scheme="pure")
            client = controller.connect_for_tasks(cluster, timeout=60)
            try:
                assert sorted(client.ids) == [0, 1]
                got = client.load_balanced_view().map(hetero.hetero_task, [(i, 0.001, "sleep") for i in range(20)],
                                                      chunksize=1, block=False).get(timeout=60)  # fmt: skip
                assert [g[0] for g in got] == list(range(20))
                assert len({g[2] for g in got}) == 2  # pure deals tasks round-robin: both engines ran some
            finally:
                client.close()
            wait_for(lambda: sorted(early.ids) == [0, 1], 30, what="the early client to see both engines")
            with pytest.raises(RuntimeError, match="farming"):  # the trap is real in this ipyparallel
                early.load_balanced_view().apply_async(abs, -1).get(timeout=10)
        finally:
            if early is not None:
                early.close()
            stop_processes([r for r in (record_of(p.pid, role="engine") for p in engines) if r is not None], timeout=10)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_pure_trap_does_not_bite_over_repeated_starts():
    """Three pure clusters, each as the shoot-out starts them: a load-balanced map works every time."""
    from ipcluster_kit.cluster.temporary import temporary_cluster

    gaps = 0
    for attempt in range(3):
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cm = temporary_cluster(2, "pure", None, timeout=120, heartbeat_ms=srun.SHOOTOUT_HEARTBEAT_MS)
            cluster = cm.__enter__()
        try:
            gaps += any(controller.GAP_WARNING in str(w.message) for w in caught)
            client = controller.connect_for_tasks(cluster, timeout=60)
            try:
                got = client.load_balanced_view().map(abs, [-i for i in range(30)], chunksize=1, block=False).get(timeout=60)
                assert got == list(range(30)), attempt
            finally:
                client.close()
        finally:
            cm.__exit__(None, None, None)
    print(f"engine 1 registered first in {gaps} of 3 starts")


def test_every_size_and_timing_option_reaches_the_run(tmp_path):
    """One combination on one engine, every option that shapes the run given; the JSON on stdout."""
    result = run_kit("bench", "schemes", "sum", "hetero", "--scheme", "leastload", "--hwm", "1", "--engines", "1",
                     "--repeat", "2", "--warmup", "1", "--tasks", "3", "--sum-n", "1000", "--hetero-tasks", "4",
                     "--hetero-mean", "0.005", "--seed", "7", "--task-kind", "sleep", "--timeout", "60",
                     "--cluster-timeout", "60", "--json", "-", cwd=tmp_path, timeout=240, check=True)  # fmt: skip
    doc = json.loads(result.stdout)  # nothing else on stdout: the table went to stderr
    assert recommend.validation_errors(doc) == [] and "leastload, hwm=1" in result.stderr
    cfg = doc["config"]
    assert (cfg["workloads"], cfg["combinations"], cfg["engines"], cfg["repeat"], cfg["warmup"]) == (
        ["sum", "hetero"], ["leastload, hwm=1"], 1, 2, 1)
    assert (cfg["task_kind"], cfg["seed"], cfg["timeout_seconds"]) == ("sleep", 7, 60.0)
    assert {k: cfg["sizes"][k] for k in ("sum_tasks", "sum_n", "hetero_tasks", "hetero_mean_seconds")} == {
        "sum_tasks": 3, "sum_n": 1000, "hetero_tasks": 4, "hetero_mean_seconds": 0.005}
    (combo,) = doc["combinations"]
    assert combo["engine_ids"] == [0] and combo["hwm_probe"]["tasks"] == 3  # 1 engine * hwm 1 + 2
    runs = {r["workload"]: r for r in combo["runs"]}
    for run in runs.values():
        assert run["status"] == "ok" and len(run["seconds"]) == 2 and len(run["warmup_seconds"]) == 1, run
    hetero_entry = next(w for w in doc["workloads"] if w["name"] == "hetero")
    assert hetero_entry["durations"]["kind"] == "sleep" and hetero_entry["tasks"] == 4
    assert hetero_entry["lower_bound_seconds"] == pytest.approx(sum(hetero.exponential_durations(4, 0.005, 7)))
    assert next(w for w in doc["workloads"] if w["name"] == "sum")["description"] == "sum(range(1_000)) x 3"
