"""The benchmark's pieces without a cluster: statistics, chunk choice, the document and its
schema, compare, the report, and the CLI's answers to bad input."""

from __future__ import annotations

import json
import os

import pytest

from helpers import modules_loaded_by, one_line_error, run_kit
from ipcluster_kit.bench import compare, outputs, report, results, stats
from ipcluster_kit.bench import backends as bk
from ipcluster_kit.bench.measure import first_mismatch
from ipcluster_kit.bench.runner import BenchConfig, expand_backends, expand_workloads, run_bench, validate
from ipcluster_kit.bench.workloads import make_workload, nth_prime
from ipcluster_kit.errors import BadInput

# --- stats --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, k, coverage",
    [(1, 1, 0.0), (3, 1, 0.75), (5, 1, 0.9375), (6, 1, 0.96875), (8, 1, 0.9921875), (9, 2, 0.9609375), (20, 6, 0.9586)],
)
def test_median_interval_ranks_match_the_binomial_table(n, k, coverage):
    got_k, got_cov = stats.median_interval_rank(n)
    assert got_k == k
    assert got_cov == pytest.approx(coverage, abs=1e-4)


def test_summary_of_few_samples_is_marked_wide():
    s = stats.summarize([3.0, 1.0, 2.0])
    assert (s.median, s.min, s.max, s.ci_low, s.ci_high) == (2.0, 1.0, 3.0, 1.0, 3.0)
    assert s.wide and s.coverage == 0.75


def test_summary_of_nine_samples_drops_the_extremes():
    s = stats.summarize([10, 1, 2, 3, 4, 5, 6, 7, 100])
    assert s.median == 5 and (s.ci_low, s.ci_high) == (2, 10) and not s.wide


def test_ratio_interval_is_conservative():
    serial = stats.summarize([2.0, 2.2, 2.4])
    par = stats.summarize([1.0, 1.1, 1.2])
    low, high = stats.ratio_interval(serial, par)
    assert low == pytest.approx(2.0 / 1.2) and high == pytest.approx(2.4 / 1.0)
    assert low <= serial.median / par.median <= high


# --- chunk size: tests/test_sweep_model.py ----------------------------------------------------


# --- other load -----------------------------------------------------------------------------------


def test_load_probe_reports_other_work_per_run():
    import time

    from ipcluster_kit.bench.noise import LoadProbe

    probe = LoadProbe()
    assert probe.foreign_cpus(probe.start()) is None  # too short to say
    snapshot = probe.start()
    end = time.perf_counter() + 0.3
    while time.perf_counter() < end:  # our own work: not foreign
        pass
    foreign = probe.foreign_cpus(snapshot)
    # /proc/stat and this process's CPU times are there on Linux, and 0.3 s is long enough to say
    assert foreign is not None and 0.0 <= foreign <= 2.0 * (os.cpu_count() or 1)


# --- workloads, validation, verification --------------------------------------------------------


def test_workload_sizes_and_names():
    assert make_workload("primes", quick=True).size == 300
    assert make_workload("sum", tasks=3, sum_n=10).args == [10, 10, 10]
    assert [nth_prime(i) for i in range(6)] == [2, 3, 5, 7, 11, 13]
    assert expand_workloads(["all"]) == ["sum", "primes", "overhead"]
    assert expand_workloads(["primes", "all"]) == ["primes", "sum", "overhead"]
    assert expand_backends(["mp-pool"]) == ["serial", "mp-pool"]
    assert expand_backends(None) == list(bk.BACKENDS)


@pytest.mark.parametrize(
    "config, words",
    [
        (BenchConfig(workloads=["nope"]), "'nope'"),
        (BenchConfig(backends=["nope"]), "'nope'"),
        (BenchConfig(repeat=0), "--repeat 0"),
        (BenchConfig(warmup=-1), "--warmup -1"),
        (BenchConfig(engines=0), "--engines 0"),
        (BenchConfig(tasks=0), "--tasks 0"),
        (BenchConfig(timeout=0), "--timeout 0"),
    ],
)
def test_validate_names_the_bad_value(config, words):
    with pytest.raises(BadInput, match=words):
        validate(config)


