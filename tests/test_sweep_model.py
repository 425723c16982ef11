"""The chunk model (ipcluster_kit.bench.chunking) without a cluster: how a map is cut and simulated,
which chunk sizes are candidates, and what the automatic choice does with what the probe measured."""

from __future__ import annotations

import math

import pytest

from ipcluster_kit.bench import chunking
from ipcluster_kit.bench.chunking import ClusterCosts, MapModel

# like the primes workload: 1000 tasks growing from ~0 to 2.8 ms
GROWING = [2.8e-3 * (i / 1000) ** 1.5 for i in range(1000)]


def test_simulated_map_of_equal_tasks():
    # 8 tasks of 1 s on 2 engines, 0.1 s overhead per chunk
    assert chunking.simulate_map([1.0] * 8, 2, 1, 0.1) == pytest.approx(4.4)
    assert chunking.simulate_map([1.0] * 8, 2, 2, 0.1) == pytest.approx(4.2)
    assert chunking.simulate_map([1.0] * 8, 2, 8, 0.1) == pytest.approx(8.1)  # one chunk: one engine idles


def test_a_slower_engine_gets_fewer_chunks():
    # engine 1 works at half speed: with chunk size 1 the other engine takes over its share
    assert chunking.simulate_map([1.0] * 6, 2, 1, 0.0, slowdown=[1.0, 2.0]) == pytest.approx(4.0)
    assert chunking.simulate_map([1.0] * 6, 2, 3, 0.0, slowdown=[1.0, 2.0]) == pytest.approx(6.0)
    with pytest.raises(ValueError):
        chunking.simulate_map([1.0] * 6, 2, 1, 0.0, slowdown=[1.0])


def test_chunks_are_cut_as_ipyparallel_cuts_them():
    from ipyparallel.client.map import Map

    bounds = chunking.chunk_bounds(1000, 119)
    assert len(bounds) == 9 and [hi - lo for lo, hi in bounds] == [112] + [111] * 8
    m, seq = Map(), list(range(1000))
    assert [seq[lo:hi] for lo, hi in bounds] == [m.getPartition(seq, p, 9) for p in range(9)]
    assert [hi - lo for lo, hi in chunking.chunk_bounds(1000, 119, "fixed")] == [119] * 8 + [48]


def test_chunk_sizes_with_the_same_parts_are_one_candidate():
    assert chunking.parts_of(16, 5) == chunking.parts_of(16, 4) == 4
    assert chunking.canonical_chunksize(16, 5) == 4
    assert chunking.canonical_chunksize(1000, 119) == 112  # 9 parts
    sizes = chunking.candidate_chunksizes(16, 2)
    assert sizes == [1, 2, 3, 4, 6, 8]  # 16, 8, 6, 4, 3 and 2 parts: up to one chunk per engine
    parts = [chunking.parts_of(1000, c) for c in chunking.candidate_chunksizes(1000, 2)]
    assert len(parts) == len(set(parts)) and max(chunking.candidate_chunksizes(1000, 2)) == 500


def test_many_tasks_get_a_bounded_geometric_grid():
    sizes = chunking.candidate_chunksizes(200_000, 4)
    assert len(sizes) <= chunking.MAX_CANDIDATES
    assert sizes[0] == 1 and sizes[-1] == 50_000
    parts = [chunking.parts_of(200_000, c) for c in sizes]
    assert len(parts) == len(set(parts))
    grid = chunking.geometric_chunksizes(1000, 2, 10)
    assert grid[0] == 1 and grid[-1] == 500 and 6 <= len(grid) <= 10


def test_equal_long_tasks_get_one_chunk_per_engine():
    # the sum workload: 16 tasks of 0.17 s and a 6 ms round trip. The former reserve of four
    # chunks per engine capped this at chunk size 2; now one chunk per engine is a candidate and wins.
    choice = chunking.choose_chunksize([0.17] * 16, 2, ClusterCosts(0.006), speed_spread=0.0)
    assert choice.max_chunksize == 8
    assert choice.chunksize == 8 and choice.parts == 2


def test_short_growing_tasks_get_a_middle_chunk_size():
    choice = chunking.choose_chunksize(GROWING, 2, 5e-3)
    assert 10 <= choice.chunksize < choice.max_chunksize == 500
    model = MapModel(GROWING, 2, ClusterCosts(5e-3))
    assert choice.predicted_seconds < model.predict(1) / 3
    assert choice.predicted_seconds < model.predict(500)  # one chunk per engine leaves the dear half to one
    assert sum(GROWING) / choice.predicted_seconds > 1.6  # the model promises a real speedup


def test_the_choice_is_the_fastest_candidate_whatever_the_pruning():
    for durations, costs in ((GROWING, ClusterCosts(5e-3, 2e-3, 1.1)), ([0.17] * 16, ClusterCosts(6e-3)),
                             ([0.001 * (i % 7) for i in range(300)], ClusterCosts(3e-3))):  # fmt: skip
        model = MapModel(durations, 2, costs)
        choice = model.choose()
        brute = {c: model.predict(c) for c in model.candidates()}
        best = min(brute.values())
        assert choice.predicted_seconds <= best * (1 + chunking.TIE_TOLERANCE)
        assert choice.chunksize == max(c for c, t in brute.items() if t <= best * (1 + chunking.TIE_TOLERANCE))


