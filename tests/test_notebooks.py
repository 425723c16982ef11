"""Every notebook in notebooks/ runs top to bottom on a real kernel, cleans up after itself, and is
committed without outputs.

A notebook added to notebooks/ is picked up by itself: it must run without errors and leave no
process or temporary file behind, also when a cell fails or the kernel is killed. What it must
print or draw goes in EXPECTATIONS below (any text of its outputs, and how many PNG images).

The kernel is this very Python: a kernelspec naming ``sys.executable`` is installed in a temporary
Jupyter data directory and selected by name (test_kernel_is_this_python checks it).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import nbformat
import pytest

from helpers import run_kit
from notebook_runner import NOTEBOOKS_DIR, assert_nothing_left, execute, read_notebook
from notebook_runner import kernel_data_dir, kernel_env  # noqa: F401 (fixtures)

pytestmark = pytest.mark.e2e

NOTEBOOKS = sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb"))


@dataclass(frozen=True)
class Expect:
    """What one notebook must produce when it runs with no IPCK_PROFILE set."""

    texts: tuple[str, ...] = ()  # each must appear in the text of some output (stream or text/plain)
    images: int = 0  # at least this many PNG outputs
    timeout: float = 600  # seconds for the whole notebook (pytest-timeout): a hang guard
    cleanup_modes: tuple[str, ...] = ("error", "sigterm")  # see test_notebook_cleans_up_when_interrupted
    env: tuple[tuple[str, str], ...] = ()  # extra environment for the kernel
    skip_reason: Optional[Callable[[], Optional[str]]] = None  # e.g. lambda: None if lab_available() else "..."


EXPECTATIONS: dict[str, Expect] = {
    "01-quickstart.ipynb": Expect(
        texts=(
            "profile 'quickstart': 2 engine(s)",
            "2 engines: [0, 1]",
            "load-balanced map matches serial: True",
            "@dview.parallel() matches serial: True",
            "Out[0:",  # the %px os.getpid() display of engine 0
            "%px ran on 2 engine processes, one PID each: True",
            "tasks per engine:",
            "QUICKSTART OK",
        ),
        images=1,
        timeout=300,
    ),
    "02-benchmarks.ipynb": Expect(
        texts=(
            "started profile 'bench'",
            "2 engine(s), scheme leastload; the benchmark uses 2",
            "every run verified against serial: True",
            "ipp-lbv-chunk1",  # in the table and the plot's summary
            "chunk size chosen for primes:",
            "chunk size 1 against",
            "BENCHMARKS OK",
        ),
        images=2,  # speedup/efficiency bars; time against chunk size
        timeout=420,
    ),
    "03-remote-hosts.ipynb": Expect(
        texts=(
            "hosts: none given: local engines",
            "c.SSHEngineSetLauncher.engines = {",  # what `init --host ... --dry-run` would write
            "'alice@node1': {'n': 4},",
            "2/2 engines registered",
            "up: True, scheme leastload, 2 of 2 engines registered",
            "Ports engine hosts must reach:",
            "controller-side checks all ok: True",
            "connection refused",  # doctor's ssh check on the host where nothing listens
            "2 engines answer",
            "local cluster processes left: []",
            "REMOTE OK",
        ),
        timeout=300,
    ),
    "04-manager-queue.ipynb": Expect(
        texts=(
            "key file queue.key: mode 0600, in a folder of mode 0700",
            "queue server listening on 127.0.0.1:",
            "2 workers connected",
            "collected 300 results in job order, 0 failed",
            "queue results match serial nth_prime: True",
            "exit status 0, work done:",
            "300 done, 0 failed, 0 requeued, 0 duplicate results",
            "worker processes left: []",
            "QUEUE OK",
        ),
        images=1,
        timeout=300,
    ),
    "05-schemes.ipynb": Expect(
        texts=(
            "3 clusters in",
            "leastload, hwm=1   connection file: leastload",
            "pure (hwm n/a)     connection file: pure",
            "hwm probe: at most 1 task(s) per engine",
            "every controller runs the scheme asked for: True",
            "lower bound on 2 engines:",
            "x the bound [",
            "for no-op throughput:",
            "for heterogeneous tasks:",
            "recommended for a profile (hetero):",
            "scheme from ",
            "results checked",
            "SCHEMES OK",
        ),
        images=1,
        timeout=300,
    ),
}


def expectation(name: str) -> Expect:
    return EXPECTATIONS.get(name, Expect())


def _params(names):
    return [pytest.param(n, id=n, marks=pytest.mark.timeout(expectation(n).timeout)) for n in names]


# --------------------------------------------------------------------------- kernel and environment


def maybe_skip(name: str) -> Expect:
    expect = expectation(name)
    if expect.skip_reason is not None:
        reason = expect.skip_reason()
        if reason:
            pytest.skip(f"{name}: {reason}")
    return expect


# --------------------------------------------------------------------------- tests


def test_there_are_notebooks():
    assert "01-quickstart.ipynb" in NOTEBOOKS
    unknown = set(EXPECTATIONS) - set(NOTEBOOKS)
    assert not unknown, f"EXPECTATIONS names notebooks that do not exist: {sorted(unknown)}"


def test_kernel_is_this_python(kernel_env):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.executable)")])
    run = execute(nb, kernel_env["cwd"], timeout=120)
    assert run.error is None, run.error
    assert Path(run.text().strip()).resolve() == Path(sys.executable).resolve()


@pytest.mark.parametrize("name", _params(NOTEBOOKS))
def test_notebook_runs(name, kernel_env, monkeypatch, record_property):
    expect = maybe_skip(name)
    for key, value in expect.env:
        monkeypatch.setenv(key, value)
    run = execute(read_notebook(name), kernel_env["cwd"])
    record_property("seconds", round(run.seconds, 1))
    print(f"{name}: {run.seconds:.1f} s")
    assert run.error is None, f"{name} failed after {run.seconds:.1f} s: {run.error}"
    assert run.errors() == []
    text = run.text()
    assert "Traceback (most recent call last)" not in text, f"a traceback was printed:\n{text[-3000:]}"
    missing = [t for t in expect.texts if t not in text]
    assert not missing, f"{name}: expected output not found: {missing}\n--- outputs ---\n{text[-3000:]}"
    pngs = run.pngs()
    assert len(pngs) >= expect.images, f"{name}: {len(pngs)} PNG image(s), expected at least {expect.images}"
    for png in pngs:
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert_nothing_left(run, kernel_env["tmp"])


def _interrupted(nb: nbformat.NotebookNode, mode: str) -> nbformat.NotebookNode:
    """``nb`` with a cell just before its last code cell (the one that cleans up) that fails or kills the kernel."""
    last = max(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    source = {
        "error": 'raise RuntimeError("injected failure")',
        # A SIGTERM while a cell runs: what Jupyter sends a kernel that does not exit on request.
        "sigterm": "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\nimport time\ntime.sleep(30)",
    }[mode]
    nb.cells.insert(last, nbformat.v4.new_code_cell(source))
    return nb


CLEANUP_CASES = [(n, m) for n in NOTEBOOKS for m in expectation(n).cleanup_modes]


@pytest.mark.parametrize(
    "name, mode",
    [pytest.param(n, m, id=f"{n}-{m}", marks=pytest.mark.timeout(expectation(n).timeout)) for n, m in CLEANUP_CASES],
)
def test_notebook_cleans_up_when_interrupted(name, mode, kernel_env, monkeypatch):
    """A failing cell (nbclient then shuts the kernel down) or a SIGTERM to the kernel, before the
    last cell could clean up: the cluster and temporary files must go all the same."""
    expect = maybe_skip(name)
    for key, value in expect.env:
        monkeypatch.setenv(key, value)
    run = execute(_interrupted(read_notebook(name), mode), kernel_env["cwd"])
    assert run.error is not None, "the injected cell did not interrupt the notebook"
    if mode == "error":
        assert "injected failure" in str(run.error)
    else:
        assert type(run.error).__name__ == "DeadKernelError", run.error
    assert run.seen_processes, "no process was seen below the kernel: the check would prove nothing"
    assert_nothing_left(run, kernel_env["tmp"])


@pytest.fixture
def kit_profile(kernel_env):
    ipdir = str(kernel_env["ipython_dir"])
    run_kit("init", "mine", "--ipython-dir", ipdir, "--engines", "2", check=True)
    yield "mine"
    run_kit("down", "mine", "--ipython-dir", ipdir)


@pytest.mark.timeout(300)
def test_quickstart_uses_the_profile_in_ipck_profile(kit_profile, kernel_env, monkeypatch):
    monkeypatch.setenv("IPCK_PROFILE", kit_profile)
    run = execute(read_notebook("01-quickstart.ipynb"), kernel_env["cwd"])
    assert run.error is None, run.error
    text = run.text()
    assert f"profile '{kit_profile}': 2 engine(s)" in text and "QUICKSTART OK" in text
    assert "quickstart" not in {p.name.removeprefix("profile_") for p in kernel_env["ipython_dir"].iterdir()}
    assert (kernel_env["ipython_dir"] / f"profile_{kit_profile}" / "ipcluster_kit.toml").is_file()  # not deleted
    assert_nothing_left(run, kernel_env["tmp"])


@pytest.mark.timeout(300)
def test_quickstart_attaches_to_a_cluster_that_is_up_and_leaves_it_up(kit_profile, kernel_env, monkeypatch):
    ipdir = str(kernel_env["ipython_dir"])
    run_kit("up", kit_profile, "--ipython-dir", ipdir, check=True)
    monkeypatch.setenv("IPCK_PROFILE", kit_profile)
    run = execute(read_notebook("01-quickstart.ipynb"), kernel_env["cwd"])
    assert run.error is None, run.error
    text = run.text()
    assert f"connected to the running cluster of profile '{kit_profile}'" in text and "QUICKSTART OK" in text
    status = json.loads(run_kit("status", kit_profile, "--ipython-dir", ipdir, "--json", check=True).stdout)
    assert status["up"] and status["registered_engines"] == 2


# --------------------------------------------------------------------------- committed form


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_stripped(name):
    nb = read_notebook(name)
    nbformat.validate(nb)
    dirty = [
        cell.get("id", i)
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{name}: cells {dirty} carry outputs or execution counts; strip them with"
        f" `.venv/bin/jupyter nbconvert --clear-output --inplace notebooks/{name}`"
    )
    assert not [c.get("id") for c in nb.cells if "execution" in c.get("metadata", {})], "cell timing metadata is committed"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", "users' kernels are named python3"
    assert "widgets" not in nb.metadata


def test_readme_lists_every_notebook():
    readme = (NOTEBOOKS_DIR / "README.md").read_text()
    missing = [n for n in NOTEBOOKS if n not in readme]
    assert not missing, f"notebooks/README.md does not list {missing}"
