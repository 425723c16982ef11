"""Engine hosts: the profile's :class:`HostSpec` (``[user@]host[:port][=N]``), reused here."""

from __future__ import annotations

from typing import Iterable

from ipcluster_kit.profile.hosts import HostSpec

__all__ = ["HostSpec", "parse_hosts"]


def parse_hosts(specs: Iterable[str | HostSpec]) -> list[HostSpec]:
    """Host specs from strings (BadInput naming a malformed one); HostSpec values pass through."""
    return [s if isinstance(s, HostSpec) else HostSpec.parse(s) for s in specs]
