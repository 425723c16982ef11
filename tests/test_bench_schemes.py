"""The scheme shoot-out without clusters: heterogeneous tasks and their bound, combinations, the
user's function, reading the controller, the recommendation and its ties, the pure caveat, init's
`auto`, bad input (end to end: tests/test_bench_schemes_e2e.py)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from helpers import HEAVY_MODULES, modules_loaded_by, one_line_error, run_kit
from ipcluster_kit.bench import hetero
from ipcluster_kit.bench import failures
from ipcluster_kit.bench.shootout import controller, plan, recommend, userfunc
from ipcluster_kit.bench.shootout import run as srun
from ipcluster_kit.errors import BadInput
from ipcluster_kit.profile.spec import PURE_TRADEOFFS, SCHEMES

# --- heterogeneous tasks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "durations, engines, bound",
    [
        ([1.0, 1.0, 1.0, 1.0], 2, 2.0),  # the sum dominates
        ([5.0, 1.0, 1.0, 1.0], 2, 5.0),  # the longest task dominates
        ([0.3, 0.2, 0.1], 1, 0.6),  # one engine: the sum
        ([0.3, 0.2, 0.1], 8, 0.3),  # more engines than tasks: the longest
        ([2.0, 2.0, 2.0], 3, 2.0),  # both equal
        ([], 2, 0.0),
    ],
)
def test_lower_bound_is_the_larger_of_the_even_share_and_the_longest_task(durations, engines, bound):
    assert hetero.lower_bound(durations, engines) == pytest.approx(bound)


def test_lower_bound_needs_an_engine():
    with pytest.raises(ValueError):
        hetero.lower_bound([1.0], 0)


def test_durations_are_exponential_and_reproducible():
    a = hetero.exponential_durations(2000, 0.02, seed=7)
    assert a == hetero.exponential_durations(2000, 0.02, seed=7)
    assert a != hetero.exponential_durations(2000, 0.02, seed=8)
    assert all(d > 0 for d in a)
    assert sum(a) / len(a) == pytest.approx(0.02, rel=0.1)
    # exponential: the median is mean * ln 2
    assert sorted(a)[1000] == pytest.approx(0.02 * 0.6931, rel=0.15)


@pytest.mark.parametrize("count, mean, words", [(0, 0.01, "--hetero-tasks 0"), (5, 0.0, "--hetero-mean 0.0"),
                                                (5, -1.0, "--hetero-mean -1.0"), (5, float("nan"), "--hetero-mean nan")])
def test_bad_durations_are_bad_input(count, mean, words):
    with pytest.raises(BadInput, match=f"invalid {words}"):
        hetero.exponential_durations(count, mean)


@pytest.mark.parametrize("kind", hetero.TASK_KINDS)
def test_hetero_tasks_return_their_index_and_run_their_duration(kind):
    workload = hetero.hetero_workload(6, 0.003, seed=1, kind=kind)
    durations = hetero.durations_of(workload)
    assert durations == hetero.exponential_durations(6, 0.003, seed=1)
    results = workload.run_serial()
    assert [r[0] for r in results] == list(range(6))
    assert all(r[1] >= d for r, d in zip(results, durations))
    assert {r[2] for r in results} == {os.getpid()}
    assert hetero.check_results(results, durations) is None
    assert hetero.work_per_engine(results) == [pytest.approx(sum(r[1] for r in results))]


def test_cpu_tasks_burn_cpu_time_not_wall_time():
    start_cpu, start = time.thread_time(), time.perf_counter()
    hetero.burn_cpu(0.02)
    assert time.thread_time() - start_cpu >= 0.02
    assert time.perf_counter() - start >= 0.02


def test_wrong_hetero_results_are_caught():
    durations = [0.01, 0.02, 0.03]
    good = [(0, 0.011, 1), (1, 0.021, 2), (2, 0.031, 1)]
    assert hetero.check_results(good, durations) is None
    assert "2 results for 3" in hetero.check_results(good[:2], durations)
    assert "result of task 2" in hetero.check_results([good[0], good[2], good[1]], durations)
    assert "shorter than" in hetero.check_results([good[0], (1, 0.001, 2), good[2]], durations)
    assert "not (index, seconds, pid)" in hetero.check_results([good[0], 7, good[2]], durations)
    assert hetero.work_per_engine(good) == [pytest.approx(0.042), pytest.approx(0.021)]


def test_unknown_task_kind_is_bad_input():
    with pytest.raises(BadInput, match="busy"):
        hetero.hetero_workload(3, 0.01, kind="busy")


# --- combinations and configuration -------------------------------------------------------------


def test_default_combinations_run_pure_once():
    combos = plan.combinations()
    assert len(combos) == 11
    assert [(c.scheme, c.hwm) for c in combos if c.scheme == "pure"] == [("pure", None)]
    assert {c.scheme for c in combos} == set(SCHEMES)
    assert [(c.scheme, c.hwm) for c in combos[:2]] == [("lru", 1), ("lru", 0)]
    assert combos[-1].label == "pure (hwm n/a)" and combos[2].label == "leastload, hwm=1"


def test_combinations_keep_order_and_drop_duplicates():
    combos = plan.combinations(["pure", "weighted", "pure"], [0, 2, 0])
    assert [(c.scheme, c.hwm) for c in combos] == [("pure", None), ("weighted", 0), ("weighted", 2)]


@pytest.mark.parametrize("schemes, hwms, word", [(["fastest"], None, "'fastest'"), (["lru"], [-1], "-1"),
                                                 (["schemename"], [1], "schemename")])  # fmt: skip
def test_bad_combinations_are_bad_input(schemes, hwms, word):
    with pytest.raises(BadInput, match=word):
        plan.combinations(schemes, hwms)


def test_quick_means_small_sizes_three_repeats_no_warmup():
    got = plan.validate(plan.ShootoutConfig(quick=True, engines=2))
    assert (got.repeat, got.warmup, got.sizes) == (3, 0, plan.QUICK_SIZES)
    assert [w.name for w in got.workloads] == ["overhead", "hetero", "sum", "primes"]
    got = plan.validate(plan.ShootoutConfig(workloads=["hetero"], hetero_tasks=7, hetero_mean=0.5, seed=3, engines=3))
    (w,) = got.workloads
    assert (got.repeat, got.warmup, w.size, got.engines) == (5, 1, 7, 3)
    assert hetero.durations_of(w) == hetero.exponential_durations(7, 0.5, 3)


@pytest.mark.parametrize(
    "changes, word",
    [
        ({"repeat": 0}, "--repeat"), ({"warmup": -1}, "--warmup"), ({"engines": 0}, "--engines"),
        ({"timeout": 0}, "--timeout"), ({"hetero_tasks": 0}, "--hetero-tasks"), ({"hetero_mean": 0}, "--hetero-mean"),
        ({"task_kind": "spin"}, "--task-kind"), ({"args_file": "x.json"}, "--function"),
        ({"workloads": ["fibonacci"]}, "fibonacci"), ({"function": "no colon"}, "module:function"),
        ({"function": "json:dumps"}, "--args"), ({"tasks": 0}, "--tasks"), ({"sum_n": 0}, "--sum-n 0"),
        ({"hetero_mean": float("nan")}, "--hetero-mean nan"), ({"hetero_mean": 61}, "at most 60"),
        ({"cluster_timeout": float("inf")}, "--cluster-timeout inf"), ({"timeout": -1}, "--timeout -1"),
        ({"hwms": [-1]}, "--hwm -1"), ({"schemes": ["fastest"]}, "'fastest'"),
    ],
)  # fmt: skip
def test_bad_configuration_is_bad_input(changes, word):
    with pytest.raises(BadInput, match=word):
        plan.validate(plan.ShootoutConfig(**changes))


# --- the user's function ------------------------------------------------------------------------


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A module usertasks_<id> in a directory that is the current one (as a user's would be)."""
    name = f"usertasks_{os.getpid()}_{abs(hash(str(tmp_path))) % 10**6}"
    (tmp_path / f"{name}.py").write_text(
        "def work(x):\n"
        "    if x == 3:\n"
        "        raise ValueError(f'bad input {x}')\n"
        "    return x * x\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield name
    sys.modules.pop(name, None)


def test_args_from_json_and_from_python(tmp_path):
    (tmp_path / "a.json").write_text("[1, [2, 3], {\"k\": 4}]")
    assert userfunc.load_args(tmp_path / "a.json") == [1, [2, 3], {"k": 4}]
    (tmp_path / "a.py").write_text("ARGS = [n * 10 for n in range(4)]\n")
    assert userfunc.load_args(tmp_path / "a.py") == [0, 10, 20, 30]
    (tmp_path / "r.py").write_text("ARGS = range(3)\n")
    assert userfunc.load_args(tmp_path / "r.py") == [0, 1, 2]


@pytest.mark.parametrize(
    "name, text, word",
    [
        ("missing.json", None, "no such file"),
        ("obj.json", '{"args": [1]}', "not a list"),
        ("empty.json", "[]", "empty"),
        ("broken.json", "[1, 2", "not valid JSON"),
        ("noargs.py", "X = [1]\n", "no ARGS"),
        ("dict.py", "ARGS = {1: 2}\n", "not a list"),
        ("raises.py", "raise RuntimeError('nope')\n", "RuntimeError"),
    ],
)
def test_bad_args_files_are_bad_input(tmp_path, name, text, word):
    if text is not None:
        (tmp_path / name).write_text(text)
    with pytest.raises(BadInput, match=word) as info:
        userfunc.load_args(tmp_path / name)
    assert name in info.value.message


def test_a_function_from_the_current_directory(tmp_path, user_module):
    (tmp_path / "args.json").write_text("[1, 2]")
    user = userfunc.load_user_function(f"{user_module}:work", "args.json")
    assert user.func(2) == 4 and user.args == [1, 2]
    assert user.module_dir == str(tmp_path.resolve())
    assert user.workload().name == "user" and user.workload().size == 2


@pytest.mark.parametrize("spec, word", [("nosuchmodule_xyz:f", "cannot import"), ("{mod}:nothing", "no function 'nothing'"),
                                        ("{mod}", "module:function"), ("{mod}:work:x", "module:function")])  # fmt: skip
def test_bad_functions_are_bad_input(tmp_path, user_module, spec, word):
    (tmp_path / "args.json").write_text("[1]")
    with pytest.raises(BadInput, match=word):
        userfunc.load_user_function(spec.format(mod=user_module), "args.json")


def test_remote_errors_are_summarised_with_their_traceback():
    from ipyparallel import error

    tb = ("\x1b[31m-----\x1b[39m\n\x1b[31mValueError\x1b[39m   Traceback (most recent call last)\n"
          "\x1b[36mFile \x1b[39m\x1b[32m/x/ipyparallel/engine/kernel.py:157\x1b[39m, in \x1b[36mdo_apply\x1b[39m(self)\n"
          "\x1b[36mFile \x1b[39m\x1b[32m/home/u/mytasks.py:12\x1b[39m, in \x1b[36msimulate\x1b[39m\x1b[34m(x)\x1b[39m\n"
          "\x1b[32m---> 12\x1b[39m     raise ValueError('bad input 3')\n\n"
          "\x1b[31mValueError\x1b[39m: bad input 3")  # fmt: skip
    single = error.RemoteError("ValueError", "bad input 3", tb, {"engine_id": 1})
    summary, lines = failures.remote_error_summary(single)
    assert summary == "ValueError: bad input 3 (mytasks.py:12 in simulate) on engine 1"
    assert lines[-1] == "ValueError: bad input 3" and not any("\x1b" in line for line in lines)
    composite = error.CompositeError("one or more exceptions", [("ValueError", "bad input 3", tb, {"engine_id": 0})] * 2)
    summary, lines = failures.remote_error_summary(composite)
    assert summary == "ValueError: bad input 3 (mytasks.py:12 in simulate) on engine 0; 2 task(s) failed"
    assert failures.remote_error_summary(OSError("boom"))[0] == "OSError: boom"


# --- reading the controller back ----------------------------------------------------------------


@pytest.mark.parametrize(
    "log, scheme",
    [
        ("2026-01-01 [IPController] task::using Python weighted Task scheduler\n2026-01-01 [task] Task scheduler started [weighted]\n", "weighted"),
        ("2026-01-01 [IPController] WARNING | task::using pure DEALER Task scheduler\n", "pure"),
        ("2026-01-01 [IPController] Hub listening on tcp://127.0.0.1:5\n", None),
    ],
)  # fmt: skip
def test_the_scheme_is_read_from_the_scheduler_log_line(log, scheme):
    assert controller.scheme_from_log(log)[0] == scheme


class _FakeCluster:
    def __init__(self, root: Path, file_scheme: str, log_text: str):
        self.profile_dir = root
        self.client_file = root / "security" / "ipcontroller-client.json"
        self.client_file.parent.mkdir(parents=True)
        self.client_file.write_text(json.dumps({"task_scheme": file_scheme}))
        (root / "log").mkdir()
        (root / "log" / "kit-controller.log").write_text(log_text)


def test_read_back_reports_what_the_controller_says_not_what_was_asked(tmp_path):
    cluster = _FakeCluster(tmp_path, "leastload", "x [task] Task scheduler started [lru]\n")
    got = controller.read_back_scheme(cluster, wait=0.1)
    assert (got["task_scheme"], got["log_scheme"]) == ("leastload", "lru")
    assert got["log_line"] == "x [task] Task scheduler started [lru]"


class _ScriptedClient:
    """queue_status() answers from a script (the last answer repeats); map() returns at once."""

    def __init__(self, script: list[dict]):
        self.script = list(script)

    def queue_status(self):
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def load_balanced_view(self):
        return self

    def map(self, *args, **kwargs):
        return self

    def get(self, timeout=None):
        return []


def _status(unassigned: int, *tasks: int, completed: int = 0) -> dict:
    return {"unassigned": unassigned, **{i: {"queue": 0, "completed": completed, "tasks": t} for i, t in enumerate(tasks)}}


def test_hwm_probe_confirms_a_limit_of_one():
    # before submission; the hub has not seen every task yet; then 1 per engine and 2 held back
    client = _ScriptedClient([_status(0, 0, 0), _status(0, 1, 0), _status(2, 1, 1)])
    got = controller.probe_hwm_once(client, 1, 2, timeout=1, task_seconds=1.0)
    assert got["consistent"] and got["max_outstanding_per_engine"] == 1 and got["unassigned"] == 2 and got["tasks"] == 4


def test_hwm_probe_sees_no_limit_with_hwm_0_and_a_limit_that_is_not_there():
    assert controller.probe_hwm_once(_ScriptedClient([_status(0, 0, 0), _status(0, 3, 1)]), 0, 2, 1, 1.0)["consistent"]
    # hwm=1 asked, but every task was handed out at once: not what hwm=1 does
    got = controller.probe_hwm_once(_ScriptedClient([_status(0, 0, 0), _status(0, 2, 2)]), 1, 2, 1, 0.2)
    assert not got["consistent"]
    # a task finished before the hub reported them all: no usable reading
    got = controller.probe_hwm_once(_ScriptedClient([_status(0, 0, 0), _status(1, 1, 0, completed=1)]), 1, 2, 1, 1.0)
    assert got["readings"] == 0 and not got["consistent"]


# --- recommendation and ties --------------------------------------------------------------------


def _doc(workload: str, samples: dict[tuple[str, int | None], list[float]], *, tasks: int = 100, bound: float | None = None) -> dict:
    """A complete, schema-valid shoot-out document with one workload and the given timings per (scheme, hwm)."""
    from ipcluster_kit.bench import results
    from ipcluster_kit.bench.measure import RunRecord

    combos = []
    for (scheme, hwm), secs in samples.items():
        combo = plan.Combination(scheme, hwm)
        run = results.run_entry(RunRecord(workload, "ipp-lbv-chunk1", 2, params={"chunksize": 1}, seconds=list(secs),
                                          foreign_cpus=[None] * len(secs), details=[None] * len(secs)), None, tasks)  # fmt: skip
        run.update({"scheme": scheme, "hwm": hwm, "combination": combo.label, "traceback": None, "makespan_ratio": None,
                    "lower_bound_seconds": bound})  # fmt: skip
        combos.append({"label": combo.label, "scheme": scheme, "hwm": hwm, "status": "ok", "error": None, "controller": None,
                       "hwm_probe": None, "bringup_seconds": 1.0, "registration_gap_seen": False, "engine_ids": [0, 1],
                       "seconds": 5.0, "runs": [run]})  # fmt: skip
    schemes = list(dict.fromkeys(scheme for scheme, _ in samples))
    doc = {
        **results.header(recommend.KIND, 0.0, ["ipcluster-kit", "bench", "schemes"]),
        "config": {"workloads": [workload], "schemes": schemes, "hwms": [1, 0], "combinations": [c["label"] for c in combos],
                   "engines": 2, "repeat": 5, "warmup": 1, "quick": False, "sizes": {}, "task_kind": "cpu", "seed": 0,
                   "function": None, "args_file": None, "chunksize": 1, "timeout_seconds": 600.0},
        "statistics": {**results.statistics_block(), **srun.STATISTICS},
        "defaults": {"scheme": "leastload", "hwm": 1},
        "environment": {**results.environment(None, "none", 2, [0.0] * 3, [0.0] * 3)},
        "workloads": [{"name": workload, "title": recommend.TITLES[workload], "description": "d", "tasks": tasks,
                       "serial_reference": None, "lower_bound_seconds": bound}],
        "combinations": combos,
        "notes": [],
        "recommendations": [],
        "recommended": None,
        "total_seconds": 60.0,
    }  # fmt: skip
    doc["recommendations"] = recommend.recommendations(doc)
    doc["recommended"] = recommend.overall(doc)
    assert recommend.validation_errors(doc) == []
    return doc


def test_a_clear_winner_is_recommended_with_ratio_and_percentage():
    doc = _doc("hetero", {("leastload", 1): [1.27, 1.26, 1.28, 1.29, 1.25], ("weighted", 0): [1.16, 1.15, 1.17, 1.18, 1.16],
                          ("lru", 1): [1.40, 1.41, 1.39, 1.42, 1.38]}, bound=1.0)  # fmt: skip
    (rec,) = doc["recommendations"]
    assert rec["verdict"] == "better" and rec["chosen"] == {"scheme": "weighted", "hwm": 0, "label": "weighted, hwm=0"}
    assert rec["difference_percent"] == pytest.approx((1 - 1.16 / 1.27) * 100)
    assert rec["line"] == ("for heterogeneous tasks: weighted, hwm=0, 1.16x of the bound [1.15–1.18], 9% better than the"
                           " default leastload, hwm=1 (1.27x [1.25–1.29])")  # fmt: skip
    assert doc["recommended"]["scheme"] == "weighted" and doc["recommended"]["hwm"] == 0


def test_overlapping_intervals_are_a_tie_and_keep_the_default():
    doc = _doc("sum", {("leastload", 1): [1.00, 1.10, 1.05, 0.97, 1.20], ("twobin", 0): [0.98, 1.02, 0.95, 1.08, 1.00]})
    (rec,) = doc["recommendations"]
    assert rec["verdict"] == "tie" and rec["best"]["label"] == "twobin, hwm=0"
    assert rec["chosen"]["scheme"] == "leastload" and rec["chosen"]["hwm"] == 1
    assert "tie with the default (within noise)" in rec["line"] and rec["line"].startswith("for sum: twobin, hwm=0 is fastest")


def test_throughput_is_reported_in_tasks_per_second():
    doc = _doc("overhead", {("leastload", 1): [0.25] * 5, ("pure", None): [0.2, 0.21, 0.2, 0.19, 0.2]}, tasks=100)
    (rec,) = doc["recommendations"]
    assert rec["verdict"] == "better" and rec["chosen"] == {"scheme": "pure", "hwm": None, "label": "pure (hwm n/a)"}
    assert rec["difference_percent"] == pytest.approx(25.0)
    assert rec["line"] == ("for no-op throughput: pure (hwm n/a), 500 tasks/s [476–526], 25% more tasks/s than the default"
                           f" leastload, hwm=1 (400/s [400–400]); pure gives up {PURE_TRADEOFFS}")  # fmt: skip


def test_the_default_can_be_best_and_others_within_noise_are_named():
    doc = _doc("primes", {("leastload", 1): [0.50, 0.52, 0.51], ("lru", 0): [0.53, 0.50, 0.55], ("weighted", 1): [0.9, 0.95, 0.92]})
    (rec,) = doc["recommendations"]
    assert rec["verdict"] == "default-best" and rec["within_noise_of_best"] == ["lru, hwm=0"]
    assert rec["chosen"]["scheme"] == "leastload" and "1 other(s) within noise (lru, hwm=0)" in rec["line"]


def test_too_few_repeats_are_inconclusive_and_keep_the_default():
    doc = _doc("sum", {("leastload", 1): [1.0], ("lru", 1): [0.5]})
    (rec,) = doc["recommendations"]
    assert rec["verdict"] == "inconclusive" and rec["chosen"]["scheme"] == "leastload"
    assert "cannot tell them apart" in rec["line"]


def test_without_the_default_the_best_is_recommended():
    doc = _doc("sum", {("lru", 0): [1.0, 1.1, 1.0], ("twobin", 1): [2.0, 2.1, 2.0]})
    (rec,) = doc["recommendations"]
    assert rec["verdict"] == "no-default" and rec["chosen"]["scheme"] == "lru" and "was not measured" in rec["line"]


def test_failed_runs_are_not_candidates():
    doc = _doc("sum", {("leastload", 1): [1.0, 1.0, 1.0], ("lru", 1): [0.1, 0.1, 0.1]})
    doc["combinations"][1]["runs"][0].update(status="failed", stats=None)
    (rec,) = recommend.recommendations(doc)
    assert rec["best"]["label"] == "leastload, hwm=1" and rec["verdict"] == "default-best"


def test_recommended_workload_order_prefers_the_users_function_then_hetero():
    doc = _doc("sum", {("leastload", 1): [1.0, 1.0, 1.0], ("lru", 1): [0.5, 0.5, 0.5]})
    hetero_doc = _doc("hetero", {("leastload", 1): [1.0, 1.0, 1.0], ("weighted", 0): [0.5, 0.5, 0.5]}, bound=0.4)
    doc["workloads"] += hetero_doc["workloads"]
    doc["recommendations"] += hetero_doc["recommendations"]
    assert recommend.overall(doc)["workload"] == "hetero" and recommend.overall(doc)["scheme"] == "weighted"
    assert recommend.overall(doc, "sum")["scheme"] == "lru"


# --- reading a result file for init ---------------------------------------------------------------


def _write(tmp_path: Path, doc: dict, name: str = "shootout.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_recommended_from_file(tmp_path):
    doc = _doc("hetero", {("leastload", 1): [1.3, 1.31, 1.29], ("pure", None): [1.1, 1.11, 1.09]}, bound=1.0)
    path = _write(tmp_path, doc)
    assert recommend.recommended_from_file(path) == ("pure", None)
    assert recommend.recommended_from_file(path, "hetero") == ("pure", None)
    with pytest.raises(BadInput, match="no successful 'sum' result"):
        recommend.recommended_from_file(path, "sum")
    # init: auto takes both; an explicit --hwm wins; a plain scheme passes through
    assert recommend.resolve_auto_scheme("auto", None, path)[:2] == ("pure", None)
    assert recommend.resolve_auto_scheme(None, 4, path)[:2] == ("pure", 4)
    assert recommend.resolve_auto_scheme("lru", 0, None) == ("lru", 0, None)
    note = recommend.resolve_auto_scheme("auto", None, path)[2]
    assert note.startswith(f"scheme from {path} (hetero): ") and "pure gives up no hwm" in note and "engine-id gap" in note
    with pytest.raises(BadInput, match="--from-bench FILE"):
        recommend.resolve_auto_scheme("auto", None, None)
    with pytest.raises(BadInput, match="--bench-workload primes .* give --from-bench too"):
        recommend.resolve_auto_scheme(None, None, None, "primes")
    with pytest.raises(BadInput, match="not --scheme lru"):
        recommend.resolve_auto_scheme("lru", None, path)


def test_the_reference_result_under_the_former_name_is_read():
    reference = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "schedulers.json"
    doc = recommend.load(reference)
    assert doc["schema"] == "ipcluster-kit/bench-schedulers" and len(doc["combinations"]) == 11
    assert recommend.recommended_from_file(reference) == (doc["recommended"]["scheme"], doc["recommended"]["hwm"])


@pytest.mark.parametrize(
    "content, word",
    [
        ("not json", "not valid JSON"),
        (json.dumps({"schema": "ipcluster-kit/bench-result", "schema_version": 1}), "not a scheme shoot-out result"),
        (json.dumps({"schema": recommend.SCHEMA_NAME, "schema_version": 99}), "schema_version 99"),
        (json.dumps({"schema": recommend.SCHEMA_NAME, "schema_version": 1}), "'created' is a required property"),
        (json.dumps([1, 2]), "not a JSON object"),
    ],
)
def test_a_file_that_is_not_a_shootout_is_bad_input(tmp_path, content, word):
    path = tmp_path / "other.json"
    path.write_text(content)
    with pytest.raises(BadInput, match=word) as info:
        recommend.recommended_from_file(path)
    assert "other.json" in info.value.message
    with pytest.raises(BadInput, match="cannot read"):
        recommend.recommended_from_file(tmp_path / "absent.json")


# --- the CLI: bad input and light imports --------------------------------------------------------


@pytest.mark.parametrize(
    "args, words",
    [
        (["--scheme", "fastest"], ["'fastest'", "leastload"]),
        (["--hwm", "-1"], ["-1"]),
        (["--function", "nocolon", "--args", "x.json"], ["module:function"]),
        (["--function", "json:dumps"], ["--args"]),
        (["--function", "json:dumps", "--args", "/nonexistent/a.json"], ["/nonexistent/a.json"]),
        (["--plot", "out.svg"], ["out.svg", "PNG"]),
        (["--json", "/nonexistent/dir/out.json"], ["/nonexistent/dir"]),
        (["--task-kind", "spin"], ["spin"]),
        (["fibonacci"], ["fibonacci"]),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2_before_any_cluster(args, words, tmp_path):
    one_line_error(run_kit("bench", "schemes", *args, cwd=tmp_path, timeout=60), 2, *words)
    assert not list(tmp_path.iterdir())


def test_register_is_idempotent():
    import typer

    from ipcluster_kit.cli import bench_schemes

    app = typer.Typer()
    bench_schemes.register(app)
    bench_schemes.register(app)
    assert [(c.name, c.hidden) for c in app.registered_commands] == [("schemes", False), ("schedulers", True)]


# --- init --scheme auto --from-bench, and the pure warning -------------------------------------


def test_init_scheme_auto_writes_the_recommended_scheme_and_hwm(tmp_path, ipython_dir):
    doc = _doc("hetero", {("leastload", 1): [1.3, 1.31, 1.29], ("weighted", 0): [1.1, 1.11, 1.09]}, bound=1.0)
    path = _write(tmp_path, doc)
    result = run_kit("init", "auto1", "--scheme", "auto", "--from-bench", str(path), "--ipython-dir", str(ipython_dir), check=True)
    config = (ipython_dir / "profile_auto1" / "ipcontroller_config.py").read_text()
    assert "c.TaskScheduler.scheme_name = 'weighted'" in config and "c.TaskScheduler.hwm = 0" in config
    assert f"scheme from {path} (hetero): for heterogeneous tasks: weighted, hwm=0" in " ".join(result.stdout.split())
    assert "pure" not in result.stdout + result.stderr
    # a tie keeps ipyparallel's default, even when the fastest was pure; --scheduler is still accepted
    tie = _doc("hetero", {("leastload", 1): [1.3, 1.2, 1.25], ("pure", None): [1.22, 1.19, 1.3]}, bound=1.0)
    run_kit("init", "auto2", "--scheduler", "auto", "--from-bench", str(_write(tmp_path, tie, "tie.json")),
            "--ipython-dir", str(ipython_dir), check=True)  # fmt: skip
    config = (ipython_dir / "profile_auto2" / "ipcontroller_config.py").read_text()
    assert "c.TaskScheduler.scheme_name = 'leastload'" in config and "c.TaskScheduler.hwm = 1" in config
    # bad input: one line, exit 2, nothing written
    one_line_error(run_kit("init", "auto3", "--scheme", "auto", "--ipython-dir", str(ipython_dir)), 2, "--from-bench")
    (tmp_path / "bench.json").write_text(json.dumps({"schema": "ipcluster-kit/bench-result", "schema_version": 1}))
    one_line_error(run_kit("init", "auto4", "--scheme", "auto", "--from-bench", str(tmp_path / "bench.json"),
                           "--ipython-dir", str(ipython_dir)), 2, "bench.json", "not a scheme shoot-out")  # fmt: skip
    assert not (ipython_dir / "profile_auto3").exists() and not (ipython_dir / "profile_auto4").exists()


def test_pure_is_never_recommended_without_what_it_gives_up(tmp_path, ipython_dir):
    # pure clearly best: recommended, with the three things it gives up, in the document and by init
    doc = _doc("hetero", {("leastload", 1): [1.3, 1.31, 1.29, 1.3, 1.32], ("pure", None): [1.1, 1.11, 1.09, 1.1, 1.12]}, bound=1.0)
    (rec,) = doc["recommendations"]
    assert rec["verdict"] == "better" and rec["chosen"]["scheme"] == "pure"
    for words in ("no hwm", "crashed engine", "engine-id gap"):
        assert words in rec["line"] and words in doc["recommended"]["line"]
    result = run_kit("init", "p1", "--scheme", "auto", "--from-bench", str(_write(tmp_path, doc)),
                     "--ipython-dir", str(ipython_dir), check=True)  # fmt: skip
    assert "c.TaskScheduler.scheme_name = 'pure'" in (ipython_dir / "profile_p1" / "ipcontroller_config.py").read_text()
    assert "engine-id gap" in " ".join(result.stdout.split())
    warning = [line for line in result.stderr.splitlines() if "pure scheme" in line]
    assert len(warning) == 1 and "no hwm" in warning[0] and "crashed engine" in warning[0], result.stderr
    # a tie with pure fastest keeps the default and names no caveat: pure is not what is recommended
    tie = _doc("hetero", {("leastload", 1): [1.3, 1.2, 1.25], ("pure", None): [1.22, 1.19, 1.3]}, bound=1.0)
    (rec,) = tie["recommendations"]
    assert rec["verdict"] == "tie" and rec["best"]["scheme"] == "pure" and rec["chosen"]["scheme"] == "leastload"
    assert "gives up" not in rec["line"] and "tie with the default" in rec["line"]


@pytest.mark.parametrize("argv", [["--scheme", "pure"], ["--scheduler", "pure"], ["--scheme", "pure", "--json"]])
def test_init_scheme_pure_warns_in_one_line(argv, ipython_dir):
    result = run_kit("init", "p", *argv, "--ipython-dir", str(ipython_dir), "--force", check=True)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "warning:" in lines[0] and "uses the pure scheme" in lines[0], result.stderr
    assert all(words in lines[0] for words in ("no hwm", "crashed engine", "engine-id gap", "leastload"))
    if "--json" in argv:
        assert json.loads(result.stdout)["warnings"] == [lines[0].split("warning: ", 1)[1]]
    quiet = run_kit("init", "q", "--scheme", "lru", "--ipython-dir", str(ipython_dir), "--force", check=True)
    assert "pure" not in quiet.stderr and "warning" not in quiet.stderr


def test_the_former_command_name_is_a_hidden_alias():
    one_line_error(run_kit("bench", "schedulers", "--scheme", "fastest"), 2, "'fastest'")
    listed = run_kit("bench", "--help", env={"COLUMNS": "200"}, check=True).stdout
    assert "schemes" in listed and "schedulers" not in listed


def test_init_scheme_auto_imports_only_the_recommendation(tmp_path, ipython_dir):
    path = _write(tmp_path, _doc("hetero", {("leastload", 1): [1.3, 1.31, 1.29], ("weighted", 0): [1.1, 1.11, 1.09]}, bound=1.0))
    argv = ["init", "light", "--scheme", "auto", "--from-bench", str(path), "--ipython-dir", str(ipython_dir)]
    loaded, _ = modules_loaded_by(argv, ("ipcluster_kit.bench", *HEAVY_MODULES))
    assert loaded == ["ipcluster_kit.bench", "ipcluster_kit.bench.shootout", "ipcluster_kit.bench.shootout.recommend"]
    assert "scheme_name = 'weighted'" in (ipython_dir / "profile_light" / "ipcontroller_config.py").read_text()
