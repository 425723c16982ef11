"""A finding of `doctor`: where, what, how it went (ok/warn/fail/skip), in one line of detail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"


@dataclass(frozen=True)
class Check:
    """One finding: ``where`` is ``controller``, a host label or a batch system; ``status`` ok/warn/fail/skip."""

    where: str
    name: str  # connection-file, address, ports, ssh, python, ipyparallel, clock, partition, ...
    status: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.status in (OK, SKIP, WARN)

    def to_dict(self) -> dict[str, str]:
        return {"where": self.where, "name": self.name, "status": self.status, "detail": self.detail}


def all_ok(checks: Sequence[Check]) -> bool:
    return all(c.ok for c in checks)