def test_an_engine_that_may_run_slower_favours_smaller_chunks():
    equal = [0.17] * 16
    steady = chunking.choose_chunksize(equal, 2, ClusterCosts(1e-4), speed_spread=0.0)
    shaky = chunking.choose_chunksize(equal, 2, ClusterCosts(1e-4), speed_spread=0.5)
    assert shaky.chunksize < steady.chunksize
    assert shaky.predicted_seconds > steady.predicted_seconds


def test_latency_and_engine_speed_enter_the_prediction():
    base = MapModel(GROWING, 2, ClusterCosts(5e-3), speed_spread=0.0)
    late = MapModel(GROWING, 2, ClusterCosts(5e-3, latency_seconds=0.05), speed_spread=0.0)
    slow = MapModel(GROWING, 2, ClusterCosts(5e-3, engine_speed=1.5), speed_spread=0.0)
    for c in (1, 40, 500):
        assert late.predict(c) == pytest.approx(base.predict(c) + 0.05)
        assert slow.predict(c) > base.predict(c)
    # slower engines make the work dearer and each round trip relatively cheaper: more, smaller chunks
    assert slow.choose().chunksize < base.choose().chunksize


def test_noise_in_identical_tasks_does_not_decide_the_chunk_size():
    noisy = [0.17 * f for f in (1.0, 1.2, 0.9, 1.1, 1.0, 0.95, 1.25, 1.0, 0.9, 1.15, 1.0, 1.05, 0.9, 1.2, 1.0, 1.1)]
    assert chunking.smooth([1, 9, 1, 1, 1]) == pytest.approx([2.6] * 5)  # the spike spread, the total kept
    smooth = chunking.choose_chunksize([0.17 * 1.05] * 16, 2, 0.008)
    assert chunking.choose_chunksize(noisy, 2, 0.008).chunksize == smooth.chunksize


def test_smoothing_keeps_the_measured_work_of_skewed_durations():
    from ipcluster_kit.bench.hetero import exponential_durations

    durations = exponential_durations(80, 0.015, seed=0)
    smoothed = chunking.smooth(durations)
    assert sum(smoothed) == pytest.approx(sum(durations))  # a bare running median loses ~15% here
    model = MapModel(durations, 2, ClusterCosts(0.0), speed_spread=0.0)
    assert model.predict(40) >= sum(durations) / 2  # never less than the work shared perfectly


def test_the_serial_reference_keeps_each_tasks_shorter_time():
    import time

    from ipcluster_kit.bench.measure import serial_reference
    from ipcluster_kit.bench.workloads import Workload

    calls = []

    def task(x):  # the first pass of task 1 is disturbed (other work on the machine)
        calls.append(x)
        if x == 1 and calls.count(1) == 1:
            time.sleep(0.05)
        return x * 2

    ref = serial_reference(Workload("t", task, [0, 1, 2], "three tasks"), passes=2)
    assert ref.results == [0, 2, 4] and calls == [0, 1, 2, 0, 1, 2]
    assert ref.task_seconds[1] < 0.05
    calls.clear()
    assert serial_reference(Workload("t", task, [0, 1, 2], "three tasks")).task_seconds[1] >= 0.05  # one pass


def test_bad_costs_are_refused():
    for bad in (dict(overhead_seconds=-1.0), dict(overhead_seconds=math.nan), dict(overhead_seconds=0.0, latency_seconds=math.inf),
                dict(overhead_seconds=0.0, engine_speed=0.0)):  # fmt: skip
        with pytest.raises(ValueError):
            ClusterCosts(**bad)
    with pytest.raises(ValueError):
        MapModel([], 2, ClusterCosts(0.0))
    with pytest.raises(ValueError):
        MapModel([1.0], 0, ClusterCosts(0.0))


def test_closed_form_without_durations():
    choice = chunking.choose_chunksize(None, 2, 0.005, n=1000, mean_task_seconds=0.0014)
    expected = math.sqrt(2 * 1000 * 0.005 / (2 * 0.0014))
    assert choice.method == "closed-form" and choice.chunksize == round(expected)
    assert chunking.choose_chunksize(None, 2, 10.0, n=16, mean_task_seconds=1e-6).chunksize == 8  # clipped at n / E


def test_direct_view_blocks_follow_ipyparallel_partition():
    from ipyparallel.client.map import Map

    durations = [float(i) for i in range(11)]
    shares = chunking.dv_block_shares(durations, 3)
    m = Map()
    expected = [sum(m.getPartition(durations, p, 3)) / sum(durations) for p in range(3)]
    assert shares == pytest.approx(expected)


def test_engine_speed_is_the_shortest_round_mean_not_the_luckiest_task():
    from ipcluster_kit.bench.probe import side_by_side_speed

    # the calibration samples of a quiet sweep of sum (ms): one engine's lucky 38.5 ms task would
    # put the engines at 0.92x serial speed; the map then measured 1.02x
    rounds = [[60.3, 69.1], [68.1, 41.9], [45.5, 44.8], [45.0, 38.5]]
    speed = side_by_side_speed(rounds, handling=[0.4, 0.5], here=[46.8, 43.0, 41.8, 41.8])
    assert speed == pytest.approx((41.75 - 0.4) / 41.8)
    assert side_by_side_speed([], [0.4], [41.8]) == 1.0
    assert side_by_side_speed([[0.1]], [0.4], [41.8]) == 1.0  # handling longer than the task: unmeasurable
