"""The chunk-size sweep through the CLI on real engines: a profile that is up (shared by the module)
on sum, the heterogeneous workload and a user function, and once on a temporary cluster of its own."""

from __future__ import annotations

import json
import textwrap

import pytest

from helpers import run_kit
from ipcluster_kit.bench import sweep

pytestmark = pytest.mark.e2e

TINY = ["--quick", "--repeat", "1", "--warmup", "0", "--points", "3"]


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    """A 2-engine profile brought up with `ipcluster-kit up` for the module, brought down at the end."""
    ipython_dir = tmp_path_factory.mktemp("ipython")
    run_kit("init", "sw", "--ipython-dir", str(ipython_dir), "--engines", "2", check=True)
    run_kit("up", "sw", "--ipython-dir", str(ipython_dir), check=True, timeout=180)
    try:
        yield ["--profile", "sw", "--ipython-dir", str(ipython_dir)]
    finally:
        run_kit("down", "sw", "--ipython-dir", str(ipython_dir), timeout=60)


def _sweep(tmp_path, *args: str, cwd=None) -> dict:
    out, png = tmp_path / "sweep.json", tmp_path / "sweep.png"
    result = run_kit("bench", "sweep", *args, "--json", str(out), "--plot", str(png), timeout=300, cwd=cwd)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = sweep.load(out)  # validated against the schema
    assert "automatic chunk size" in result.stdout
    points = doc["points"]
    assert all(p["status"] == "ok" and p["verified"] and p["seconds"] and p["predicted_seconds"] > 0 for p in points)
    assert sum(p["automatic"] for p in points) == 1
    assert doc["summary"]["automatic"]["chunksize"] == doc["model"]["choice"]["chunksize"]
    assert doc["serial"]["status"] == "ok" and doc["model"]["probe"]["overhead_seconds"] > 0
    return doc


def test_sweep_of_sum_on_a_profile_with_a_reference_backend(profile, tmp_path):
    doc = _sweep(tmp_path, "sum", *TINY, *profile, "-b", "mp-pool")
    assert doc["environment"]["cluster"]["source"] == "profile" and doc["environment"]["workers"] == 2
    sizes = [p["chunksize"] for p in doc["points"]]
    assert sizes[0] == 1 and sizes[-1] == 4  # 8 tasks: from chunk size 1 to one chunk per engine
    assert [r["backend"] for r in doc["references"]] == ["mp-pool"] and doc["references"][0]["status"] == "ok"
    for p in doc["points"]:  # the engines' own account: one message per part
        assert p["details"][0]["tasks_sent"] == p["parts"]


def test_sweep_of_the_heterogeneous_workload_on_a_profile(profile, tmp_path):
    doc = _sweep(tmp_path, "hetero", *TINY, *profile, "--chunks", "1,2,5")
    assert doc["workload"]["name"] == "hetero" and doc["workload"]["tasks"] == 10
    assert {1, 2, 5} <= {p["chunksize"] for p in doc["points"]}


def test_sweep_of_a_user_function_on_a_profile(profile, tmp_path):
    (tmp_path / "mytasks.py").write_text(textwrap.dedent("""\
        import random

        def jitter(seed):
            return sum(random.Random(seed).random() for _ in range(2000 + 500 * seed))
        """))  # fmt: skip
    (tmp_path / "args.json").write_text(json.dumps(list(range(12))))
    doc = _sweep(tmp_path, "--function", "mytasks:jitter", "--args", "args.json", *TINY, *profile, cwd=tmp_path)
    assert doc["workload"]["name"] == "user" and doc["config"]["function"] == "mytasks:jitter"
    assert doc["workload"]["tasks"] == 12


def test_sweep_on_a_temporary_cluster(tmp_path):
    doc = _sweep(tmp_path, "primes", "--engines", "2", *TINY, "--chunks", "1,50")
    assert doc["environment"]["cluster"]["source"] == "temporary"
    assert all(len(p["foreign_cpus"]) == len(p["seconds"]) for p in doc["points"])