def test_first_mismatch():
    assert first_mismatch([1, 2, 3], [1, 2, 3]) is None
    assert "result 1" in first_mismatch([1, 5, 3], [1, 2, 3])
    assert "2 results for 3" in first_mismatch([1, 2], [1, 2, 3])


# --- the document -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def serial_doc():
    """A real document from the serial backend alone (no cluster needed)."""
    return run_bench(BenchConfig(workloads=["all"], backends=["serial"], quick=True, repeat=3, warmup=1))


def test_serial_only_document_validates_against_the_schema(serial_doc):
    import jsonschema

    from ipcluster_kit import schemas

    jsonschema.Draft202012Validator(schemas.schema(results.KIND.file)).validate(serial_doc)
    assert results.validation_errors(serial_doc) == []
    assert serial_doc["schema_version"] == results.SCHEMA_VERSION == 1
    assert serial_doc["environment"]["cluster"]["source"] == "none"
    run = serial_doc["runs"][0]
    assert run["status"] == "ok" and run["verified"] and len(run["seconds"]) == 3 and len(run["warmup_seconds"]) == 1
    assert run["speedup"] == 1.0
    json.loads(outputs.dumps(serial_doc))  # strict JSON: no NaN or Infinity


class _Wrong(bk.Backend):
    name = "wrong"
    description = "returns wrong results"

    def run(self, workload):
        out = workload.run_serial()
        out[-1] = "wrong"
        return out


class _Broken(bk.Backend):
    name = "broken"
    description = "cannot be set up"

    def setup(self, ctx):
        raise RuntimeError("no such thing")


def test_a_backend_with_wrong_results_keeps_no_timing(monkeypatch):
    monkeypatch.setitem(bk.BACKENDS, "wrong", _Wrong)
    monkeypatch.setitem(bk.BACKENDS, "broken", _Broken)
    doc = run_bench(BenchConfig(workloads=["primes"], backends=["wrong", "broken"], quick=True, repeat=2, warmup=1))
    runs = {r["backend"]: r for r in doc["runs"]}
    assert runs["serial"]["status"] == "ok"
    wrong = runs["wrong"]
    assert wrong["status"] == "failed" and not wrong["verified"] and wrong["seconds"] == [] and wrong["stats"] is None
    assert "result 299" in wrong["error"] and "'wrong'" in wrong["error"]
    assert runs["broken"]["status"] == "failed" and "setup failed" in runs["broken"]["error"]
    assert results.validation_errors(doc) == []


def test_a_missing_manager_queue_is_reported_not_available(monkeypatch):
    monkeypatch.setattr(bk, "_load_run_map", lambda: (None, "ipcluster_kit.mqueue.backend cannot be imported (test)"))
    doc = run_bench(BenchConfig(workloads=["sum"], backends=["manager-queue"], quick=True, repeat=1, warmup=0))
    entry = {b["name"]: b for b in doc["backends"]}["manager-queue"]
    assert entry["available"] is False and "cannot be imported" in entry["reason"]
    assert [r["backend"] for r in doc["runs"]] == ["serial"]
    assert any("manager-queue: not available" in note for note in report.explanations(doc))


def test_schema_rejects_a_broken_document(serial_doc):
    broken = json.loads(json.dumps(serial_doc))
    broken["runs"][0]["status"] = "ok"
    broken["runs"][0]["seconds"] = []
    assert results.validation_errors(broken)
    broken = json.loads(json.dumps(serial_doc))
    broken["runs"][1]["stats"] = None
    assert results.validation_errors(broken)
    broken = json.loads(json.dumps(serial_doc))
    del broken["environment"]
    assert results.validation_errors(broken)
    assert "schema_version" in results.validation_errors({**serial_doc, "schema_version": 99})[0]


