"""The recommendation of a shoot-out, and reading a shoot-out file: all that ``init --scheme auto`` needs.

Per workload, the best combination (lowest median time) is compared with ipyparallel's default
(``leastload``, ``hwm=1``): ``better`` when their 95% intervals are apart (the best is
recommended), ``tie`` when they overlap (keep the default), ``default-best``, ``inconclusive``
(fewer than 3 repeats: keep the default) or ``no-default`` (the default did not run: the best is
recommended). Whenever ``pure`` is the one recommended, the line says what it gives up.
"""

from __future__ import annotations

import math
import os

from ipcluster_kit import schemas
from ipcluster_kit.errors import BadInput
from ipcluster_kit.profile.spec import PURE_TRADEOFFS

KIND = schemas.DocumentKind(
    "ipcluster-kit/bench-schemes", 1, "bench-schemes-v1.json", "scheme shoot-out result",
    "write one with `ipcluster-kit bench schemes --json FILE`", aliases=("ipcluster-kit/bench-schedulers",),
)  # fmt: skip
SCHEMA_NAME, SCHEMA_VERSION = KIND.name, KIND.version

PURE = "pure"
USER = "user"
WORKLOAD_NAMES = ("overhead", "hetero", "sum", "primes")
TITLES = {"overhead": "no-op throughput", "hetero": "heterogeneous tasks", "sum": "sum", "primes": "primes", USER: "your function"}
# Which workload's recommendation a profile gets (`init --scheme auto`), first present wins.
RECOMMEND_ORDER = (USER, "hetero", "primes", "sum", "overhead")
MIN_REPEATS_TO_COMPARE = 3


def pure_caveat(scheme: str) -> str:
    """What choosing ``scheme`` gives up, as a clause to append; empty for every scheme but pure."""
    return f"; pure gives up {PURE_TRADEOFFS}" if scheme == PURE else ""


def is_default(combo: dict, defaults: dict) -> bool:
    """Whether ``combo`` is ipyparallel's default scheme and hwm."""
    return combo["scheme"] == defaults["scheme"] and combo["hwm"] == defaults["hwm"]


def _overlap(a: dict, b: dict) -> bool:
    return max(a["ci_low"], b["ci_low"]) <= min(a["ci_high"], b["ci_high"])


def in_unit(workload: dict, stats_: dict, which: str = "median") -> float:
    """A run's time expressed in the workload's own unit: tasks/s, x of the bound, or seconds."""
    t = stats_[which]
    if workload["name"] == "overhead":
        return workload["tasks"] / t if t > 0 else math.inf
    if workload["name"] == "hetero" and workload.get("lower_bound_seconds"):
        return t / workload["lower_bound_seconds"]
    return t


def format_value(workload: dict, stats_: dict, *, long: bool = False) -> str:
    """``437 tasks/s [430–445]``, ``1.16x of the bound [1.14–1.19]`` or ``0.52 s [0.51–0.53]``."""
    med = in_unit(workload, stats_)
    if workload["name"] == "overhead":  # higher is better: the interval's ends swap
        low, high = in_unit(workload, stats_, "ci_high"), in_unit(workload, stats_, "ci_low")
        return f"{med:,.0f}{' tasks' if long else ''}/s [{low:,.0f}–{high:,.0f}]"
    low, high = in_unit(workload, stats_, "ci_low"), in_unit(workload, stats_, "ci_high")
    if workload["name"] == "hetero" and workload.get("lower_bound_seconds"):
        return f"{med:.2f}x{' of the bound' if long else ''} [{low:.2f}–{high:.2f}]"
    return f"{med:.3g} s [{low:.3g}–{high:.3g}]"


def difference(workload: dict, best: dict, default: dict) -> tuple[float, str]:
    """How much better the best is than the default, in percent, and the words for it."""
    if workload["name"] == "overhead":
        return (default["median"] / best["median"] - 1) * 100, "more tasks/s than"
    if workload["name"] == "hetero":
        return (1 - best["median"] / default["median"]) * 100, "better than"
    return (1 - best["median"] / default["median"]) * 100, "faster than"


