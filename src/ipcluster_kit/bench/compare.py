"""Two result documents side by side: the ratio of each backend's median time, B over A.

A ratio below 1 means B was faster. Runs are matched by workload, backend and worker count;
those only in one file are listed as such. Differences of environment (versions, CPUs, engines,
load) are listed too, since they often explain the ratios.
"""

from __future__ import annotations

import os
from typing import Any

from ipcluster_kit.bench import results


def _key(run: dict) -> tuple[str, str, int]:
    return run["workload"], run["backend"], run["workers"]


def _env_summary(document: dict) -> dict[str, Any]:
    env = document["environment"]
    cluster = env.get("cluster", {})
    versions = env.get("versions", {})
    return {
        "python": env.get("python", {}).get("version"),
        "ipyparallel": versions.get("ipyparallel"),
        "pyzmq": versions.get("pyzmq"),
        "cpu_model": env.get("cpu_model"),
        "cpu_count": env.get("cpu_count"),
        "workers": env.get("workers"),
        "engines": cluster.get("engines"),
        "scheme": cluster.get("scheme"),
        "hosts": ",".join(cluster.get("hosts") or []) or None,
        "load_before": round(env.get("load_average", {}).get("before", [0])[0], 2),
        "quick": document.get("config", {}).get("quick"),
        "repeat": document.get("config", {}).get("repeat"),
    }


def compare(a: dict, b: dict) -> dict:
    """The comparison as data: matched rows with ratios, unmatched runs, environment differences."""
    runs_a = {_key(r): r for r in a["runs"]}
    runs_b = {_key(r): r for r in b["runs"]}
    rows = []
    for key in list(runs_a) + [k for k in runs_b if k not in runs_a]:
        ra, rb = runs_a.get(key), runs_b.get(key)
        row: dict[str, Any] = {"workload": key[0], "backend": key[1], "workers": key[2],
                               "a_median": None, "b_median": None, "time_ratio": None,
                               "a_speedup": None, "b_speedup": None, "speedup_ratio": None, "note": None}  # fmt: skip
        if ra is None or rb is None:
            row["note"] = "only in A" if rb is None else "only in B"
        elif ra["status"] != "ok" or rb["status"] != "ok":
            row["note"] = "failed in " + " and ".join(n for n, r in (("A", ra), ("B", rb)) if r["status"] != "ok")
        for side, r in (("a", ra), ("b", rb)):
            if r is not None and r["status"] == "ok":
                row[f"{side}_median"] = r["stats"]["median"]
                row[f"{side}_speedup"] = r["speedup"]
        if row["a_median"] and row["b_median"] is not None:
            row["time_ratio"] = row["b_median"] / row["a_median"]
        if row["a_speedup"] and row["b_speedup"] is not None:
            row["speedup_ratio"] = row["b_speedup"] / row["a_speedup"]
        rows.append(row)
    env_a, env_b = _env_summary(a), _env_summary(b)
    differences = {k: [env_a[k], env_b[k]] for k in env_a if env_a[k] != env_b[k]}
    return {"rows": rows, "environment_differences": differences}


def compare_files(path_a: str | os.PathLike, path_b: str | os.PathLike) -> dict:
    """Load, validate (BadInput naming the file) and compare two result files."""
    a = results.load(path_a)
    b = results.load(path_b)
    out = compare(a, b)
    out["a"], out["b"] = str(path_a), str(path_b)
    return out


def table(comparison: dict):
    from rich.table import Table

    t = Table(title=f"B / A   (A = {comparison['a']}, B = {comparison['b']}; time ratio < 1: B faster)",
              title_justify="left")  # fmt: skip
    for col, justify in (("workload", "left"), ("backend", "left"), ("workers", "right"), ("A median s", "right"),
                         ("B median s", "right"), ("time B/A", "right"), ("A speedup", "right"),
                         ("B speedup", "right"), ("speedup B/A", "right"), ("", "left")):  # fmt: skip
        t.add_column(col, justify=justify)

    def f(x: float | None, digits: int = 3) -> str:
        return "-" if x is None else f"{x:.{digits}f}"

    previous = None
    for row in comparison["rows"]:
        if previous is not None and row["workload"] != previous:
            t.add_section()
        ratio = row["time_ratio"]
        ratio_text = f(ratio, 2)
        if ratio is not None and ratio < 0.95:
            ratio_text = f"[green]{ratio_text}[/]"
        elif ratio is not None and ratio > 1.05:
            ratio_text = f"[red]{ratio_text}[/]"
        t.add_row(row["workload"] if row["workload"] != previous else "", row["backend"], str(row["workers"]),
                  f(row["a_median"]), f(row["b_median"]), ratio_text, f(row["a_speedup"], 2),
                  f(row["b_speedup"], 2), f(row["speedup_ratio"], 2), row["note"] or "")  # fmt: skip
        previous = row["workload"]
    return t