# --- compare ------------------------------------------------------------------------------------


def test_compare_ratios(serial_doc, tmp_path):
    faster = json.loads(json.dumps(serial_doc))
    for run in faster["runs"]:
        run["stats"]["median"] /= 2
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(outputs.dumps(serial_doc))
    b.write_text(outputs.dumps(faster))
    out = compare.compare_files(a, b)
    assert [row["time_ratio"] for row in out["rows"]] == pytest.approx([0.5] * 3)
    assert out["environment_differences"] == {}
    cli = run_kit("bench", "compare", str(a), str(b), "--json", check=True)
    assert [row["time_ratio"] for row in json.loads(cli.stdout)["rows"]] == pytest.approx([0.5] * 3)
    table = run_kit("bench", "compare", str(a), str(b), check=True)
    assert "0.50" in table.stdout and "overhead" in table.stdout


@pytest.mark.parametrize(
    "content, words",
    [(None, "cannot read"), ("{not json", "not valid JSON"), ('{"schema": "other"}', "not a valid bench result"), ("[]", "not a valid")],
)
def test_compare_names_the_bad_file(tmp_path, serial_doc, content, words):
    good = tmp_path / "good.json"
    good.write_text(outputs.dumps(serial_doc))
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    with pytest.raises(BadInput, match=words) as info:
        compare.compare_files(good, bad)
    assert "bad.json" in str(info.value)
    cli = run_kit("bench", "compare", str(good), str(bad))
    one_line_error(cli, 2, "bad.json")


# --- report -------------------------------------------------------------------------------------


def test_report_table_and_notes(serial_doc):
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(report.table(serial_doc))
    text = console.export_text()
    assert "serial" in text and "primes" in text and "75%" in text  # 3 repeats: [min, max] at 75%
    notes = report.explanations(serial_doc)
    assert any("--repeat 6" in n for n in notes)


# --- CLI: bad input is one line and exit 2 --------------------------------------------------------


