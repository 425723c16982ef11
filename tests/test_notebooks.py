"""Every notebook in notebooks/ runs top to bottom on a real kernel, cleans up after itself, and is
committed without outputs.

A notebook added to notebooks/ is picked up by itself: it must run without errors and leave no
process or temporary file behind, also when a cell fails or the kernel is killed. What it must
print or draw goes in EXPECTATIONS below (any text of its outputs, and how many PNG images).

The kernel is this very Python: a kernelspec naming ``sys.executable`` is installed in a temporary
Jupyter data directory and selected by name (test_kernel_is_this_python checks it).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import nbformat
import pytest

from helpers import run_kit

pytestmark = pytest.mark.e2e

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb"))
KERNEL_NAME = "ipck-test-python"
CELL_TIMEOUT = 180  # seconds per cell: catches a hang, not a slow machine


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


@pytest.fixture(scope="module")
def kernel_data_dir(tmp_path_factory):
    """A kernelspec for this Python, found through JUPYTER_PATH (searched before every other data dir)."""
    root = tmp_path_factory.mktemp("jupyter-data")
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "ipcluster-kit tests", "language": "python",
    }))  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(root))
        yield root


@pytest.fixture
def kernel_env(kernel_data_dir, tmp_path, monkeypatch):
    """The kernel's environment (it inherits ours): fresh IPYTHONDIR and TMPDIR, no IPCK_PROFILE."""
    ipython_dir = tmp_path / "ipython"
    ipython_dir.mkdir()
    kernel_tmp = tmp_path / "kernel-tmp"
    kernel_tmp.mkdir()
    monkeypatch.setenv("IPYTHONDIR", str(ipython_dir))
    monkeypatch.setenv("TMPDIR", str(kernel_tmp))
    monkeypatch.delenv("IPCK_PROFILE", raising=False)
    monkeypatch.delenv("IPP_CONNECTION_INFO", raising=False)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    return {"ipython_dir": ipython_dir, "tmp": kernel_tmp, "cwd": tmp_path}


# --------------------------------------------------------------------------- running a notebook


def _alive(record) -> bool:
    from ipcluster_kit import processes

    return processes.is_alive(record)


@dataclass
class Run:
    nb: nbformat.NotebookNode
    error: Optional[BaseException]
    seconds: float
    seen_processes: list  # every process seen below the kernel (controllers, engines, ...), with start times

    def outputs(self):
        for cell in self.nb.cells:
            if cell.cell_type == "code":
                for out in cell.get("outputs", []):
                    yield cell, out

    def text(self) -> str:
        chunks = []
        for _, out in self.outputs():
            if out.output_type == "stream":  # one print() may arrive in several pieces
                chunks.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                chunks.append(f"\n{out.get('data', {}).get('text/plain', '')}\n")
            elif out.output_type == "error":
                chunks.append(f"\n{out.ename}: {out.evalue}\n")
        return "".join(chunks)

    def errors(self) -> list[str]:
        return [
            f"cell {cell.get('id')}: {out.ename}: {out.evalue}"
            for cell, out in self.outputs()
            if out.output_type == "error" and "raises-exception" not in cell.metadata.get("tags", [])
        ]

    def pngs(self) -> list[bytes]:
        return [base64.b64decode(out.data["image/png"]) for _, out in self.outputs()
                if out.output_type in ("display_data", "execute_result") and "image/png" in out.get("data", {})]  # fmt: skip


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: float = CELL_TIMEOUT) -> Run:
    """Run ``nb`` on the test kernel; note every process below the kernel after each cell."""
    from nbclient import NotebookClient

    from ipcluster_kit.processes import descendants

    seen: dict[tuple[int, int], object] = {}
    client = NotebookClient(
        nb, timeout=timeout, kernel_name=KERNEL_NAME, resources={"metadata": {"path": str(cwd)}}, coalesce_streams=True
    )

    def note_processes(**_):
        pid = getattr(client.km.provisioner, "pid", None) if client.km and client.km.provisioner else None
        if pid:
            for record in descendants(pid):
                seen[(record.pid, record.create_time)] = record

    client.on_cell_executed = note_processes
    started = time.monotonic()
    error = None
    try:
        client.execute()
    except Exception as exc:  # CellExecutionError, DeadKernelError: the caller decides
        error = exc
    return Run(nb=nb, error=error, seconds=time.monotonic() - started, seen_processes=list(seen.values()))


def assert_nothing_left(run: Run, kernel_tmp: Path, timeout: float = 20) -> None:
    """No process the notebook started outlives its kernel, and its temporary files are gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(r) for r in run.seen_processes):
        time.sleep(0.1)
    left = [r.pid for r in run.seen_processes if _alive(r)]
    cmdlines = {}
    for pid in left:
        try:
            cmdlines[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
        except OSError:
            pass
    # Clean up for the next test before failing this one.
    if left:
        from ipcluster_kit import processes

        processes.stop_processes([r for r in run.seen_processes if _alive(r)], timeout=5)
    assert not left, f"processes left running after the kernel ended: {cmdlines}"
    leftovers = sorted(p.name for p in kernel_tmp.iterdir())
    assert leftovers == [], f"temporary files left in the kernel's TMPDIR: {leftovers}"


def read_notebook(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS_DIR / name, as_version=4)


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
