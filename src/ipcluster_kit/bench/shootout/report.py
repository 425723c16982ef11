"""The shoot-out's report: a Rich table, the recommendation and notes as lines, and a PNG plot."""

from __future__ import annotations

import math
import statistics

from ipcluster_kit.bench.shootout.recommend import USER, failures, format_value, in_unit, is_default

def _run(combo: dict, workload: str) -> dict | None:
    return next((r for r in combo["runs"] if r["workload"] == workload), None)


def table(document: dict):
    """A Rich table: one row per combination, one column per workload (median [95% interval])."""
    from rich.table import Table

    cfg = document["config"]
    title = (f"ipcluster-kit bench schemes: {cfg['engines']} engines, {cfg['repeat']} repeat(s) after"
             f" {cfg['warmup']} warm-up(s), chunksize 1; median [interval]")  # fmt: skip
    t = Table(title=title, title_justify="left")
    t.add_column("scheme, hwm")
    t.add_column("controller says", justify="left")
    t.add_column("up", justify="right")
    workloads = document["workloads"]
    for w in workloads:
        unit = {"overhead": "tasks/s", "hetero": "x bound"}.get(w["name"], "s")
        t.add_column(f"{w['title'] if w['name'] != USER else w.get('function', USER)} ({unit})", justify="right")
    best = {r["workload"]: r["best"]["label"] for r in document["recommendations"]}
    defaults = document["defaults"]
    for combo in document["combinations"]:
        ctl = combo["controller"] or {}
        said = f"{ctl.get('task_scheme')}" + ("" if ctl.get("confirmed") else " [red](mismatch)[/]") if ctl else "-"
        probe = combo["hwm_probe"]
        if probe is not None:
            said += f", hwm {'ok' if probe['consistent'] else '[red]?[/]'}"
        label = combo["label"] + (" (default)" if is_default(combo, defaults) else "")
        cells = []
        for w in workloads:
            run = _run(combo, w["name"])
            if combo["status"] != "ok" and run is None:
                cells.append("[red]-[/]")
            elif run is None:
                cells.append("-")
            elif run["status"] != "ok":
                cells.append("[red]failed[/]")
            else:
                text = format_value(w, run["stats"])
                cells.append(f"[green]{text}[/]" if best.get(w["name"]) == combo["label"] else text)
        up = f"{combo['bringup_seconds']:.1f} s" if combo["bringup_seconds"] else "-"
        t.add_row(label, said, up, *cells)
    return t


def lines(document: dict) -> list[str]:
    """The recommendation per workload, then notes: failures, wide intervals, busy machine."""
    out = [r["line"] for r in document["recommendations"]]
    rec = document.get("recommended")
    if rec:
        hwm = "" if rec["hwm"] is None else f" --hwm {rec['hwm']}"
        out.append(f"a profile for this work: ipcluster-kit init NAME --scheme {rec['scheme']}{hwm}"
                   f"  (or --scheme auto --from-bench FILE; from the {rec['workload']} result)")  # fmt: skip
    for line in failures(document):
        out.append(f"failed: {line}")
    failed_with_tb = [(c, r) for c in document["combinations"] for r in c["runs"] if r["status"] != "ok" and r.get("traceback")]
    if failed_with_tb:  # the first remote traceback's last lines; every one is in the JSON
        combo, run = failed_with_tb[0]
        out.append(f"  remote traceback ({combo['label']}, {run['workload']}): ... {' | '.join(run['traceback'][-3:])}")
    n = document["config"]["repeat"]
    some = next((r["stats"] for c in document["combinations"] for r in c["runs"] if r["stats"]), None)
    if some and some["wide"]:
        out.append(f"with {n} repeat(s) each interval is [min, max] of the repeats and holds the median with"
                   f" {some['coverage']:.0%} confidence; --repeat 6 or more gives a true 95% interval.")  # fmt: skip
    digests = {d for c in document["combinations"] for r in c["runs"] if r["workload"] == USER and r["status"] == "ok"
               for d in r["params"].get("results_digests", [])}  # fmt: skip
    if len(digests) > 1:
        out.append(f"your function's results were not the same every time ({len(digests)} different digests):"
                   " it is not deterministic, or its results depend on the scheme.")  # fmt: skip
    gaps = [c["label"] for c in document["combinations"] if c["registration_gap_seen"]]
    if gaps:
        out.append(f"{len(gaps)} pure start(s) registered engine 1 before engine 0 (a client made then would refuse"
                   " load-balanced tasks); the shoot-out's client, made after registration, was not affected.")  # fmt: skip
    stretch = [x for c in document["combinations"] for r in c["runs"] if r["workload"] == "hetero" and r["status"] == "ok"
               for x in r["params"].get("task_stretch", [])]  # fmt: skip
    if stretch and statistics.median(stretch) > 1.15:
        kind = document["config"]["task_kind"]
        out.append(f"heterogeneous tasks ran {statistics.median(stretch):.2f}x their nominal duration in wall-clock time"
                   f" (median over runs){' because the cores were shared with the controller, the client and other work' if kind == 'cpu' else ''}:"
                   " the ratio to the bound includes that" + ("; --task-kind sleep isolates the scheduler." if kind == "cpu" else "."))  # fmt: skip
    busy = [(r.get("foreign_cpus_median"), c["label"], r["workload"]) for c in document["combinations"] for r in c["runs"]
            if r.get("foreign_cpus_median") is not None]  # fmt: skip
    if busy:
        worst = max(busy)
        if worst[0] >= 0.25:
            out.append(f"other work kept up to {worst[0]:.2f} CPUs busy during the timed runs (worst: {worst[1]},"
                       f" {worst[2]}; per run in foreign_cpus): differences may come from it, not from the scheme.")  # fmt: skip
    env = document["environment"]
    load = env["load_average"]["before"][0]
    cpus = env.get("cpus_usable") or env.get("cpu_count") or 1
    if not busy and load > 0.5 * cpus:  # the per-run figure, when there is one, says more than the load average
        out.append(f"the machine was busy when the run started (load {load:.2f} on {cpus} CPUs): differences are less certain.")
    out.extend(document.get("notes") or [])
    if document.get("total_seconds"):
        out.append(f"the shoot-out took {document['total_seconds']:.0f} s ({len(document['combinations'])} clusters).")
    return out