@pytest.mark.parametrize(
    "args, words",
    [
        (["bench", "nope"], ["'nope'", "sum, primes, overhead"]),
        (["bench", "run", "sum", "nope"], ["'nope'"]),
        (["bench", "sum", "--backend", "nope"], ["'nope'", "ipp-lbv-auto"]),
        (["bench", "primes", "--repeat", "0"], ["--repeat 0"]),
        (["bench", "--repeat", "-3"], ["--repeat -3"]),
        (["bench", "sum", "--warmup", "-1"], ["--warmup -1"]),
        (["bench", "sum", "--engines", "0"], ["--engines 0"]),
        (["bench", "sum", "--tasks", "0"], ["--tasks 0"]),
        (["bench", "sum", "--engines", "100000"], ["--engines 100000", "at most 256"]),
        (["bench", "schemes", "--engines", "100000"], ["--engines 100000", "at most 256"]),
        (["bench", "sum", "--sum-n", "-5"], ["--sum-n -5"]),
        (["bench", "sum", "--timeout", "nan"], ["--timeout nan"]),
        (["bench", "sum", "--timeout", "inf"], ["--timeout inf"]),
        (["bench", "sum", "--repeat", "many"], ["--repeat"]),
        (["bench", "sum", "--plot", "out.jpg"], ["out.jpg", "PNG"]),
        (["bench", "sum", "--json", "/nonexistent-dir/x.json"], ["/nonexistent-dir"]),
        (["bench", "compare", "/nonexistent/a.json", "/nonexistent/b.json"], ["/nonexistent/a.json"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, words):
    one_line_error(run_kit(*args), 2, *words)


@pytest.mark.parametrize("command", [["bench", "sum"], ["bench", "schemes"], ["bench", "schedulers"]])
def test_one_file_for_json_and_plot_is_refused(command, tmp_path):
    for json_path, plot_path in ((tmp_path / "x.png", tmp_path / "x.png"), (tmp_path / "x.png", tmp_path / "." / "x.png"), ("-", "-")):
        one_line_error(run_kit(*command, "--json", str(json_path), "--plot", str(plot_path)), 2, "--plot", "--json file too")
    assert list(tmp_path.iterdir()) == []


def test_backends_lists_every_registered_backend():
    listed = json.loads(run_kit("bench", "backends", "--json", check=True).stdout)
    assert [b["name"] for b in listed] == list(bk.BACKENDS)
    assert all(b["available"] == (b["reason"] is None) for b in listed)
    assert {b["name"]: b["available"] for b in listed}["serial"] is True
    table = run_kit("bench", "backends", check=True).stdout
    assert all(name in table for name in bk.BACKENDS)


def test_compare_refuses_a_fifo_at_once(tmp_path):
    fifo = tmp_path / "doc.json"
    os.mkfifo(fifo)
    one_line_error(run_kit("bench", "compare", str(fifo), str(fifo), timeout=30), 2, "doc.json", "not a regular file")


def test_json_to_dev_stdout_keeps_the_table_off_stdout():
    result = run_kit("bench", "sum", "--quick", "-b", "serial", "--repeat", "1", "--warmup", "0", "--json", "/dev/stdout",
                     check=True)  # fmt: skip
    assert results.validation_errors(json.loads(result.stdout)) == []  # the document alone
    assert "serial" in result.stderr


def test_options_tasks_sum_n_and_scaling_reach_the_document():
    """--tasks, --sum-n and --scaling on the serial backend (no cluster): the JSON on stdout, the table on stderr."""
    result = run_kit("bench", "sum", "-b", "serial", "--tasks", "3", "--sum-n", "1000", "--scaling", "--engines", "2",
                     "--repeat", "1", "--warmup", "0", "--json", "-", check=True)  # fmt: skip
    doc = json.loads(result.stdout)  # nothing else on stdout
    assert results.validation_errors(doc) == []
    assert (doc["config"]["tasks"], doc["config"]["sum_n"], doc["config"]["scaling"]) == (3, 1000, True)
    (workload,) = doc["workloads"]
    assert workload["tasks"] == 3 and workload["description"] == "sum(range(1_000)) x 3"
    assert doc["scaling"]["engine_counts"] == [1, 2] and [r["workers"] for r in doc["scaling"]["rounds"]] == [1]
    assert "serial" in result.stderr and "sum" in result.stderr  # the table


def test_unknown_profile_is_one_line_and_exit_2(ipython_dir):
    one_line_error(run_kit("bench", "sum", "--quick", "--profile", "nope", "--ipython-dir", str(ipython_dir)), 2, "'nope'")


def test_a_profile_that_is_not_up_is_exit_1(ipython_dir):
    run_kit("init", "idle", "--ipython-dir", str(ipython_dir), "--engines", "2", check=True)
    result = run_kit("bench", "sum", "--quick", "--profile", "idle", "--ipython-dir", str(ipython_dir))
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == ["ipcluster-kit: error: cluster 'idle' is not up (start it with `ipcluster-kit up idle`)"]


def test_serial_only_cli_run_without_a_cluster(tmp_path):
    out = tmp_path / "serial.json"
    result = run_kit("bench", "sum", "--quick", "-b", "serial", "--repeat", "1", "--warmup", "0", "--json", str(out), check=True)
    assert "serial" in result.stdout
    assert results.load(out)["environment"]["cluster"]["source"] == "none"


@pytest.mark.parametrize(
    "argv", [["bench", "--help"], ["bench", "run", "--help"], ["bench", "backends"], ["bench", "schemes", "--help"]]
)
def test_bench_help_stays_light(argv):
    loaded, output = modules_loaded_by(argv)
    assert loaded == []
    assert argv[1] != "schemes" or "--hwm" in output  # the command's own help, not the group's
