"""The remote-hosts notebook (03) against real hosts: the lab's sshd hosts in their network namespaces.

tests/test_notebooks.py runs it in its local mode; here ``IPCK_HOSTS`` names two lab hosts, so the
notebook brings up engines on them over SSH, runs doctor against them, sees the engines' host
names, and stops them again. Needs root (the lab), like the other lab tests.
"""

from __future__ import annotations

import ast
import re
import sys

import pytest

from notebook_runner import assert_nothing_left, execute, read_notebook
from notebook_runner import kernel_data_dir, kernel_env  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.lab]


@pytest.mark.timeout(300)
def test_remote_hosts_notebook_brings_up_engines_on_the_lab_hosts(lab, kernel_env, monkeypatch):
    h1, h2 = lab.hosts[0], lab.hosts[1]
    monkeypatch.setenv("IPCK_HOSTS", f"{h1.spec}=2 {h2.alias}")
    monkeypatch.setenv("IPCK_SSH_CONFIG", str(lab.ssh_config))
    monkeypatch.setenv("IPCK_CONTROLLER_IP", lab.gateway)
    monkeypatch.setenv("IPCK_REMOTE_PYTHON", sys.executable)
    try:
        run = execute(read_notebook("03-remote-hosts.ipynb"), kernel_env["cwd"])
        assert run.error is None, run.error
        text = run.text()
        for expected in (
            f"hosts: {h1.spec}=2, {h2.alias}=1",
            f"profile 'remote-demo': 3 engine(s) on {h1.spec}=2, {h2.alias}=1, controller on {lab.gateway}",
            "3/3 engines registered",
            "up: True, scheme leastload, 3 of 3 engines registered",
            "every host passed: True",
            "REMOTE OK",
        ):
            assert expected in text, f"{expected!r} not in the notebook's output:\n{text[-3000:]}"
        # per host as `status` counts them, and per host name as the engines themselves say (in any order)
        per_host = re.search(r"^engines per host: (\{.*\})$", text, re.M)
        assert per_host and ast.literal_eval(per_host.group(1)) == {h1.spec: 2, h2.alias: 1}, text[-3000:]
        per_name = re.search(r"^3 engines answer; engines per host name: (\{.*\})$", text, re.M)
        assert per_name and ast.literal_eval(per_name.group(1)) == {h1.hostname: 2, h2.hostname: 1}, text[-3000:]
        assert "doctor: " in text and " 0 fail" in text
        assert_nothing_left(run, kernel_env["tmp"])
        assert lab.engine_pids(h1) == [] and lab.engine_pids(h2) == []  # `down` stopped the remote engines
    finally:
        lab.kill_engines()
