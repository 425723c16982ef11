"""Running a notebook on a real kernel for the tests, and checking that it left nothing behind.

The kernel is this very Python: a kernelspec naming ``sys.executable`` is installed in a temporary
Jupyter data directory and selected by name. Used by tests/test_notebooks.py (every notebook) and
tests/lab/test_notebooks_lab.py (the remote-hosts notebook against the lab's hosts).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
KERNEL_NAME = "ipck-test-python"
CELL_TIMEOUT = 180  # seconds per cell: catches a hang, not a slow machine


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