def _verdict(best_combo: dict, best: dict, default_combo: dict | None, default: dict | None) -> str:
    if default is None:
        return "no-default"
    if default_combo is best_combo:
        return "default-best"
    if min(best["n"], default["n"]) < MIN_REPEATS_TO_COMPARE:
        return "inconclusive"
    return "tie" if _overlap(best, default) else "better"


def recommend_workload(document: dict, workload: dict) -> dict | None:
    """The best combination on one workload, against the default, with a verdict and a line.

    Verdicts: ``better`` (intervals apart: the best is recommended), ``tie`` (they overlap: keep the
    default), ``default-best``, ``inconclusive`` (fewer than 3 repeats: keep the default),
    ``no-default`` (the default combination was not measured or failed: the best is recommended).
    """
    name = workload["name"]
    candidates = []
    for combo in document["combinations"]:
        for run in combo["runs"]:
            if run["workload"] == name and run["status"] == "ok" and run["stats"]:
                candidates.append((combo, run["stats"]))
    if not candidates:
        return None
    defaults = document["defaults"]
    best_combo, best = min(candidates, key=lambda c: c[1]["median"])
    found = [c for c in candidates if is_default(c[0], defaults)]
    default_combo, default = found[0] if found else (None, None)
    title = TITLES.get(name, name)
    if name == USER:
        title = next((w.get("function") for w in document["workloads"] if w["name"] == USER), None) or title
    default_label = f"the default {defaults['scheme']}, hwm={defaults['hwm']}"
    ties = [c["label"] for c, s in candidates if c is not best_combo and _overlap(s, best)]
    verdict = _verdict(best_combo, best, default_combo, default)
    long_best = format_value(workload, best, long=True)
    pct, versus = None, ""
    if default is not None and default_combo is not best_combo:
        pct, words = difference(workload, best, default)
        versus = f"{pct:.0f}% {words} {default_label} ({format_value(workload, default)})"
    if verdict == "better":
        line = f"for {title}: {best_combo['label']}, {long_best}, {versus}"
    elif verdict == "tie":
        line = (f"for {title}: {best_combo['label']} is fastest ({long_best}), {versus},"
                " but that is a tie with the default (within noise): keep the default")  # fmt: skip
    elif verdict == "inconclusive":
        line = (f"for {title}: {best_combo['label']} is fastest ({long_best}), {versus},"
                f" but {min(best['n'], default['n'])} repeat(s) cannot tell them apart (use --repeat 5 or more): keep the default")  # fmt: skip
    elif verdict == "default-best":
        named = "; ".join(ties[:4]) + (f"; and {len(ties) - 4} more" if len(ties) > 4 else "")
        others = f"; {len(ties)} other(s) within noise ({named})" if ties else "; every other combination is slower beyond noise"
        line = f"for {title}: {default_label} is best ({long_best}){others}"
    else:
        line = f"for {title}: {best_combo['label']}, {long_best} ({default_label} was not measured or failed)"
    chosen = best_combo if verdict in ("better", "no-default") else default_combo
    line += pure_caveat(chosen["scheme"])
    return {
        "workload": name, "verdict": verdict,
        "best": {"label": best_combo["label"], "scheme": best_combo["scheme"], "hwm": best_combo["hwm"], "stats": best},
        "default": None if default is None else {"label": default_combo["label"], "scheme": default_combo["scheme"],
                                                 "hwm": default_combo["hwm"], "stats": default},
        "difference_percent": pct,
        "within_noise_of_best": ties,
        "chosen": {"scheme": chosen["scheme"], "hwm": chosen["hwm"], "label": chosen["label"]},
        "line": line,
    }  # fmt: skip


def recommendations(document: dict) -> list[dict]:
    out = []
    for workload in document["workloads"]:
        rec = recommend_workload(document, workload)
        if rec is not None:
            out.append(rec)
    return out


