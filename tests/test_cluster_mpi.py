"""Engines as one MPI world on this machine (`init --preset mpi`): ranks, status, down of the whole tree."""

from __future__ import annotations

import json
import shlex
import sys

import pytest

from helpers import run_kit
from ipcluster_kit.processes import find_by_argument

pytestmark = pytest.mark.e2e


def _rank_pid_size():
    import os

    from mpi4py import MPI

    return MPI.COMM_WORLD.Get_rank(), os.getpid(), MPI.COMM_WORLD.Get_size()


def test_mpi_engines_report_ranks_and_down_stops_the_whole_world(ipython_dir):
    import ipyparallel as ipp

    from ipcluster_kit.cluster.enginesets.mpi import find_mpiexec

    kit = ["--ipython-dir", str(ipython_dir)]
    run_kit("init", "world", "--preset", "mpi", "--engines", "3", *kit, check=True)
    profile_dir = ipython_dir / "profile_world"
    plan = json.loads(run_kit("up", "world", "--dry-run", "--json", *kit, check=True).stdout)
    assert plan["engine_sets"][0]["run"][0]["text"] == shlex.join([
        find_mpiexec(), "-n", "3", sys.executable, "-m", "ipyparallel.engine", f"--profile-dir={profile_dir}",
        f"--file={profile_dir}/security/ipcluster-kit-engine.json", "--mpi"])  # fmt: skip
    try:
        up = json.loads(run_kit("up", "world", "--json", *kit, check=True).stdout)
        assert up["engines"] == 3 and up["hosts"] == ["localhost"]
        assert [e["event"] for e in up["timeline"]][:3] == ["controller started", "mpi engines started", "controller ready"]

        status = json.loads(run_kit("status", "world", "--json", *kit, check=True).stdout)
        (world,) = status["engine_sets"]
        assert world["kind"] == "mpi" and world["world_size"] == 3 and world["mpiexec_running"]
        assert [(e["rank"], e["running"]) for e in status["engines"]] == [(0, True), (1, True), (2, True)]
        assert status["registered_engines"] == 3

        # the engines themselves: engine id == MPI rank, one world of 3, the PIDs status reports
        client = ipp.Client(profile_dir=str(profile_dir), timeout=30)
        try:
            answers = dict(zip(client.ids, client[:].apply_sync(ipp.interactive(_rank_pid_size))))  # sent by value
        finally:
            client.close()
        assert {engine_id: rank for engine_id, (rank, _, _) in answers.items()} == {0: 0, 1: 1, 2: 2}
        assert {size for _, _, size in answers.values()} == {3}
        assert {rank: pid for rank, pid, _ in answers.values()} == {e["rank"]: e["pid"] for e in status["engines"]}
        plain = run_kit("status", "world", *kit, check=True).stdout
        assert f"mpi world of 3: ranks 0-2 running; mpiexec PID {world['mpiexec_pid']} running" in plain.splitlines()
        assert "engine (mpi)" in plain
    finally:
        down = json.loads(run_kit("down", "world", "--json", *kit, check=True).stdout)
    assert down["engines_stopped"] == 3 and down["left_running"] == [] and down["found_by_profile_dir"] == []
    stopped = {e["pid"] for e in down["stopped"]}
    assert world["mpiexec_pid"] in stopped and {e["pid"] for e in status["engines"]} <= stopped
    assert find_by_argument(str(profile_dir)) == []