def _panel(ax, w: dict, combos: list[dict], best: dict, defaults: dict) -> None:
    """One workload: each combination's median with its interval, in the workload's unit."""
    labels = [c["label"] for c in combos]
    ys, values, err_low, err_high, colors, hatches = [], [], [], [], [], []
    for i, combo in enumerate(combos):
        run = _run(combo, w["name"])
        if run is None or run["status"] != "ok":
            ax.text(0, i, "  failed" if run is not None or combo["error"] else "", va="center", color="tab:red", fontsize=7)
            continue
        s = run["stats"]
        med = in_unit(w, s)
        ends = sorted([in_unit(w, s, "ci_low"), in_unit(w, s, "ci_high")])
        ys.append(i)
        values.append(med)
        err_low.append(max(med - ends[0], 0))
        err_high.append(max(ends[1] - med, 0))
        default = is_default(combo, defaults)
        colors.append("tab:green" if best.get(w["name"]) == combo["label"] else ("0.55" if default else "tab:blue"))
        hatches.append("//" if default else "")
    default_run = next((_run(c, w["name"]) for c in combos if is_default(c, defaults)), None)
    if default_run is not None and default_run["status"] == "ok":  # the default's interval: within it is a tie
        ends = sorted([in_unit(w, default_run["stats"], "ci_low"), in_unit(w, default_run["stats"], "ci_high")])
        ax.axvspan(ends[0], ends[1], color="0.85", zorder=0)
    bars = ax.barh(ys, values, xerr=[err_low, err_high], capsize=2, color=colors, edgecolor="0.2", linewidth=0.4)
    for bar, hatch in zip(bars, hatches):
        bar.set_hatch(hatch)
    for y, v, e in zip(ys, values, err_high):
        ax.annotate(f"{v:,.0f}" if w["name"] == "overhead" else f"{v:.3g}", (v + e, y), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=6)  # fmt: skip
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.invert_yaxis()
    if w["name"] == "overhead":
        ax.set_xlabel("no-op tasks per second (higher is better)")
    elif w["name"] == "hetero" and w.get("lower_bound_seconds"):
        ax.axvline(1.0, color="0.3", ls="--", lw=1)
        ax.set_xlabel("makespan / lower bound (1 = perfect; lower is better)")
        lo = min(values) if values else 1.0
        ax.set_xlim(left=min(0.9, lo * 0.9))
    else:
        ax.set_xlabel("seconds (lower is better)")
    title = w["title"] if w["name"] != USER else w.get("function", USER)
    ax.set_title(f"{title}: {w['description']}", fontsize=8)
    ax.grid(axis="x", alpha=0.3)


def png(document: dict) -> bytes:
    """The plot as PNG: one panel per workload, each combination's median with its interval;
    the default hatched with its interval as a grey band, the best green."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ipcluster_kit.bench.outputs import figure_png

    workloads = document["workloads"]
    combos = document["combinations"]
    best = {r["workload"]: r["best"]["label"] for r in document["recommendations"]}
    defaults = document["defaults"]
    ncols = min(len(workloads), 3)
    nrows = math.ceil(len(workloads) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 0.32 * len(combos) * nrows + 1.6 * nrows + 0.6),
                             squeeze=False, layout="constrained")  # fmt: skip
    for ax, w in zip(axes.flat, workloads):
        _panel(ax, w, combos, best, defaults)
    for ax in list(axes.flat)[len(workloads):]:
        ax.set_visible(False)
    env = document["environment"]
    fig.suptitle(f"ipcluster-kit bench schemes — {document['config']['engines']} engines, {env.get('cpu_count')} CPUs,"
                 f" {document['created']} (green: best; hatched: ipyparallel's default, grey band: its interval; whiskers: interval)",
                 fontsize="medium")  # fmt: skip
    return figure_png(fig)
