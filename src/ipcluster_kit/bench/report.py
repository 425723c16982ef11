"""Reports of a result document: a Rich table, the explanations, and a PNG plot.

The explanations turn the numbers into an answer: when the load-balanced map at chunk size 1 is
slower than the plain loop, they say how long a task is against the round trip it pays; when
DirectView.map is slow, how the work is spread over its contiguous blocks.
"""

from __future__ import annotations

import math

PARALLEL_ORDER = ("ipp-lbv-chunk1", "ipp-lbv-auto", "ipp-direct", "mp-pool", "process-pool", "manager-queue")
COMPUTE_WORKLOADS = ("sum", "primes")


def _runs_by(document: dict, runs: list | None = None) -> dict[tuple[str, str], dict]:
    return {(r["workload"], r["backend"]): r for r in (runs if runs is not None else document["runs"])}


def _fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 1:
        return f"{x:.2f}"
    if x >= 0.001:
        return f"{x * 1000:.1f} ms"
    return f"{x * 1e6:.0f} µs"


def _fmt_ratio(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3f}" if x < 0.01 else f"{x:.2f}"


def _workload(document: dict, name: str) -> dict:
    return next(w for w in document["workloads"] if w["name"] == name)


def table(document: dict):
    """A Rich table with one row per workload and backend."""
    from rich.table import Table

    env = document["environment"]
    cluster = env["cluster"]
    title = (f"ipcluster-kit bench: {env['workers']} worker(s)"
             + (f", cluster {cluster['source']} ({cluster['engines']} engines, scheme {cluster['scheme']})"
                if cluster["engines"] else "")
             + f", {document['config']['repeat']} repeat(s) after {document['config']['warmup']} warm-up(s)")  # fmt: skip
    t = Table(title=title, title_justify="left")
    for col, justify in (("workload", "left"), ("backend", "left"), ("workers", "right"), ("chunk", "right"),
                         ("median", "right"), ("min – max", "right"), ("95% interval", "right"),
                         ("speedup", "right"), ("efficiency", "right"), ("tasks/s", "right"),
                         ("other load", "right")):  # fmt: skip
        t.add_column(col, justify=justify)
    previous = None
    for run in document["runs"]:
        name = run["workload"]
        if previous is not None and name != previous:
            t.add_section()
        label = name if name != previous else ""
        previous = name
        chunk = run["params"].get("chunksize")
        if run["status"] != "ok":
            t.add_row(label, run["backend"], str(run["workers"]), "", "[red]failed[/]", run["error"] or "", "", "", "", "", "")
            continue
        s = run["stats"]
        interval = f"{_fmt_s(s['ci_low'])} – {_fmt_s(s['ci_high'])}" + (f" ({s['coverage']:.0%})" if s["wide"] else "")
        speedup, eff = run["speedup"], run["efficiency"]
        style = ""
        if run["backend"] != "serial" and name in COMPUTE_WORKLOADS and speedup is not None:
            style = "red" if speedup < 1 else ("green" if eff is not None and eff >= 0.9 else "")
        t.add_row(
            label, run["backend"], str(run["workers"]), "" if chunk is None else str(chunk),
            _fmt_s(s["median"]), f"{_fmt_s(s['min'])} – {_fmt_s(s['max'])}", interval,
            f"[{style}]{_fmt_ratio(speedup)}[/]" if style else _fmt_ratio(speedup),
            _fmt_ratio(eff) if name in COMPUTE_WORKLOADS or run["backend"] == "serial" else "-",
            f"{run['tasks_per_second']:,.0f}" if run["tasks_per_second"] else "-",
            "-" if run.get("foreign_cpus_median") is None else f"{run['foreign_cpus_median']:.2f}",
        )  # fmt: skip
    return t


def explanations(document: dict) -> list[str]:
    """Plain sentences about what the numbers mean (the answer to 'does my cluster pay off?')."""
    ok = {k: r for k, r in _runs_by(document).items() if r["status"] == "ok"}
    notes: list[str] = []
    for wl in (w["name"] for w in document["workloads"] if w["name"] in COMPUTE_WORKLOADS):
        notes += _workload_notes(document, wl, ok)
    notes += _overhead_notes(document)
    notes += _confidence_notes(document, ok)
    for backend in document["backends"]:
        if not backend["available"]:
            notes.append(f"{backend['name']}: not available ({backend['reason']}).")
    return notes


