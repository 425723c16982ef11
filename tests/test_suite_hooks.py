"""The suite's own rules (tests/conftest.py): in CI (IPCK_REQUIRE_E2E=1) nothing skips or xfails."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).with_name("conftest.py")
SWEEP = Path(__file__).with_name("session_sweep.py")

DEMO = {
    "test_demo.py": """
import pytest
def test_skip(): pytest.skip("nope")
@pytest.mark.skipif(True, reason="marker")
def test_skipif(): pass
@pytest.mark.xfail(reason="known")
def test_xfail(): assert 0
@pytest.mark.xfail(reason="known2")
def test_xpass(): pass
def test_ok(): pass
""",
    "test_module_skip.py": """
import pytest
pytest.skip("whole module", allow_module_level=True)
def test_never(): pass
""",
    "test_importorskip.py": """
import pytest
pytest.importorskip("no_such_module_for_the_hook_test")
def test_never(): pass
""",
}


def _run(tmp_path: Path, require: bool) -> subprocess.CompletedProcess:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    shutil.copy(SWEEP, tmp_path / "session_sweep.py")
    for name, text in DEMO.items():
        (tmp_path / name).write_text(text)
    env = {"PATH": "/usr/bin:/bin", "IPCK_REQUIRE_E2E": "1" if require else "0"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-rA", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip


def test_in_ci_skips_xfails_and_module_skips_fail_the_run(tmp_path):
    result = _run(tmp_path, require=True)
    out = result.stdout
    assert result.returncode == 1, out
    # a skip marker acts in the test's setup, so it shows as an error; every other one as a failure
    assert "3 failed, 1 passed, 2 skipped, 1 error" in out, out
    assert "ERROR test_demo.py::test_skipif" in out, out
    for test in ("test_skip", "test_xfail", "test_xpass"):
        assert f"FAILED test_demo.py::{test}" in out, out
    assert "FAILED (module skipped in CI; IPCK_REQUIRE_E2E=1 forbids skips) test_module_skip.py: Skipped: whole module" in out
    assert "test_importorskip.py: Skipped: could not import 'no_such_module_for_the_hook_test'" in out


def test_outside_ci_skips_are_skips(tmp_path):
    result = _run(tmp_path, require=False)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 4 skipped, 1 xfailed, 1 xpassed" in result.stdout, result.stdout


LEAVER = """
import subprocess, sys, os

def test_leaves_a_child_with_the_marker():
    subprocess.Popen(["sleep", "300"], start_new_session=True)

def test_leaves_a_child_in_its_tmp_path_with_a_clean_environment(tmp_path):
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", str(tmp_path / "x")],
                     env={"PATH": os.environ["PATH"]}, start_new_session=True)

def test_stops_its_child():
    p = subprocess.Popen(["sleep", "300"])
    p.kill(); p.wait()
"""


def test_a_process_left_running_fails_the_session_and_is_stopped(tmp_path):
    import psutil

    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    shutil.copy(SWEEP, tmp_path / "session_sweep.py")
    (tmp_path / "test_leaver.py").write_text(LEAVER)
    env = {"PATH": "/usr/bin:/bin", "IPCK_REQUIRE_E2E": "0", "IPCK_SWEEP_GRACE": "0.5"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "base"), str(tmp_path)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    assert "3 passed" in result.stdout, result.stdout
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("FAILED (process left running by the tests")]
    assert len(lines) == 2, result.stdout
    assert any(ln.endswith(": sleep 300") for ln in lines), lines
    assert any(str(tmp_path / "base") in ln for ln in lines), lines
    pids = [int(ln.split("pid ", 1)[1].split(":", 1)[0]) for ln in lines]
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids)
