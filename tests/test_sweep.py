"""The chunk-size sweep without a cluster: the sizes it sweeps, the checks at the edge, its document
(built from real run records) against the schema, and its report."""

from __future__ import annotations

import copy

import pytest

from helpers import one_line_error, run_kit
from ipcluster_kit.bench import chunking, sweep, sweep_report
from ipcluster_kit.bench.chunking import ClusterCosts, MapModel
from ipcluster_kit.bench.measure import RunRecord
from ipcluster_kit.errors import BadInput

PROBE = {"overhead_seconds": 0.005, "probe_tasks": 32, "probe_rounds": 3, "probe_samples": [0.005, 0.006, 0.004],
         "latency_seconds": 0.002, "latency_samples": [0.007, 0.008, 0.006], "engine_speed": 1.05,
         "engine_noop_seconds": 0.0004, "speed_samples": {"calibration_n": 10, "engines": [0.02], "here": [0.019]}}  # fmt: skip
ENVIRONMENT = {"workers": 2, "cpu_count": 2, "load_average": {"before": [0.1, 0.2, 0.3], "after": [0.5, 0.3, 0.3]},
               "cluster": {"source": "temporary", "profile": None, "engines": 2, "scheme": "leastload", "hwm": None,
                           "hosts": ["localhost"]}}  # fmt: skip


def test_swept_sizes_run_distinct_maps_and_include_the_automatic_choice():
    sizes = sweep.swept_sizes(1000, 2, 10, None, automatic=119)
    assert sizes[0] == 1 and sizes[-1] == 500 and 112 in sizes  # 119 runs the same 9 parts as 112
    assert len({chunking.parts_of(1000, c) for c in sizes}) == len(sizes)
    assert sweep.swept_sizes(16, 2, 10, [5, 4, 1], automatic=8) == [1, 4, 8]


@pytest.mark.parametrize(
    "change, words",
    [
        (dict(points=1), ["--points", "1"]),
        (dict(points=61), ["--points", "61"]),
        (dict(repeat=0), ["--repeat"]),
        (dict(chunks=[4, 0]), ["--chunks", "0"]),
        (dict(backends=["serial"]), ["--backend", "serial"]),
        (dict(backends=["nope"]), ["--backend", "nope"]),
        (dict(workload="overhead"), ["overhead"]),
        (dict(args_file="args.json"), ["--args", "--function"]),
        (dict(workload="hetero", hetero_mean=0.0), ["--hetero-mean"]),
        (dict(function="not a spec", args_file="x.json"), ["--function", "not a spec"]),
    ],
)
def test_bad_values_are_refused_before_anything_runs(change, words):
    with pytest.raises(BadInput) as info:
        sweep.validate(sweep.SweepConfig(**change))
    for word in words:
        assert word in str(info.value)


def _record(backend: str, seconds: list[float], busy: float | None = None) -> RunRecord:
    details = [None if busy is None else {"engine_busy_seconds": busy, "busiest_engine_seconds": busy / 2,
                                          "engines_used": 2, "tasks_sent": 4} for _ in seconds]  # fmt: skip
    return RunRecord("sum", backend, 1 if backend == "serial" else 2, params={}, warmup_seconds=[1.0],
                     seconds=seconds, foreign_cpus=[0.0] * len(seconds), details=details)  # fmt: skip


def _document(references=("mp-pool",)) -> dict:
    plan = sweep.validate(sweep.SweepConfig(workload="sum", quick=True, backends=list(references), repeat=3))
    durations = [0.02] * plan.workload.size  # 8 tasks at --quick
    model = MapModel(durations, 2, ClusterCosts(0.005, 0.002, 1.05))
    choice = model.choose()
    sizes = sweep.swept_sizes(plan.workload.size, 2, 10, None, choice.chunksize)
    records = [_record("serial", [0.16, 0.17, 0.165])]
    records += [_record(f"ipp-lbv-chunk{c}", [0.09 + 0.002 * c, 0.1, 0.095], busy=0.17) for c in sizes]
    records += [_record(name, [0.085, 0.09, 0.088]) for name in references]
    return sweep.build_document(plan, durations, PROBE, model, choice, sizes, records, ENVIRONMENT, 1.8e9)