def _workload_notes(document: dict, wl: str, ok: dict) -> list[str]:
    """Whether parallel pays off on ``wl``, and why the load-balanced and direct maps lose when they do."""
    notes: list[str] = []
    workers = document["environment"]["workers"]
    serial = ok.get((wl, "serial"))
    if serial is None:
        return notes
    ranked = sorted(
        (r for (w, b), r in ok.items() if w == wl and b != "serial" and r["speedup"] is not None),
        key=lambda r: -r["speedup"],
    )
    if ranked:
        best = ranked[0]
        verdict = "pays off" if best["speedup"] > 1.1 else ("breaks even" if best["speedup"] >= 0.9 else "does not pay off")
        notes.append(f"{wl}: the fastest parallel backend is {best['backend']}, speedup {best['speedup']:.2f} over the"
                     f" serial loop (efficiency {best['efficiency']:.2f} on {best['workers']} workers): parallel {verdict}"
                     " here at this size.")  # fmt: skip
    info = _workload(document, wl)
    tasks = info["tasks"]
    mean_task = info["serial_reference"]["task_seconds_mean"]
    chunk1 = ok.get((wl, "ipp-lbv-chunk1"))
    auto = ok.get((wl, "ipp-lbv-auto"))
    overhead = None
    if auto is not None:
        overhead = auto["params"].get("overhead_probe", {}).get("overhead_seconds")
    if chunk1 is not None and chunk1["speedup"] is not None and chunk1["speedup"] < 0.9 * workers:
        per_task = chunk1["stats"]["median"] * chunk1["workers"] / tasks
        text = (f"{wl}: load_balanced_view().map with chunksize=1 reaches a speedup of {chunk1['speedup']:.2f}: each of the {tasks}"
                f" tasks does {_fmt_s(mean_task)} of work")  # fmt: skip
        if overhead is not None:
            text += f" and pays a round trip of ~{_fmt_s(overhead)} (no-op probe)"
        text += f"; an engine spends {_fmt_s(per_task)} per task in all."
        if auto is not None and auto["params"].get("chunksize", 1) > 1:
            c = auto["params"].get("chunksize")
            text += (f" With chunksize={c} ({math.ceil(tasks / c)} chunks) the same map reaches"
                     f" {auto['speedup']:.2f}.")  # fmt: skip
        notes.append(text)
    if auto is not None and auto["params"].get("choice"):
        choice = auto["params"]["choice"]
        c = auto["params"]["chunksize"]
        notes.append(f"{wl}: ipp-lbv-auto chose chunksize={c} ({math.ceil(tasks / c)} parts) from a round trip of"
                     f" {_fmt_s(choice['overhead_seconds'])} and the serial task durations; its model predicted"
                     f" {_fmt_s(choice['predicted_seconds'])} (chunksize=1: {_fmt_s(choice['predicted_seconds_chunk1'])}),"
                     f" measured {_fmt_s(auto['stats']['median'])}.")  # fmt: skip
    notes += _engine_time_notes(wl, ok, serial)
    direct = ok.get((wl, "ipp-direct"))
    shares = (direct or {}).get("params", {}).get("block_work_shares")
    if direct is not None and shares and max(shares) > 1.2 / len(shares):
        notes.append(f"{wl}: DirectView.map gives each engine one contiguous block of the input; the blocks hold"
                     f" {', '.join(f'{s:.0%}' for s in shares)} of the work, so at serial task speed its speedup is at most"
                     f" {1 / max(shares):.2f} (measured {direct['speedup']:.2f}).")  # fmt: skip
    return notes


def _engine_time_notes(wl: str, ok: dict, serial: dict) -> list[str]:
    """Where the engines' time went on ``wl``: work (against serial) and idle share, per ipyparallel backend."""
    parts = []
    for backend in ("ipp-lbv-chunk1", "ipp-lbv-auto", "ipp-direct"):
        split = engine_split(ok.get((wl, backend)))
        if split is not None:
            busy, idle_share = split
            parts.append(f"{backend} worked {_fmt_s(busy)} ({busy / serial['stats']['median']:.2f}x serial),"
                         f" idle {idle_share:.0%}")  # fmt: skip
    if not parts:
        return []
    return [f"{wl}, where the engines' time went (medians; work as timed by the engines, idle = the rest"
            f" of engines x wall time): {'; '.join(parts)}. Work above 1.00x serial is the engines' handling"
            " of each task (decoding it, encoding the result) or a slower CPU (shared with the controller"
            " and the client, or other load); idle is round trips, dispatch and the uneven end."]  # fmt: skip


def _overhead_notes(document: dict) -> list[str]:
    notes: list[str] = []
    overhead = document.get("overhead") or {}
    if overhead:
        parts = []
        for backend in PARALLEL_ORDER:
            o = overhead.get(backend)
            if o and o["tasks_per_second"]:
                chunk = f", chunk {o['chunksize']}" if o.get("chunksize") else ""
                parts.append(f"{backend} {o['tasks_per_second']:,.0f}/s ({_fmt_s(o['seconds_per_task'])} per task{chunk})")
        if parts:
            notes.append("no-op tasks (pure overhead): " + "; ".join(parts) + ".")
    return notes


