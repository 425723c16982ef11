"""Between the cluster state and the remote layer: start, report on and stop engines on SSH hosts."""

from __future__ import annotations

from pathlib import Path

from ipcluster_kit.cluster.state import ClusterState
from ipcluster_kit.errors import KitError
from ipcluster_kit.profile.spec import ProfileSpec


def start_remote(spec: ProfileSpec, profile_dir: Path, state: ClusterState, *, timeout: float, progress) -> None:
    raise KitError("bringing up engines on remote hosts is not available yet in this version")


def stop_remote(state: ClusterState, *, timeout: float) -> int:
    return 0


def status_remote(state: ClusterState, *, timeout: float) -> list[dict]:
    return []
