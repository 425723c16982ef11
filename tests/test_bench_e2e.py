"""The benchmark through real processes: a 2-engine cluster, process pools, the job queue, the CLI."""

from __future__ import annotations

import json

import pytest

from helpers import run_kit
from ipcluster_kit.bench import backends as bk
from ipcluster_kit.bench import report, results
from ipcluster_kit.bench.measure import serial_reference
from ipcluster_kit.bench.runner import BenchConfig, run_bench
from ipcluster_kit.bench.workloads import WORKLOAD_NAMES, make_workload

pytestmark = pytest.mark.e2e

ENGINES = 2


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One temporary 2-engine cluster for the module, stopped (by PID) at the end."""
    from ipcluster_kit.cluster.temporary import temporary_cluster

    with temporary_cluster(engines=ENGINES, timeout=120, ipython_dir=tmp_path_factory.mktemp("ipython")) as running:
        yield running


@pytest.fixture(scope="module")
def client(cluster):
    c = cluster.connect(timeout=60)
    yield c
    c.close()


@pytest.mark.parametrize("name", list(bk.BACKENDS))
def test_every_backend_returns_the_serial_results(name, cluster, client):
    backend = bk.make_backend(name)
    assert backend.unavailable_reason() is None, backend.unavailable_reason()
    ctx = bk.BenchContext(workers=ENGINES, timeout=120, cluster=cluster, client=client)
    backend.setup(ctx)
    try:
        for workload_name in WORKLOAD_NAMES:
            workload = make_workload(workload_name, quick=True)
            ref = serial_reference(workload)
            params = backend.prepare(workload, ref.task_seconds)
            assert isinstance(params, dict)
            assert backend.run(workload) == ref.results == workload.run_serial()
    finally:
        backend.teardown()


def test_auto_chunk_size_comes_from_a_measured_overhead(cluster, client):
    backend = bk.make_backend("ipp-lbv-auto")
    backend.setup(bk.BenchContext(workers=ENGINES, timeout=120, cluster=cluster, client=client))
    try:
        probe = backend.probe
        assert 0 < probe["overhead_seconds"] < 1 and len(probe["probe_samples"]) == probe["probe_rounds"]
        primes = make_workload("primes", quick=True)
        params = backend.prepare(primes, serial_reference(primes).task_seconds)
        assert 1 <= params["chunksize"] <= params["choice"]["max_chunksize"]
    finally:
        backend.teardown()


def test_run_bench_on_a_given_cluster_with_scaling(cluster, tmp_path):
    doc = run_bench(BenchConfig(workloads=["all"], quick=True, repeat=1, warmup=0, scaling=True), cluster=cluster)
    assert results.validation_errors(doc) == []
    assert doc["environment"]["cluster"]["source"] == "given"
    assert doc["environment"]["cluster"]["engines"] == ENGINES and doc["environment"]["workers"] == ENGINES
    failed = [(r["backend"], r["workload"], r["error"]) for r in doc["runs"] if r["status"] != "ok"]
    assert failed == []
    assert {(r["workload"], r["backend"]) for r in doc["runs"]} == {(w, b) for w in WORKLOAD_NAMES for b in bk.BACKENDS}
    assert all(r["verified"] and len(r["seconds"]) == 1 for r in doc["runs"])
    for r in doc["runs"]:  # the engines' own account of their work, for the ipyparallel backends only
        if r["backend"].startswith("ipp-"):
            (detail,) = r["details"]
            assert detail["engine_busy_seconds"] > 0 and 1 <= detail["engines_used"] <= ENGINES
        else:
            assert r["details"] == [None]
    chunk1 = next(r for r in doc["runs"] if (r["workload"], r["backend"]) == ("primes", "ipp-lbv-chunk1"))
    assert chunk1["details"][0]["tasks_sent"] == make_workload("primes", quick=True).size
    assert set(doc["overhead"]) == set(bk.BACKENDS)
    assert doc["scaling"]["engine_counts"] == [1, 2]
    (round1,) = doc["scaling"]["rounds"]
    assert round1["workers"] == 1 and {r["workers"] for r in round1["runs"] if r["backend"] != "serial"} == {1}
    assert all(r["status"] == "ok" for r in round1["runs"])
    assert report.png(doc)[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.explanations(doc)


def test_cli_bench_all_quick_writes_valid_json_and_png(tmp_path):
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    result = run_kit(
        "bench", "all", "--quick", "--engines", "2", "--repeat", "1", "--warmup", "0",
        "--json", str(out), "--plot", str(png), timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert results.validation_errors(doc) == []
    assert doc["environment"]["cluster"]["source"] == "temporary" and doc["environment"]["workers"] == 2
    assert doc["tool"]["command"][:3] == ["ipcluster-kit", "bench", "all"]
    assert all(len(r["foreign_cpus"]) == len(r["seconds"]) for r in doc["runs"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("ipp-lbv-chunk1", "ipp-lbv-auto", "ipp-direct", "mp-pool", "process-pool", "primes", "speedup"):
        assert name in result.stdout


def test_cli_bench_on_a_profile_that_is_up(ipython_dir, tmp_path):
    run_kit("init", "b", "--ipython-dir", str(ipython_dir), "--engines", "2", check=True)
    run_kit("up", "b", "--ipython-dir", str(ipython_dir), check=True, timeout=180)
    try:
        out = tmp_path / "p.json"
        result = run_kit(
            "bench", "primes", "--quick", "--profile", "b", "--ipython-dir", str(ipython_dir), "--engines", "1",
            "-b", "ipp-lbv-auto", "--repeat", "1", "--warmup", "0", "--json", str(out), timeout=180,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        doc = results.load(out)
        env = doc["environment"]
        assert env["cluster"]["source"] == "profile" and env["cluster"]["profile"] == "b"
        assert env["cluster"]["engines"] == 2 and env["workers"] == 1  # --engines 1: one of its engines
        assert [r["backend"] for r in doc["runs"]] == ["serial", "ipp-lbv-auto"]
        assert all(r["status"] == "ok" for r in doc["runs"])
        too_many = run_kit("bench", "sum", "--quick", "--profile", "b", "--ipython-dir", str(ipython_dir),
                           "--engines", "3", "-b", "ipp-direct")  # fmt: skip
        assert too_many.returncode == 2 and "--engines 3" in too_many.stderr
    finally:
        run_kit("down", "b", "--ipython-dir", str(ipython_dir), timeout=60)