def _confidence_notes(document: dict, ok: dict) -> list[str]:
    """How far the figures can be trusted: repeats, other load on the machine."""
    notes: list[str] = []
    env = document["environment"]
    lows = [r["stats"] for r in ok.values() if r["stats"]["wide"]]
    if lows:
        n = lows[0]["n"]
        notes.append(f"with {n} repeat(s) the interval is [min, max] and holds the median with only"
                     f" {lows[0]['coverage']:.0%} confidence; --repeat 6 or more gives a true 95% interval.")  # fmt: skip
    load = env["load_average"]["before"][0]
    cpus = env.get("cpus_usable") or env.get("cpu_count") or 1
    foreign = [r["foreign_cpus_median"] for r in ok.values() if r.get("foreign_cpus_median") is not None]
    if foreign and max(foreign) >= 0.2:
        worst = max((r for r in ok.values() if r.get("foreign_cpus_median") is not None),
                    key=lambda r: r["foreign_cpus_median"])  # fmt: skip
        notes.append(f"other processes kept up to {max(foreign):.2f} of {cpus} CPUs busy during the timed runs"
                     f" (median per backend; worst {worst['backend']} on {worst['workload']}, column 'other load'):"
                     " the parallel figures understate what an idle machine gives.")  # fmt: skip
        quiet = quiet_speedups(document)
        for wl, parts in quiet.items():
            text = ", ".join(f"{b} {sp:.2f} ({n} runs)" for b, (sp, n) in parts.items())
            notes.append(f"{wl}, counting only runs during which other work used under {QUIET_CPUS} CPU"
                         f" (serial and backend alike): speedup {text}.")  # fmt: skip
    elif load > 0.5 * cpus and not foreign:
        notes.append(f"the machine was busy when the run started (load {load:.2f} on {cpus} CPUs): other work"
                     " slows parallel backends more than the serial loop.")  # fmt: skip
    return notes


def engine_split(run: dict | None) -> tuple[float, float] | None:
    """(median engine work seconds, idle share of workers x wall) of an ipyparallel run, or None."""
    import statistics

    if not run or run["status"] != "ok":
        return None
    busy = [d["engine_busy_seconds"] for d in run.get("details") or [] if d and "engine_busy_seconds" in d]
    if not busy:
        return None
    work = statistics.median(busy)
    capacity = run["stats"]["median"] * max(run["workers"], 1)
    return work, max(0.0, 1.0 - work / capacity) if capacity > 0 else 0.0


QUIET_CPUS = 0.1
MIN_QUIET_RUNS = 3


def quiet_speedups(document: dict, threshold: float = QUIET_CPUS) -> dict[str, dict[str, tuple[float, int]]]:
    """Per compute workload and backend: (serial median / backend median, runs) over quiet runs only.

    A run is quiet when other processes kept fewer than ``threshold`` CPUs busy during it. The
    selection looks only at the machine's load, never at the timings; at least three quiet runs of
    serial and of the backend are needed.
    """
    import statistics

    def quiet(run: dict) -> list[float]:
        return [s for s, f in zip(run["seconds"], run.get("foreign_cpus") or []) if f is not None and f < threshold]

    runs = _runs_by(document)
    out: dict[str, dict[str, tuple[float, int]]] = {}
    for wl in (w["name"] for w in document["workloads"] if w["name"] in COMPUTE_WORKLOADS):
        serial = runs.get((wl, "serial"))
        if serial is None or serial["status"] != "ok":
            continue
        base = quiet(serial)
        if len(base) < MIN_QUIET_RUNS:
            continue
        for (w, backend), run in runs.items():
            if w != wl or backend == "serial" or run["status"] != "ok":
                continue
            times = quiet(run)
            if len(times) >= MIN_QUIET_RUNS:
                out.setdefault(wl, {})[backend] = (statistics.median(base) / statistics.median(times), len(times))
    return out


def _backends_plotted(document: dict, runs: dict, workloads: list[str]) -> list[str]:
    backends = [b for b in PARALLEL_ORDER if any((w, b) in runs for w in [*workloads, "overhead"])]
    backends += [b["name"] for b in document["backends"] if b["name"] not in backends and b["name"] != "serial"
                 and any((w, b["name"]) in runs for w in [*workloads, "overhead"])]  # fmt: skip
    return backends


