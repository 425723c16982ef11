"""The notebooks in a real browser: Debian's chromium, headless, driven by Playwright.

``ipcluster-kit notebooks --profile browserdemo`` serves the notebooks; the browser opens the
printed URL, opens the quick start, runs every cell from JupyterLab's Run menu, waits for the last
cell's marker, opens the IPython Parallel panel and finds the kit's profile there. A screenshot
goes to test-artifacts/notebook-browser.png.

Skipped when /usr/bin/chromium is missing (CI installs it, and turns skips into failures).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import KIT, run_kit

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SCREENSHOT = ARTIFACTS / "notebook-browser.png"
URL = re.compile(r"http://127\.0\.0\.1:(\d+)/lab\?token=([0-9a-f]+)")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PROFILE = "browserdemo"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]


def _alive(pid: int) -> bool:
    from ipcluster_kit.processes import is_alive, record_of

    record = record_of(pid)
    return record is not None and is_alive(record)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _ours(*needles: str) -> list[str]:
    """Live processes below this test process whose command line has one of ``needles``."""
    from ipcluster_kit.processes import descendants

    return [f"{r.pid}: {_cmdline(r.pid)[:120]}" for r in descendants(os.getpid())
            if _alive(r.pid) and any(n in _cmdline(r.pid) for n in needles)]  # fmt: skip


@pytest.fixture
def served(tmp_path):
    """``ipcluster-kit notebooks`` with a kit profile, its URL read from its output; stopped with SIGINT."""
    env = os.environ.copy()
    env.pop("IPCK_PROFILE", None)
    env.update({
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
    })  # fmt: skip
    run_kit("init", PROFILE, "--ipython-dir", env["IPYTHONDIR"], "--engines", "2", check=True)
    out_path = tmp_path / "kit.out"
    with open(out_path, "w") as out, open(tmp_path / "kit.err", "w") as err:
        proc = subprocess.Popen(
            KIT + ["notebooks", "--no-browser", "--dir", str(tmp_path / "work"), "--profile", PROFILE],
            cwd=tmp_path, env=env, stdout=out, stderr=err,
        )  # fmt: skip
    jupyter_pid = None
    try:
        deadline = time.monotonic() + 120
        match = None
        while match is None:
            text = out_path.read_text()
            match = URL.search(text)
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no URL from ipcluster-kit notebooks: {text}{(tmp_path / 'kit.err').read_text()}")
            time.sleep(0.2)
        jupyter_pid = int(re.search(r"JupyterLab \(PID (\d+)\)", text).group(1))
        yield {"url": match.group(0), "port": int(match.group(1)), "token": match.group(2), "proc": proc, "work": tmp_path / "work"}
    finally:
        from ipcluster_kit.processes import descendants

        below = descendants(jupyter_pid) if jupyter_pid else []  # kernels, and whatever they started
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if jupyter_pid and _alive(jupyter_pid):
            os.killpg(jupyter_pid, signal.SIGKILL)
    assert proc.returncode == 0, (tmp_path / "kit.err").read_text()
    assert "JupyterLab stopped." in out_path.read_text()
    assert not (jupyter_pid and _alive(jupyter_pid))
    assert [f"{r.pid}: {_cmdline(r.pid)}" for r in below if _alive(r.pid)] == []


@pytest.mark.timeout(420)
def test_quickstart_runs_in_jupyterlab_and_the_panel_lists_the_profile(served, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    base = f"http://127.0.0.1:{served['port']}"

    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1500, "height": 1000},
        )  # fmt: skip
        try:
            # Only the server on 127.0.0.1: anything else the page asks for is refused.
            context.route(re.compile(r"^(?!http://127\.0\.0\.1:\d+/).*"), lambda route: route.abort())
            page = context.pages[0] if context.pages else context.new_page()
            page.on("console", lambda msg: print(f"browser console: {msg.type}: {msg.text[:300]}") if msg.type == "error" else None)
            page.set_default_timeout(90_000)

            page.goto(served["url"])  # the printed URL, token and all: it logs the browser in
            page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
            page.goto(f"{base}/lab/tree/01-quickstart.ipynb")
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
            _wait_for_kernel(page, served, "01-quickstart.ipynb")
            _dismiss_notifications(page)

            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

            marker = page.locator(".jp-OutputArea-output", has_text="QUICKSTART OK")
            marker.wait_for(state="attached", timeout=240_000)
            assert page.locator(".jp-NotebookPanel .jp-RenderedImage img").count() >= 1  # the plot

            # JupyterLab renders only the cells near the view: read every output from the saved copy.
            page.locator(".jp-NotebookPanel-toolbar [data-command='docmanager:save']").click()
            saved = served["work"] / "01-quickstart.ipynb"
            deadline = time.monotonic() + 60
            while True:
                outputs, text = _saved_outputs(saved)
                if "QUICKSTART OK" in text or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert [o for o in outputs if o["output_type"] == "error"] == []
            assert f"profile '{PROFILE}': 2 engine(s)" in text
            assert "load-balanced map matches serial: True" in text
            assert "@dview.parallel() matches serial: True" in text
            assert "QUICKSTART OK" in text
            assert not re.search(r"(?i)\berror\b|failed|traceback", text), text

            page.locator(".lm-TabBar-tab[data-id='ipp-cluster-launcher']").click()
            panel = page.locator("#ipp-cluster-launcher")
            panel.wait_for(state="visible")
            panel.locator(".ipp-ClusterListingItem-title", has_text=PROFILE).first.wait_for(timeout=60_000)
            # The notebook's own cluster (listed while it ran) is stopped now: refresh until the panel agrees.
            # A picture of the final state is the aim; ipyparallel's timing is not what is tested here.
            deadline = time.monotonic() + 30
            while panel.locator(".ipp-ClusterListingItem", has_text=re.compile(r"State: running", re.I)).count():
                if time.monotonic() > deadline:
                    break
                panel.locator("[title='Refresh Cluster List'], button[aria-label='Refresh Cluster List']").first.click()
                page.wait_for_timeout(1_000)

            # The plot and the marker in view beside the panel, then the picture.
            page.locator(".jp-NotebookPanel .jp-RenderedImage img").first.scroll_into_view_if_needed()
            _dismiss_notifications(page)
            page.wait_for_timeout(500)
            page.screenshot(path=str(SCREENSHOT))
        except BaseException:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(ARTIFACTS / "notebook-browser-failure.png"))
            raise
        finally:
            context.close()

    assert SCREENSHOT.stat().st_size > 10_000
    # Chromium is gone with its context; the server goes when the fixture sends SIGINT.
    assert _ours("chromium") == []


def _saved_outputs(path: Path) -> tuple[list, str]:
    try:
        nb = json.loads(path.read_text())
    except ValueError:  # caught mid-write
        return [], ""
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    text = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")) for o in outputs)
    return outputs, text


def _wait_for_kernel(page, served, notebook: str, timeout: float = 120) -> None:
    """Until the notebook's kernel is idle. On a busy machine JupyterLab may open the notebook before
    it has the list of kernels, and then asks which one to start: accept its choice (Python 3)."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(
        f"http://127.0.0.1:{served['port']}/api/sessions", headers={"Authorization": f"token {served['token']}"}
    )
    while time.monotonic() < deadline:
        dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
        if dialog.count():
            with contextlib.suppress(Exception):
                dialog.locator("button.jp-mod-accept").click(timeout=5_000)
        with urllib.request.urlopen(request, timeout=10) as response:
            sessions = json.loads(response.read())
        states = [s["kernel"]["execution_state"] for s in sessions if s["path"].endswith(notebook) and s.get("kernel")]
        if "idle" in states:
            return
        time.sleep(0.5)
    raise AssertionError(f"no idle kernel for {notebook} within {timeout} s")


def _dismiss_notifications(page) -> None:
    """JupyterLab may ask about news in a toast; it must not cover the notebook."""
    for label in ("No", "Dismiss"):
        buttons = page.locator(".Toastify__toast button", has_text=re.compile(rf"^{label}$"))
        for i in range(buttons.count()):
            try:
                buttons.nth(i).click(timeout=2_000)
            except Exception:
                pass
