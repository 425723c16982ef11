"""Test-wide settings.

IPCK_REQUIRE_E2E=1 (set by .ci/run) turns every skip into a failure: in CI the end-to-end
tests must run, not quietly skip because something was missing.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_E2E = os.environ.get("IPCK_REQUIRE_E2E") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_E2E and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (IPCK_REQUIRE_E2E=1 forbids skips): {reason}"


@pytest.fixture
def ipython_dir(tmp_path, monkeypatch):
    """A fresh IPython directory for one test, also exported as IPYTHONDIR."""
    path = tmp_path / "ipython"
    path.mkdir()
    monkeypatch.setenv("IPYTHONDIR", str(path))
    return path