def _bars(ax, runs: dict, workloads: list[str], colors: dict, metric: str, ideal: float, ylabel: str, workers: int) -> None:
    """Speedup or efficiency: one group of bars per workload, one bar per backend, whiskers = interval."""
    backends = list(colors)
    width = 0.8 / max(len(backends), 1)
    for i, backend in enumerate(backends):
        xs, ys, errs = [], [], [[], []]
        for j, wl in enumerate(workloads):
            r = runs.get((wl, backend))
            if not r or r["status"] != "ok" or r[metric] is None:
                continue
            y = r[metric]
            low, high = r["speedup_interval"] or [None, None]
            scale = 1.0 if metric == "speedup" else 1.0 / max(r["workers"], 1)
            xs.append(j + (i - (len(backends) - 1) / 2) * width)
            ys.append(y)
            errs[0].append(max(y - (low * scale if low is not None else y), 0))
            errs[1].append(max((high * scale if high is not None else y) - y, 0))
        if xs:
            ax.bar(xs, ys, width, yerr=errs, capsize=2, color=colors[backend], label=backend)
            for x, y, up in zip(xs, ys, errs[1]):
                ax.annotate(f"{y:.2f}", (x, y + up), xytext=(0, 2), textcoords="offset points", ha="center",
                            va="bottom", fontsize=6, rotation=90)
    ax.axhline(ideal, color="0.3", lw=1, ls="--")
    ax.axhline(1.0 if metric == "speedup" else 1.0 / max(workers, 1), color="0.6", lw=0.8, ls=":")
    ax.set_xticks(range(len(workloads)), workloads)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)


def _throughput(ax, runs: dict, colors: dict) -> None:
    names, values = [], []
    for backend in colors:
        r = runs.get(("overhead", backend))
        if r and r["status"] == "ok" and r["tasks_per_second"]:
            chunk = r["params"].get("chunksize")
            names.append(backend + (f"\n(chunk {chunk})" if chunk else ""))
            values.append(r["tasks_per_second"])
    ax.barh(range(len(values)), values, color=[colors[n.split("\n")[0]] for n in names])
    ax.set_yticks(range(len(values)), names, fontsize="small")
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("no-op tasks per second (log scale)")
    ax.set_title("overhead: no-op throughput")
    ax.grid(axis="x", alpha=0.3)


def _scaling(ax, document: dict, wl: str, colors: dict, rounds: dict) -> None:
    counts = sorted(rounds)
    for backend in colors:
        xs, ys = [], []
        for k in counts:
            r = _runs_by(document, rounds[k]).get((wl, backend))
            if r and r["status"] == "ok" and r["speedup"] is not None:
                xs.append(k)
                ys.append(r["speedup"])
        if xs:
            ax.plot(xs, ys, marker="o", color=colors[backend], label=backend)
    ax.plot(counts, counts, color="0.3", ls="--", lw=1, label="ideal")
    ax.set_xticks(counts)
    ax.set_xlabel("workers (engines / processes)")
    ax.set_ylabel("speedup vs serial")
    ax.set_title(f"scaling: {wl}")
    ax.grid(alpha=0.3)


def png(document: dict) -> bytes:
    """The plot as PNG: speedup and efficiency per backend and workload, no-op throughput, and
    scaling if measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ipcluster_kit.bench.outputs import figure_png

    runs = _runs_by(document)
    workloads = [w["name"] for w in document["workloads"] if w["name"] in COMPUTE_WORKLOADS]
    colors = {b: plt.get_cmap("tab10")(i % 10) for i, b in enumerate(_backends_plotted(document, runs, workloads))}
    workers = document["environment"]["workers"]
    scaling = document.get("scaling")
    has_overhead = any(w["name"] == "overhead" for w in document["workloads"])
    nrows = 2 if scaling and workloads else 1
    ncols = 3 if has_overhead else 2
    fig = plt.figure(figsize=(5.2 * ncols, 4.4 * nrows), layout="constrained")
    grid = fig.add_gridspec(nrows, ncols)
    if workloads:
        ax1 = fig.add_subplot(grid[0, 0])
        _bars(ax1, runs, workloads, colors, "speedup", workers, f"speedup vs serial (ideal {workers}, dashed)", workers)
        ax1.set_title("speedup (bars: median; whiskers: interval)")
        handles, labels = ax1.get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6), fontsize="small")
        ax2 = fig.add_subplot(grid[0, 1])
        _bars(ax2, runs, workloads, colors, "efficiency", 1.0, "parallel efficiency = speedup / workers", workers)
        ax2.set_title("efficiency")
    if has_overhead:
        _throughput(fig.add_subplot(grid[0, ncols - 1]), runs, colors)
    if scaling and workloads:
        rounds = {workers: document["runs"], **{r["workers"]: r["runs"] for r in scaling["rounds"]}}
        for j, wl in enumerate(workloads[:ncols]):
            ax = fig.add_subplot(grid[1, j])
            _scaling(ax, document, wl, colors, rounds)
            if j == 0:
                ax.legend(fontsize="small")
    env = document["environment"]
    fig.suptitle(f"ipcluster-kit bench — {env['workers']} workers, {env.get('cpu_count')} CPUs, "
                 f"{document['created']}", fontsize="medium")  # fmt: skip
    return figure_png(fig)
