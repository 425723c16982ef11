"""Reports of a chunk-size sweep document: a Rich table, plain-sentence notes, and a PNG plot."""

from __future__ import annotations

import statistics

from ipcluster_kit.bench.outputs import figure_png
from ipcluster_kit.bench.report import _fmt_ratio as fmt_ratio
from ipcluster_kit.bench.report import _fmt_s as fmt_seconds


def _points(document: dict) -> list[dict]:
    return document["points"]


def table(document: dict):
    """One row per swept chunk size (then the reference backends): predicted and measured."""
    from rich.table import Table

    env = document["environment"]
    wl = document["workload"]
    config = document["config"]
    best = (document["summary"]["best"] or {}).get("chunksize")
    t = Table(title=f"ipcluster-kit bench sweep: {wl['name']} ({wl['tasks']} tasks) on {env['workers']} engine(s),"
                    f" {config['repeat']} repeat(s) after {config['warmup']} warm-up(s)", title_justify="left")  # fmt: skip
    for col in ("chunk", "parts", "predicted", "median", "min – max", "speedup", "vs best", "", "other load"):
        t.add_column(col, justify="left" if col == "" else "right")
    serial = document["serial"]
    best_seconds = (document["summary"]["best"] or {}).get("seconds")

    def row(label: str, parts: str, predicted: float | None, run: dict, mark: str) -> None:
        if run["status"] != "ok":
            t.add_row(label, parts, fmt_seconds(predicted), "[red]failed[/]", run["error"] or "", "", "", mark, "")
            return
        s = run["stats"]
        ratio = s["median"] / best_seconds if best_seconds else None
        t.add_row(label, parts, fmt_seconds(predicted), fmt_seconds(s["median"]),
                  f"{fmt_seconds(s['min'])} – {fmt_seconds(s['max'])}", fmt_ratio(run["speedup"]),
                  "-" if ratio is None else f"{ratio:.2f}", mark,
                  "-" if run.get("foreign_cpus_median") is None else f"{run['foreign_cpus_median']:.2f}")  # fmt: skip

    row("serial", "", None, serial, "")
    t.add_section()
    for p in _points(document):
        marks = [m for m, on in (("automatic", p["automatic"]), ("best", p["chunksize"] == best)) if on]
        row(str(p["chunksize"]), str(p["parts"]), p["predicted_seconds"], p, ", ".join(marks))
    if document["references"]:
        t.add_section()
        for r in document["references"]:
            row(r["backend"], "", None, r, "")
    return t


def notes(document: dict) -> list[str]:
    """What the sweep says about the automatic choice and the model, in plain sentences."""
    out: list[str] = []
    summary = document["summary"]
    model = document["model"]
    probe = model["probe"]
    wl = document["workload"]["name"]
    best, auto = summary["best"], summary["automatic"]
    if best and auto:
        verdict = "within" if auto["near_best"] else "NOT within"
        out.append(f"{wl}: the automatic chunk size {auto['chunksize']} ({auto['parts']} parts) measured"
                   f" {fmt_seconds(auto['seconds'])}, {auto['ratio_to_best']:.3f}x the best swept size {best['chunksize']}"
                   f" ({fmt_seconds(best['seconds'])}): {verdict} 5% of it.")  # fmt: skip
        out.append(f"{wl}: the model predicted {fmt_seconds(auto['predicted_seconds'])} at the automatic size,"
                   f" {auto['prediction_error']:+.1%} against the measurement.")  # fmt: skip
    if summary["model_error"]:
        e = summary["model_error"]
        out.append(f"over the {e['points']} swept sizes the model's prediction is off by {e['median']:.1%} (median),"
                   f" at most {e['max']:.1%}.")  # fmt: skip
    out.append(f"the model's inputs, probed through the same view: a round trip of {fmt_seconds(probe['overhead_seconds'])}"
               f" per chunk and engine, {fmt_seconds(probe.get('latency_seconds'))} more once per map, engines computing at"
               f" {probe.get('engine_speed', 1.0):.2f}x the serial loop's time side by side; one engine assumed"
               f" {model['speed_spread']:.0%} slower than the others.")  # fmt: skip
    serial = document["serial"]
    auto_point = next((p for p in _points(document) if p["automatic"] and p["status"] == "ok"), None)
    busy = [d["engine_busy_seconds"] for d in (auto_point or {}).get("details") or [] if d and "engine_busy_seconds" in d]
    if busy and serial["status"] == "ok":
        work = statistics.median(busy)
        capacity = auto_point["stats"]["median"] * auto_point["workers"]
        out.append(f"at the automatic size the engines worked {fmt_seconds(work)} ({work / serial['stats']['median']:.2f}x"
                   f" the serial loop's time) and were idle {max(0.0, 1 - work / capacity):.0%} of engines x wall time.")  # fmt: skip
    for r in document["references"]:
        if r["status"] == "ok" and auto:
            out.append(f"{r['backend']}: {fmt_seconds(r['stats']['median'])}, the automatic chunk size"
                       f" {auto['seconds'] / r['stats']['median']:.3f}x its time.")  # fmt: skip
    return out


