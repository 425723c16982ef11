"""Engine launcher names, as ipyparallel registers them, read without importing ipyparallel."""

from __future__ import annotations

from importlib.metadata import entry_points

ENGINE_LAUNCHER_GROUP = "ipyparallel.engine_launchers"

# Launchers that submit jobs to a batch system; their profile carries queue, walltime, account.
BATCH_LAUNCHERS = ("slurm", "pbs", "sge", "lsf", "htcondor", "batch")


def engine_launcher_names() -> list[str]:
    """Entry-point names of every installed engine launcher (``local``, ``ssh``, ``slurm`` ...)."""
    return sorted({ep.name for ep in entry_points(group=ENGINE_LAUNCHER_GROUP)})


def engine_launcher_target(name: str) -> str | None:
    """``module:Class`` of the named launcher, or None when no such launcher is installed."""
    for ep in entry_points(group=ENGINE_LAUNCHER_GROUP):
        if ep.name == name:
            return ep.value
    return None
