"""`ipcluster-kit init` and `show` through the real command line."""

from __future__ import annotations

import json
import re
import os
import stat

import pytest

from helpers import modules_loaded_by, run_kit, tree_snapshot


def _one_line_error(result, *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ipcluster-kit: error: ")
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--ip", "300.1.1.1"], "invalid --ip '300.1.1.1': not an IPv4 address"),
        (["--ip", "::1"], "invalid --ip '::1': IPv6 is not supported"),
        (["--scheduler", "fastest"], "unknown scheme 'fastest'"),
        (["--scheme", "pure", "--hwm", "5"], "--hwm 5 does not apply to the 'pure' scheme"),
        (["--launcher", "kubernetes"], "unknown launcher 'kubernetes'"),
        (["--ports", "20000-20005"], "port range '20000-20005' has 6 ports"),
        (["--ports", "a-b"], "malformed port range 'a-b'"),
        (["--engines", "0"], "invalid --engines 0: it must be at least 1"),
        (["--engines", "-3"], "invalid --engines -3: it must be at least 1"),
        (["--hwm", "-1"], "invalid --hwm -1: it must be at least 0"),
        (["--host", "u@@h"], "malformed host spec 'u@@h'"),
        (["--launcher", "ssh"], "launcher 'ssh' needs at least one --host"),
        (["--preset", "cloud"], "unknown preset 'cloud'"),
        (["--location", "999.1.1.1"], "invalid --location '999.1.1.1': not a valid IPv4 address"),
        (["--ip", "0.0.0.0", "--location", "0.0.0.0"], "invalid --location '0.0.0.0': not an address engines can connect to"),
        (["--preset", "pbs", "--location", "10.0.0.1", "--queue", "q\n#PBS -l mem=1T"], "invalid --queue 'q\\n#PBS -l mem=1T': it must not contain a newline"),
        (["--preset", "slurm", "--location", "10.0.0.1", "--account", 'a"""'], "invalid --account 'a\"\"\"': it must not contain quotes"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_creates_nothing(ipython_dir, args, needle):
    result = run_kit("init", "p", "--ipython-dir", str(ipython_dir), *args)
    _one_line_error(result, needle)
    assert list(ipython_dir.iterdir()) == []


def test_unknown_launcher_message_lists_valid_launchers(ipython_dir):
    result = run_kit("init", "p", "--ipython-dir", str(ipython_dir), "--launcher", "nope")
    _one_line_error(result, "local", "ssh", "slurm", "pbs", "mpi")


def test_profile_name_with_a_path_separator(ipython_dir):
    _one_line_error(run_kit("init", "../evil", "--ipython-dir", str(ipython_dir)), "../evil")
    assert not (ipython_dir.parent / "evil").exists() and list(ipython_dir.iterdir()) == []


def test_existing_profile_is_unchanged_without_force_and_backed_up_with_it(ipython_dir):
    run_kit("init", "p", "--ipython-dir", str(ipython_dir), "--engines", "2", check=True)
    before = tree_snapshot(ipython_dir)
    _one_line_error(run_kit("init", "p", "--ipython-dir", str(ipython_dir), "--engines", "3"), "--force")
    assert tree_snapshot(ipython_dir) == before

    result = run_kit("init", "p", "--ipython-dir", str(ipython_dir), "--engines", "3", "--force", "--json", check=True)
    backup = json.loads(result.stdout)["backup_dir"]
    assert backup and os.path.isdir(backup)
    with open(os.path.join(backup, "ipcluster_config.py")) as fh:
        assert "c.Cluster.n = 2" in fh.read()
    assert "c.Cluster.n = 3" in (ipython_dir / "profile_p" / "ipcluster_config.py").read_text()


def test_unwritable_ipython_dir(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    target = locked / "ipython"
    if os.geteuid() == 0:
        # root ignores directory modes: a file in the way makes the directory impossible to create
        target = tmp_path / "a-file" / "ipython"
        (tmp_path / "a-file").write_text("")
    else:
        locked.chmod(0o500)
    result = run_kit("init", "p", "--ipython-dir", str(target))
    _one_line_error(result, str(target))


def test_dry_run_prints_every_file_and_writes_nothing(ipython_dir):
    result = run_kit("init", "p", "--ipython-dir", str(ipython_dir), "--preset", "slurm", "--queue", "short",
                     "--walltime", "00:30:00", "--account", "proj", "--engines", "8", "--location", "10.1.2.3", "--dry-run")  # fmt: skip
    assert result.returncode == 0, result.stderr
    for name in ("ipcontroller_config.py", "ipengine_config.py", "ipcluster_config.py", "ipcluster_kit.toml"):
        assert f"profile_p/{name} <==" in result.stdout
    assert "#SBATCH --partition=short" in result.stdout and "#SBATCH --ntasks=8" in result.stdout
    assert list(ipython_dir.iterdir()) == []


def test_dry_run_on_existing_profile_shows_a_diff(ipython_dir):
    run_kit("init", "p", "--ipython-dir", str(ipython_dir), "--scheduler", "lru", check=True)
    before = tree_snapshot(ipython_dir)
    result = run_kit("init", "p", "--ipython-dir", str(ipython_dir), "--scheduler", "weighted", "--dry-run", "--force")
    assert result.returncode == 0
    assert "-c.TaskScheduler.scheme_name = 'lru'" in result.stdout
    assert "+c.TaskScheduler.scheme_name = 'weighted'" in result.stdout
    assert tree_snapshot(ipython_dir) == before


def test_files_are_private_and_show_reports_them(ipython_dir):
    run_kit("init", "p", "--ipython-dir", str(ipython_dir), "--ports", "20000-20019", check=True)
    profile = ipython_dir / "profile_p"
    assert stat.S_IMODE((profile / "security").stat().st_mode) == 0o700
    info = json.loads(run_kit("show", "p", "--ipython-dir", str(ipython_dir), "--json", check=True).stdout)
    assert info["settings"]["ports"] == [20000, 20019]
    assert all(f["exists"] for f in info["files"].values())
    assert not any(c["exists"] for c in info["connection_files"].values())


def test_warning_when_listening_beyond_localhost_unencrypted(ipython_dir):
    result = run_kit("init", "p", "--ipython-dir", str(ipython_dir), "--ip", "0.0.0.0", "--location", "10.1.2.3", "--no-encrypt")
    assert result.returncode == 0
    assert "warning:" in result.stderr and "without encryption" in result.stderr
    quiet = run_kit("init", "q", "--ipython-dir", str(ipython_dir), "--ip", "0.0.0.0", "--location", "10.1.2.3", "--encrypt")
    assert "warning" not in quiet.stderr


def test_show_unknown_profile(ipython_dir):
    _one_line_error(run_kit("show", "nope", "--ipython-dir", str(ipython_dir)), "nope")


@pytest.mark.parametrize("argv", [["--help"], ["init", "p", "--dry-run"], ["init", "p"], ["show", "p"]])
def test_light_commands_do_not_import_heavy_libraries(ipython_dir, argv):
    if argv[0] == "show":
        run_kit("init", "p", "--ipython-dir", str(ipython_dir), check=True)
    elif argv[0] == "init":
        argv = [*argv, "--ipython-dir", str(ipython_dir / ("x" if "--dry-run" in argv else ""))]
    if argv[0] == "show":
        argv = [*argv, "--ipython-dir", str(ipython_dir)]
    assert modules_loaded_by(argv)[0] == []


def test_version():
    from ipcluster_kit import __version__

    result = run_kit("--version")
    assert result.returncode == 0 and result.stdout == f"ipcluster-kit {__version__}\n"


def test_show_plain_text_lists_settings_files_and_ports(ipython_dir):
    run_kit("init", "p", "--ipython-dir", str(ipython_dir), "--ports", "20000-20019", "--engines", "3", check=True)
    result = run_kit("show", "p", "--ipython-dir", str(ipython_dir), check=True)
    out = result.stdout
    assert f"Profile p in {ipython_dir / 'profile_p'}" in out
    assert re.search(r"^\s*engines\s+3\s*$", out, re.M) and re.search(r"^\s*ports\s+\[20000, 20019\]", out, re.M), out
    assert re.search(r"ipcontroller_config\.py\s*│\s*yes\s*│\s*0o600", out), out
    assert "security/ipcontroller-client.json" in out and "written when the controller starts" in out
    assert "Ports: 20000-20019; the split between engine and client ports" in out
    assert result.stderr == ""
