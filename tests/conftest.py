"""Test-wide settings.

IPCK_REQUIRE_E2E=1 (set by .ci/run) turns every skip into a failure: in CI the end-to-end
tests must run, not quietly skip because something was missing. That covers a skip in a test
(marker, ``pytest.skip``), a whole module skipped while it is collected
(``pytest.skip(allow_module_level=True)``, ``pytest.importorskip``) and an xfail (in CI a test
either passes or fails).

At the end of the session, any process the session started and left running (see
session_sweep.py) fails the run, and is stopped.
"""

from __future__ import annotations

import os

import pytest

from session_sweep import mark_session, sweep

REQUIRE_E2E = os.environ.get("IPCK_REQUIRE_E2E") == "1"


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not REQUIRE_E2E:
        return
    if hasattr(report, "wasxfail"):  # xfailed (reported as skipped) or xpassed (reported as passed)
        report.outcome = "failed"
        report.longrepr = f"xfail in CI (IPCK_REQUIRE_E2E=1 forbids xfails): {report.wasxfail or 'no reason given'}"
        del report.wasxfail
    elif report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (IPCK_REQUIRE_E2E=1 forbids skips): {_reason(report)}"


_SKIPPED_MODULES: list[str] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    # A module skipped while collected has no test to fail; it is recorded and fails the session
    # at its end (failing the collection itself would interrupt every other test).
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_E2E and report.skipped:
        _SKIPPED_MODULES.append(f"{report.nodeid}: {_reason(report)}")


_LEFTOVERS: list[str] = []
_SESSION = {"marker": ""}


def pytest_configure(config):
    _SESSION["marker"] = mark_session()


def pytest_sessionfinish(session, exitstatus):
    factory = getattr(session.config, "_tmp_path_factory", None)  # tmp_path's root for this session
    roots = [factory.getbasetemp()] if factory is not None else []
    _LEFTOVERS.extend(sweep(_SESSION["marker"], roots))
    failing = _SKIPPED_MODULES or _LEFTOVERS
    if failing and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    for line in _SKIPPED_MODULES:
        terminalreporter.write_line(f"FAILED (module skipped in CI; IPCK_REQUIRE_E2E=1 forbids skips) {line}", red=True)
    for line in _LEFTOVERS:
        terminalreporter.write_line(f"FAILED (process left running by the tests; now stopped) {line}", red=True)


@pytest.fixture
def ipython_dir(tmp_path, monkeypatch):
    """A fresh IPython directory for one test, also exported as IPYTHONDIR."""
    path = tmp_path / "ipython"
    path.mkdir()
    monkeypatch.setenv("IPYTHONDIR", str(path))
    return path
