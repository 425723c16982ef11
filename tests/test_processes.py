"""The base processes module on real processes: identity by start time, trees, stopping, finding."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import psutil

from helpers import wait_for
from ipcluster_kit import processes
from ipcluster_kit.processes import ProcessRecord

# A leader that starts a child in its group and a grandchild in a session of its own (like an
# engine's nanny), then waits; each sleeper is tagged by an argument that names it.
SLEEP = "import time; time.sleep(300)"
FAMILY = (
    "import subprocess, sys, time\n"
    "tag = sys.argv[1]\n"
    f"subprocess.Popen([sys.executable, '-c', {SLEEP!r}, tag + '/group'])\n"
    f"subprocess.Popen([sys.executable, '-c', {SLEEP!r}, tag + '/own-session'], start_new_session=True)\n"
    "time.sleep(300)\n"
)


def _family(tmp_path, tag: str) -> tuple[ProcessRecord, subprocess.Popen]:
    record, proc = processes.spawn([sys.executable, "-c", FAMILY, str(tmp_path / tag)], tmp_path / f"{tag}.log", "leader")
    wait_for(lambda: len(processes.find_by_argument(str(tmp_path / tag))) == 3, 10, what="the family to start")
    return record, proc


def test_record_identity_survives_round_trip_and_refuses_another_start_time(tmp_path):
    record, proc = processes.spawn(["sleep", "30"], tmp_path / "s.log", "sleeper")
    try:
        assert record.create_time == psutil.Process(proc.pid).create_time()
        again = ProcessRecord.from_dict(json.loads(json.dumps(record.to_dict())))
        assert again == record and processes.is_alive(again)
        assert processes.describe(again) == "running"
        impostor = ProcessRecord(record.pid, record.create_time + 1.0, "sleeper")
        assert not processes.is_alive(impostor)
        assert processes.describe(impostor) == "not running (pid reused)"
        # the one stop helper never signals a PID whose start time differs
        report = processes.stop_processes([impostor], timeout=1)
        assert report.stopped == [] and proc.poll() is None
    finally:
        proc.kill()
        proc.wait(5)
    assert processes.describe(record) == "not running"


def test_legacy_start_ticks_are_read_as_the_same_start_time(tmp_path):
    """State files of the first release kept ``start_ticks`` (clock ticks since boot): still valid."""
    record, proc = processes.spawn(["sleep", "30"], tmp_path / "s.log", "engine")
    try:
        ticks = int(open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()[19])
        legacy = ProcessRecord.from_dict({"pid": proc.pid, "start_ticks": ticks, "role": "engine", "log": "", "host": "localhost"})
        assert processes.is_alive(legacy)
        assert not processes.is_alive(ProcessRecord.from_dict({"pid": proc.pid, "start_ticks": ticks + 100, "role": "engine"}))
    finally:
        proc.kill()
        proc.wait(5)


def test_stop_takes_the_group_and_a_child_in_its_own_session(tmp_path):
    record, proc = _family(tmp_path, "fam")
    members = processes.tree([record])
    assert [r.role for r in members].count("leader") == 1 and len(members) == 3
    report = processes.stop_processes([record], timeout=5)
    assert sorted(r.pid for r in report.stopped) == sorted(r.pid for r in members)
    assert report.left == [] and report.killed == []
    assert processes.find_by_argument(str(tmp_path / "fam")) == []
    assert not processes.is_alive(record)


def test_group_members_are_stopped_after_their_leader_was_killed(tmp_path):
    """The controller killed with SIGKILL: its schedulers keep its process group and are found by it."""
    record, proc = _family(tmp_path, "orphans")
    os.kill(record.pid, signal.SIGKILL)
    proc.wait(5)
    left_over = processes.find_by_argument(str(tmp_path / "orphans"))
    assert len(left_over) == 2  # the group member and the child in its own session both survive
    report = processes.stop_processes([record], timeout=5)
    assert [r.role for r in report.stopped] == ["leader group"]
    # the child in a session of its own was only reachable through the (dead) leader: the search finds it
    rest = processes.find_by_argument(str(tmp_path / "orphans"))
    assert len(rest) == 1
    assert processes.stop_processes(rest, timeout=5).left == []
    assert processes.find_by_argument(str(tmp_path / "orphans")) == []


def test_a_process_that_ignores_sigterm_is_killed(tmp_path):
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(300)"
    record, proc = processes.spawn([sys.executable, "-c", code], tmp_path / "stubborn.log", "stubborn")
    wait_for(lambda: "ready" in (tmp_path / "stubborn.log").read_text(), 10, what="the handler to be installed")
    report = processes.stop_processes([record], timeout=0.3)
    assert [r.pid for r in report.killed] == [record.pid] and report.left == []
    assert not processes.is_alive(record)


def test_find_by_argument_matches_whole_paths_and_never_this_process(tmp_path):
    target = tmp_path / "profile_c"
    near = subprocess.Popen([sys.executable, "-c", SLEEP, f"--profile-dir={target}2"])
    exact = subprocess.Popen([sys.executable, "-c", SLEEP, f"--profile-dir={target}"])
    below = subprocess.Popen([sys.executable, "-c", SLEEP, f"{target}/log/x.log"])
    try:
        found = {r.pid for r in processes.find_by_argument(str(target))}
        assert found == {exact.pid, below.pid}
        assert processes.find_by_argument("") == []
    finally:
        for p in (near, exact, below):
            p.kill()
            p.wait(5)


def test_find_by_argument_skips_this_process_and_its_ancestors():
    mine = psutil.Process().cmdline()[0]  # this interpreter's path is in this process's own command line
    found = {r.pid for r in processes.find_by_argument(mine)}
    assert os.getpid() not in found and os.getppid() not in found