def png(document: dict) -> bytes:
    """Measured speedup against chunk size (log scale), the model's prediction over it, the
    automatic choice and the best size marked, other backends as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    serial = document["serial"]
    serial_median = serial["stats"]["median"] if serial["status"] == "ok" else None
    workers = document["environment"]["workers"]
    fig, ax = plt.subplots(figsize=(8.5, 4.8), layout="constrained")
    if serial_median:
        curve = document["model"]["curve"]
        ax.plot([c["chunksize"] for c in curve], [serial_median / c["predicted_seconds"] for c in curve],
                color="C0", lw=1.2, label="model: serial median / predicted time")  # fmt: skip
    ok = [p for p in _points(document) if p["status"] == "ok" and p["speedup"] is not None]
    if ok:
        ys = [p["speedup"] for p in ok]
        lows = [max(0.0, y - (p["speedup_interval"][0] or y)) for p, y in zip(ok, ys)]
        highs = [max(0.0, (p["speedup_interval"][1] or y) - y) for p, y in zip(ok, ys)]
        ax.errorbar([p["chunksize"] for p in ok], ys, yerr=[lows, highs], fmt="o", color="C3", capsize=3,
                    label="measured: median speedup (whiskers: interval)")  # fmt: skip
    best = document["summary"]["best"]
    auto = next((p for p in ok if p["automatic"]), None)
    if auto is not None:
        ax.axvline(auto["chunksize"], color="C2", ls="--", lw=1)
        ax.plot([auto["chunksize"]], [auto["speedup"]], marker="*", ms=16, color="C2", ls="none",
                label=f"automatic choice: {auto['chunksize']} ({auto['parts']} parts)")  # fmt: skip
    if best is not None and best["speedup"] is not None:
        ax.plot([best["chunksize"]], [best["speedup"]], marker="D", ms=9, mfc="none", mec="k", ls="none",
                label=f"best measured: {best['chunksize']}")  # fmt: skip
    for i, r in enumerate(document["references"]):
        if r["status"] == "ok" and r["speedup"] is not None:
            ax.axhline(r["speedup"], color=f"C{4 + i}", ls=":", lw=1.2, label=f"{r['backend']}: {r['speedup']:.2f}")
    ax.axhline(workers, color="0.5", ls="--", lw=0.8, label=f"ideal: {workers}")
    ax.axhline(1.0, color="0.7", lw=0.8)
    ax.set_xscale("log")
    wl = document["workload"]
    ax.set(xlabel="chunk size (log scale; the map sends ceil(n / chunk size) parts)", ylabel="speedup vs the serial loop",
           ylim=(0, None), title=f"{wl['name']}: {wl['tasks']} tasks on {workers} engines, {document['created']}")  # fmt: skip
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small", loc="best")
    return figure_png(fig)