def overall(document: dict, workload: str | None = None) -> dict | None:
    """The recommendation a profile gets: for ``workload``, or the first of ``RECOMMEND_ORDER`` measured."""
    by_name = {r["workload"]: r for r in document.get("recommendations") or []}
    order = [workload] if workload else [w for w in RECOMMEND_ORDER if w in by_name]
    for name in order:
        rec = by_name.get(name)
        if rec is not None:
            return {"workload": name, "scheme": rec["chosen"]["scheme"], "hwm": rec["chosen"]["hwm"],
                    "verdict": rec["verdict"], "line": rec["line"]}  # fmt: skip
    return None


def failures(document: dict) -> list[str]:
    """One line per combination or run that failed."""
    out = []
    for combo in document["combinations"]:
        if combo["error"]:
            out.append(f"{combo['label']}: {combo['error']}")
        out.extend(f"{combo['label']} on {r['workload']}: {r['error']}" for r in combo["runs"] if r["status"] != "ok")
    return out


def validation_errors(document: object) -> list[str]:
    """Why ``document`` is not a shoot-out result (empty when it is), by its JSON Schema."""
    return schemas.errors(document, KIND)


def load(path: str | os.PathLike) -> dict:
    """Read and check a shoot-out result file; BadInput naming the file when it is not one."""
    return schemas.load_document(path, KIND)


def _choice(document: dict, path: str | os.PathLike, workload: str | None) -> dict:
    available = [r["workload"] for r in document["recommendations"]]
    if workload is not None and workload not in available:
        raise BadInput(f"{str(path)!r} has no successful {workload!r} result (it has: {', '.join(available) or 'none'})")
    choice = overall(document, workload)
    if choice is None:
        raise BadInput(f"{str(path)!r} has no successful result to recommend a scheme from")
    return choice


def recommended_from_file(path: str | os.PathLike, workload: str | None = None) -> tuple[str, int | None]:
    """``(scheme, hwm)`` recommended by a ``bench schemes --json`` file, for ``init --scheme auto``.

    ``workload`` picks whose recommendation (default: your function if measured, else hetero, primes,
    sum, overhead). When the best is a tie with the default (or too few repeats tell them apart) the
    default is returned. ``hwm`` is None for ``pure`` (it has none).
    """
    choice = _choice(load(path), path, workload)
    return choice["scheme"], choice["hwm"]


def resolve_auto_scheme(
    scheme: str | None, hwm: int | None, from_bench: str | os.PathLike | None, workload: str | None = None
) -> tuple[str | None, int | None, str | None]:
    """What ``init`` passes to ``build_spec``: ``(scheme, hwm, note)``.

    ``--scheme auto`` (or ``--from-bench FILE`` alone) takes scheme and hwm from the shoot-out
    file; an explicit ``--hwm`` still wins. Any other ``--scheme`` is passed through unchanged.
    BadInput (before anything is written) for ``auto`` without a file, a file with a scheme named
    too, or a file that is not a shoot-out result. The note says where the choice came from, and
    what ``pure`` gives up when that is the choice.
    """
    if workload is not None and from_bench is None:
        raise BadInput(f"--bench-workload {workload} picks whose recommendation --from-bench FILE gives; give --from-bench too")
    if scheme != "auto" and from_bench is None:
        return scheme, hwm, None
    if from_bench is None:
        raise BadInput("--scheme auto needs --from-bench FILE (written by `ipcluster-kit bench schemes --json FILE`)")
    if scheme not in (None, "auto"):
        raise BadInput(f"--from-bench chooses the scheme: give --scheme auto (or nothing), not --scheme {scheme}")
    choice = _choice(load(from_bench), from_bench, workload)
    line = choice["line"] if pure_caveat(choice["scheme"]) in choice["line"] else choice["line"] + pure_caveat(choice["scheme"])
    note = f"scheme from {from_bench} ({choice['workload']}): {line}"
    return choice["scheme"], (hwm if hwm is not None else choice["hwm"]), note