def test_the_document_validates_and_holds_every_size_measured_and_predicted():
    doc = _document()
    assert sweep.validation_errors(doc) == []
    points = doc["points"]
    assert [p["chunksize"] for p in points] == [1, 2, 3, 4]  # 8 tasks on 2 engines: 8, 4, 3 and 2 parts
    assert all(p["backend"] == f"ipp-lbv-chunk{p['chunksize']}" and p["status"] == "ok" for p in points)
    assert all(p["stats"]["median"] > 0 and p["predicted_seconds"] > 0 and p["speedup"] for p in points)
    (auto,) = [p for p in points if p["automatic"]]
    assert auto["chunksize"] == doc["model"]["choice"]["chunksize"] == doc["summary"]["automatic"]["chunksize"]
    assert doc["summary"]["best"]["chunksize"] == 1  # the fake times grow with the chunk size
    assert doc["summary"]["automatic"]["ratio_to_best"] == pytest.approx(auto["stats"]["median"] / points[0]["stats"]["median"])
    assert [c["chunksize"] for c in doc["model"]["curve"]] == chunking.candidate_chunksizes(8, 2)
    assert [r["backend"] for r in doc["references"]] == ["mp-pool"]
    assert doc["workload"]["serial_reference"]["task_seconds"] == [0.02] * 8


def test_the_schema_refuses_what_readers_rely_on():
    doc = _document()
    for path, value in ((("points",), []), (("points", 0, "predicted_seconds"), None),
                        (("points", 0, "automatic"), "yes"), (("summary", "automatic", "near_best"), None),
                        (("model", "probe", "overhead_seconds"), -1)):  # fmt: skip
        broken = copy.deepcopy(doc)
        target = broken
        for key in path[:-1]:
            target = target[key]
        if value is None:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        assert sweep.validation_errors(broken), path
    assert sweep.validation_errors({**doc, "schema": "ipcluster-kit/bench-result"})[0].startswith("not a chunk-size sweep")


def test_a_failed_size_is_reported_not_summarised():
    doc = _document()
    plan = sweep.validate(sweep.SweepConfig(workload="sum", quick=True, repeat=3))
    model = MapModel([0.02] * 8, 2, ClusterCosts(0.005))
    choice = model.choose()
    records = [_record("serial", [0.16, 0.17, 0.165]), _record("ipp-lbv-chunk1", [0.1, 0.1, 0.1])]
    failed = RunRecord("sum", f"ipp-lbv-chunk{choice.chunksize}", 2, error="run failed: boom")
    doc = sweep.build_document(plan, [0.02] * 8, PROBE, model, choice, [1, choice.chunksize], records + [failed],
                               ENVIRONMENT, 1.8e9)  # fmt: skip
    assert sweep.validation_errors(doc) == []
    assert doc["summary"]["automatic"] is None and doc["summary"]["best"]["chunksize"] == 1
    assert sweep.failures(doc) == [f"ipp-lbv-chunk{choice.chunksize}: run failed: boom"]


def test_the_report_marks_the_automatic_choice_and_draws_a_png():
    from rich.console import Console

    doc = _document()
    console = Console(width=200, record=True)
    console.print(sweep_report.table(doc))
    text = console.export_text()
    assert "automatic" in text and "best" in text and "mp-pool" in text
    notes = sweep_report.notes(doc)
    assert any("automatic chunk size" in n and "best swept size 1" in n for n in notes)
    assert any("mp-pool" in n for n in notes)
    assert sweep_report.png(doc)[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_refuses_bad_input_in_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "s.json"
    for args, words in ((["nope"], ["nope"]), (["sum", "--chunks", "1,x"], ["--chunks", "1,x"]),
                        (["sum", "--points", "1"], ["--points"]), (["sum", "--plot", str(tmp_path / "s.txt")], ["--plot"]),
                        (["sum", "-b", "serial"], ["--backend", "serial"])):  # fmt: skip
        one_line_error(run_kit("bench", "sweep", *args, "--json", str(out)), 2, *words)
    assert list(tmp_path.iterdir()) == []
