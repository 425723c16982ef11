"""The Slurm fields of a profile: partition, nodes, tasks per node, extra #SBATCH lines, MPI, walltime.

Checked at the edge (API and CLI alike), written into the batch template that ipyparallel's
SlurmEngineSetLauncher fills in, and shown exactly by ``init --dry-run``.
"""

from __future__ import annotations

import json

import pytest

from helpers import ipyparallel_batch_script, run_kit, tree_snapshot
from ipcluster_kit.errors import BadInput
from ipcluster_kit.profile.render import batch_script_preview, render_profile
from ipcluster_kit.profile.spec import ProfileSpec, build_spec

SLURM = dict(preset="slurm", location="10.0.0.1")


def test_fields_reach_the_script_and_round_trip_through_the_record(tmp_path):
    import tomllib

    spec = build_spec("p", **SLURM, queue="debug", nodes=2, tasks_per_node=3, batch_options=["--qos=low", "--mem 4G"],
                      mpi=True, account="proj", walltime="1-02:00:00")  # fmt: skip
    assert spec.engines == 6  # nodes x tasks per node
    script = batch_script_preview(spec, tmp_path)
    directives = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    for expected in ("--ntasks=6", "--nodes=2", "--ntasks-per-node=3", "--partition=debug", "--time=1-02:00:00",
                     "--account=proj", "--qos=low", "--mem 4G", "--export=ALL"):  # fmt: skip
        assert f"#SBATCH {expected}" in directives
    assert script.splitlines()[-1].startswith(f"srun --mpi=pmi2 --output={tmp_path}/log/ipengine-%j-%N-%t.log ")
    files = render_profile(spec, tmp_path)
    assert "c.IPEngine.use_mpi = True" in files["ipengine_config.py"]
    again = ProfileSpec.from_record(tomllib.loads(files["ipcluster_kit.toml"]))
    assert again.to_record() == spec.to_record() and again.batch_options == ("--qos=low", "--mem 4G")


def test_without_mpi_the_engines_are_plain_srun_tasks(tmp_path):
    spec = build_spec("p", **SLURM, engines=2)
    assert "--mpi" not in batch_script_preview(spec, tmp_path)
    assert "use_mpi" not in render_profile(spec, tmp_path)["ipengine_config.py"]


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(walltime="1h"), "'1h'"),
        (dict(walltime="25:61:00"), "'25:61:00'"),
        (dict(walltime="01:00:60"), "'01:00:60'"),
        (dict(walltime="2-24:00:00"), "'2-24:00:00'"),
        (dict(nodes=0), "--nodes"),
        (dict(nodes=3, engines=2), "--engines 2 is fewer than --nodes 3"),
        (dict(nodes=2, tasks_per_node=2, engines=3), "--engines 3 disagrees"),
        (dict(tasks_per_node=0), "--tasks-per-node"),
        (dict(batch_options=["qos=low"]), "'qos=low'"),
        (dict(batch_options=["--ntasks=8"]), "--ntasks is set by the profile"),
        (dict(batch_options=["-pdebug"]), "-p is set by the profile"),
        (dict(batch_options=["--qos=low\n#SBATCH --wrap=id"]), "newline"),
        (dict(batch_options=["--comment='x'"]), "quotes"),
        (dict(queue="two words"), "one word"),
        (dict(queue="deb\nug"), "newline"),
        (dict(account="a`id`"), "backticks"),
    ],
)
def test_bad_slurm_values_are_refused_naming_them(kwargs, needle):
    with pytest.raises(BadInput) as info:
        build_spec("p", **SLURM, **kwargs)
    assert needle in info.value.message and "\n" not in info.value.message


@pytest.mark.parametrize("kwargs", [dict(nodes=2), dict(tasks_per_node=2), dict(batch_options=["--qos=x"]), dict(mpi=True)])
def test_slurm_fields_are_for_the_slurm_launcher(kwargs):
    with pytest.raises(BadInput, match="for the slurm launcher"):
        build_spec("p", **kwargs)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--batch-option", "--qos=low\n#SBATCH --wrap=id"], "--batch-option"),
        (["--partition", "a'b"], "--queue"),
        (["--walltime", "99:99"], "99:99"),
        (["--nodes", "3", "--engines", "2"], "--nodes 3"),
    ],
)
def test_cli_refuses_in_one_line_and_writes_nothing(ipython_dir, args, needle):
    before = tree_snapshot(ipython_dir)
    result = run_kit("init", "s", "--ipython-dir", str(ipython_dir), "--preset", "slurm", "--location", "10.0.0.1", *args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("ipcluster-kit: error: "), result.stderr
    assert needle in lines[0]
    assert tree_snapshot(ipython_dir) == before


def test_a_profile_dir_a_job_script_cannot_name_is_refused(tmp_path):
    result = run_kit("init", "s", "--ipython-dir", str(tmp_path / "with space"), "--preset", "slurm", "--location", "10.0.0.1")
    assert result.returncode == 2 and "with space" in result.stderr
    assert not (tmp_path / "with space").exists()


def test_dry_run_shows_the_script_ipyparallel_submits(ipython_dir, tmp_path):
    args = ["--preset", "slurm", "--location", "10.0.0.1", "--partition", "debug", "--nodes", "2", "--tasks-per-node", "2",
            "--batch-option", "--qos=low", "--batch-option", "--mem=1G", "--mpi", "--walltime", "00:05:00"]  # fmt: skip
    preview = json.loads(run_kit("init", "s", "--ipython-dir", str(ipython_dir), *args, "--dry-run", "--json", check=True).stdout)
    run_kit("init", "s", "--ipython-dir", str(ipython_dir), *args, check=True)
    profile_dir = ipython_dir / "profile_s"
    batch_file = tmp_path / "engines.sh"
    assert ipyparallel_batch_script(profile_dir, batch_file) == preview["batch_script"].replace("<cluster-id>", "cid")
    assert "#SBATCH --nodes=2" in preview["batch_script"] and "srun --mpi=pmi2 " in preview["batch_script"]
