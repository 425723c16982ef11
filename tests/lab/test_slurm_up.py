"""`up`/`status`/`down`/`doctor`/`bench --profile` on a slurm profile, against the real Slurm lab.

Engines run as a Slurm job on the lab's two compute nodes (each its own network namespace and
hostname, which prove where an engine ran); the controller listens on this host's lab address.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from helpers import wait_for

from ipcluster_kit.processes import find_by_argument

from .netlab import engine_facts
from .slurmlab import SlurmLab

pytestmark = [pytest.mark.lab, pytest.mark.e2e]


@pytest.fixture
def kit(slurm_lab, tmp_path):
    """Run the CLI with this test's IPython directory and the lab's SLURM_CONF; cancel every job after."""
    yield from _kit_for(slurm_lab, tmp_path)


def _kit_for(lab, tmp_path, cancel_jobs: bool = True):
    ipython_dir = tmp_path / "ipython"
    ipython_dir.mkdir()
    env = dict(os.environ, IPYTHONDIR=str(ipython_dir), COLUMNS="200", **lab.env)

    def run(*args: str, timeout: float = 120, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "ipcluster_kit", *args], capture_output=True, text=True,
                              env={**env, **(extra_env or {})}, timeout=timeout, cwd=tmp_path)  # fmt: skip

    run.ipython_dir = ipython_dir
    yield run
    for state in ipython_dir.glob("profile_*/ipcluster_kit_state.json"):  # a test that failed half-way
        run("down", state.parent.name.removeprefix("profile_"), timeout=120)
    if cancel_jobs:
        lab.cancel_all()


def make_profile(kit, lab, name: str, *options: str) -> None:
    made = kit("init", name, "--preset", "slurm", "--ip", lab.gateway, "--location", lab.gateway, *options)
    assert made.returncode == 0, made.stderr


def one_line_error(result: subprocess.CompletedProcess, code: int) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code and len(lines) == 1 and lines[0].startswith("ipcluster-kit: error: "), result.stderr
    return lines[0]


def no_job_processes(lab) -> bool:
    return not any(lab.job_pids(node) for node in lab.nodes)


def test_up_runs_engines_on_both_nodes_then_status_bench_doctor_and_down(kit, slurm_lab):
    lab = slurm_lab
    make_profile(kit, lab, "s", "--nodes", "2", "--partition", lab.partition)
    preview = kit("up", "s", "--dry-run", "--json")
    assert preview.returncode == 0, preview.stderr

    up = kit("up", "s", "--timeout", "90", "--json")
    assert up.returncode == 0, up.stderr
    profile_dir = kit.ipython_dir / "profile_s"
    script = (profile_dir / "ipcluster_kit_engines.sbatch").read_text()
    (job_set,) = json.loads(preview.stdout)["engine_sets"]
    assert [run["text"] for run in job_set["run"]] == [script]  # --dry-run showed the exact script submitted
    assert f"--profile-dir={profile_dir}" in script
    assert [p.name for p in kit.ipython_dir.parent.iterdir()] == ["ipython"]  # nothing written to the current directory

    facts = engine_facts(profile_dir / "security" / "ipcontroller-client.json")
    where = sorted((f["hostname"], f["netns"]) for f in facts.values())
    assert where == sorted((n.name, n.netns_id()) for n in lab.nodes)

    status = json.loads(kit("status", "s", "--json").stdout)
    (job,) = [s for s in status["engine_sets"] if s["kind"] == "slurm"]
    assert job["state"] == "RUNNING" and job["job_id"] in [j["id"] for j in lab.squeue()]
    assert job["engines_per_node"] == {n.name: 1 for n in lab.nodes}
    plain = kit("status", "s").stdout.splitlines()
    assert plain[1:3] == [f"slurm job {job['job_id']}: RUNNING on {job['nodes']}",
                          f"  engines per node: {', '.join(f'{n.name} 1' for n in lab.nodes)}"]  # fmt: skip

    bench = kit("bench", "primes", "--quick", "--profile", "s", timeout=300)
    assert bench.returncode == 0, bench.stderr

    doctor = kit("doctor", "s", "--json")
    checks = {(c["where"].split()[0], c["name"]): c["status"] for c in json.loads(doctor.stdout)["checks"]}
    assert doctor.returncode == 0, doctor.stdout
    assert checks[("slurm", "partition")] == "ok" and checks[("node", "ports")] == "ok"
    assert checks[("node", "ipyparallel")] == "ok" and checks[("node", "connection-file")] == "ok"

    down = kit("down", "s")
    assert down.returncode == 0, down.stderr
    assert re.fullmatch(rf"Cluster s stopped: controller, 2 slurm engine\(s\) \(job {job['job_id']} cancelled\);"
                        r" \d+ process\(es\) in all\.", " ".join(down.stdout.split())), down.stdout  # fmt: skip
    assert lab.squeue() == []
    assert wait_for(lambda: no_job_processes(lab), 10, what="no job process left on the nodes")


def test_mpi_engines_are_one_world_across_both_nodes(kit, slurm_lab):
    pytest.importorskip("mpi4py", reason="the [mpi] extra (mpi4py, mpich) is needed for MPI engines")
    lab = slurm_lab
    make_profile(kit, lab, "m", "--nodes", "2", "--tasks-per-node", "2", "--mpi")
    up = kit("up", "m", "--timeout", "90")
    assert up.returncode == 0, up.stderr
    status = json.loads(kit("status", "m", "--json").stdout)
    ranks = {e["rank"]: e["host"] for e in status["engines"] if e["kind"] == "slurm" and e["running"]}
    assert sorted(ranks) == [0, 1, 2, 3] and set(ranks.values()) == {n.name for n in lab.nodes}

    import ipyparallel as ipp

    client = ipp.Client(str(kit.ipython_dir / "profile_m" / "security" / "ipcontroller-client.json"), timeout=30)
    try:
        world = client[:].apply_sync(ipp.interactive(lambda: (__import__("mpi4py.MPI").MPI.COMM_WORLD.rank,
                                                              __import__("mpi4py.MPI").MPI.COMM_WORLD.size)))  # fmt: skip
        assert sorted(world) == [(r, 4) for r in range(4)]
        assert dict(zip(client.ids, world)) == {r: (r, 4) for r in range(4)}  # engine id = MPI rank
    finally:
        client.close()
    assert kit("down", "m").returncode == 0
    assert lab.squeue() == []


def test_a_job_that_cannot_start_times_out_naming_its_state_and_is_cancelled(kit, slurm_lab):
    lab = slurm_lab
    make_profile(kit, lab, "big", "--nodes", str(len(lab.nodes) + 1))
    result = kit("up", "big", "--timeout", "4", "--min-engines", "1")  # none registered: fewer than the minimum
    line = one_line_error(result, 1)
    assert re.search(r"did not come up: only 0 of 3 engines registered within 4 s; job \d+ PENDING \(\w+", line), line
    assert line.endswith("everything started was stopped")
    assert lab.squeue() == []
    assert not (kit.ipython_dir / "profile_big" / "ipcluster_kit_state.json").exists()


# Engines cannot start on one node (as when a module is broken there): a sitecustomize on the job's
# PYTHONPATH makes `python -m ipyparallel.engine` exit at once on the host it names.
NO_ENGINE_ON = (
    "import os, socket, sys\n"
    "if 'ipyparallel.engine' in getattr(sys, 'orig_argv', []) and socket.gethostname() == {node!r}:\n"
    "    print('lab: no engine on this node', flush=True)\n"
    "    os._exit(3)\n"
)


def test_min_engines_accepts_what_a_job_could_start(kit, slurm_lab, tmp_path):
    """A job with an engine task per node, whose task on the second node ends at once: without
    --min-engines `up` fails naming that task; with --min-engines 1 it succeeds on the first node's
    engine, with a warning naming the task that ended and what Slurm says of the job."""
    lab = slurm_lab
    n1, n2 = lab.nodes[0].name, lab.nodes[-1].name
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_ENGINE_ON.format(node=n2))
    broken = {"PYTHONPATH": str(site)}
    make_profile(kit, lab, "half", "--nodes", "2")

    line = one_line_error(kit("up", "half", "--timeout", "90", extra_env=broken), 1)
    assert re.search(rf"did not come up: engine task 1 on {n2}: Exited with exit code 3 \(log \S+-{n2}-1\.log:"
                     r" lab: no engine on this node\); job \d+ RUNNING on ", line), line  # fmt: skip
    assert line.endswith("everything started was stopped") and lab.squeue() == []

    up = kit("up", "half", "--timeout", "90", "--min-engines", "1", "--json", extra_env=broken)
    assert up.returncode == 0, up.stderr
    result = json.loads(up.stdout)
    (warning,) = result["warnings"]
    assert result["engines"] == 1 and warning.startswith("continuing with 1 of 2 engine(s) (at least 1 required):")
    assert f"engine task 1 on {n2}: Exited with exit code 3" in warning and " RUNNING on " in warning
    status = json.loads(kit("status", "half", "--json").stdout)
    assert status["expected_engines"] == 1 and status["registered_engines"] == 1
    assert status["engine_sets"][0]["engines_per_node"] == {n1: 1, n2: 0}
    assert kit("down", "half").returncode == 0
    assert lab.squeue() == []


@pytest.fixture
def patient_lab():
    """A lab of its own whose slurmctld marks a silent node down only after 30 s (real clusters: 300 s),
    so that a lost node stays flagged not responding, with a cancelled job COMPLETING on it, for a while."""
    lab = SlurmLab(slurmd_timeout=30).build()
    try:
        yield lab
    finally:
        lab.teardown()


@pytest.fixture
def patient_kit(patient_lab, tmp_path):
    yield from _kit_for(patient_lab, tmp_path, cancel_jobs=False)  # a job on a lost node ends with the lab


def test_a_lost_node_shows_in_status_and_down_leaves_its_job_to_slurm(patient_kit, patient_lab):
    kit, lab = patient_kit, patient_lab
    make_profile(kit, lab, "lost", "--nodes", "2")
    assert kit("up", "lost", "--timeout", "90").returncode == 0
    job = lab.squeue()[0]["id"]
    kept, lost = lab.nodes
    lab.kill_node(lost)  # the lab is this test's own: it is torn down with the lost node

    def engine_on_lost_node_down():
        status = json.loads(kit("status", "lost", "--json").stdout)
        return status if status["engine_sets"][0]["engines_per_node"].get(lost.name) == 0 else None

    status = wait_for(engine_on_lost_node_down, 30, interval=0.5, what=f"status showing {lost.name}'s engine gone")
    assert status["engine_sets"][0]["engines_per_node"][kept.name] == 1
    assert [e["running"] for e in status["engines"] if e["host"] == lost.name] == [False]

    # Slurm keeps the cancelled job COMPLETING on the lost node until it marks the node down (30 s
    # of silence): down stops everything else, says so, and leaves nothing that blocks a new `up`.
    down = kit("down", "lost", "--timeout", "2", timeout=120)
    assert down.returncode == 0, down.stderr
    said = " ".join(down.stdout.split())
    assert re.fullmatch(rf"Cluster lost stopped: controller, 1 slurm engine\(s\) \(job {job} cancelled\); \d+ process\(es\) in all\.", said), said
    assert " ".join(down.stderr.split()) == (
        f"warning: job {job} was cancelled and is still COMPLETING on {lost.name}, which no longer answer(s) Slurm;"
        " Slurm ends it when the node answers again or is marked down (after SlurmdTimeout, 30 s without an answer)")
    assert [(j["id"], j["state"]) for j in lab.squeue()] == [(job, "COMPLETING")]
    profile_dir = kit.ipython_dir / "profile_lost"
    assert not (profile_dir / "ipcluster_kit_state.json").exists()
    assert find_by_argument(str(profile_dir)) == []
    wait_for(lambda: not lab.job_pids(kept), 30, what=f"the job's processes on {kept.name} to end")
    assert json.loads(kit("status", "lost", "--json").stdout)["up"] is False


def test_bad_input_is_refused_before_anything_is_submitted(kit, slurm_lab):
    lab = slurm_lab
    make_profile(kit, lab, "np", "--partition", "nosuchpartition")
    line = one_line_error(kit("up", "np"), 2)
    assert "'nosuchpartition' does not exist" in line

    made = kit("init", "local", "--preset", "slurm", "--ip", "127.0.0.1", "--location", "127.0.0.1")
    assert made.returncode == 0, made.stderr
    line = one_line_error(kit("up", "local"), 2)
    assert "127.0.0.1, a loopback address compute nodes cannot reach" in line

    # a record edited by hand is checked as `init` checks options (which refuse these: tests/test_slurm_profile.py)
    make_profile(kit, lab, "edited", "--nodes", "2")
    record = kit.ipython_dir / "profile_edited" / "ipcluster_kit.toml"
    original = record.read_text()
    for old, new, needle in [('walltime = "01:00:00"', 'walltime = "01:99:00"', "01:99:00"),
                             ("batch_options = []", 'batch_options = ["--qos=a\\n#SBATCH --wrap=id"]', "newline")]:  # fmt: skip
        record.write_text(original.replace(old, new))
        assert needle in one_line_error(kit("up", "edited"), 1)
    assert lab.squeue() == []
    assert not list(kit.ipython_dir.rglob("ipcluster_kit_state.json"))
