"""Engines on other hosts over SSH: every host brought up at once (see :mod:`ipcluster_kit.remote`).

Options (``EngineSetContext.options``): ``ssh_options`` (:class:`~ipcluster_kit.remote.ssh.SSHOptions`,
else the profile's ``ssh_config``), ``hosts`` (instead of the profile's, for ``bootstrap``),
``remote_python`` (instead of the profile's), ``max_clock_skew`` (doctor).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ipcluster_kit.checks import Check
from ipcluster_kit.cluster.enginesets.base import (
    EngineSet,
    EngineSetRecord,
    EngineStatus,
    Preview,
    SetStatus,
    SetStop,
    register,
)
from ipcluster_kit.errors import BadInput
from ipcluster_kit.profile.hosts import HostSpec
from ipcluster_kit.profile.store import ENGINE_CONNECTION_FILE, connection_files

_PLAIN = re.compile(r"^[\w@%+=:,./~-]+$")


@dataclass
class SSHRecord(EngineSetRecord):
    """Per host: where its engines run and their PIDs with start times; the SSH settings to reach them."""

    kind = "ssh"
    hosts: list[Any] = field(default_factory=list)  # remote.bootstrap.HostRecord, one per host that started engines
    ssh: dict[str, Any] = field(default_factory=dict)  # SSHOptions.to_dict(): reused by status and stop
    failures: list[str] = field(default_factory=list)  # one line per host that did not come up

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SSHRecord":
        from ipcluster_kit.remote.records import HostRecord

        return cls(engines=data["engines"], started_at=data["started_at"],
                   hosts=[HostRecord.from_dict(h) for h in data["hosts"]], ssh=data.get("ssh", {}),
                   failures=list(data.get("failures", [])))  # fmt: skip

    def host_labels(self) -> list[str]:
        return [h.host.label for h in self.hosts]


def ssh_options(
    spec: Any,
    ssh_config: Sequence[str] | None = None,
    *,
    accept_new_host_keys: bool = False,
    connect_timeout: float | None = None,
) -> Any:
    """SSH options from the command line, falling back on the profile's ``ssh_config``; validated."""
    from ipcluster_kit.remote.ssh import DEFAULT_CONNECT_TIMEOUT, SSHOptions

    configs = list(ssh_config) if ssh_config else ([spec.ssh_config] if getattr(spec, "ssh_config", None) else None)
    return SSHOptions.build(configs, accept_new_host_keys=accept_new_host_keys,
                            connect_timeout=DEFAULT_CONNECT_TIMEOUT if connect_timeout is None else connect_timeout)  # fmt: skip


def remote_profile_dir_for(spec: Any) -> str:
    from ipcluster_kit.remote.bootstrap import default_remote_profile_dir

    return spec.remote_profile_dir or default_remote_profile_dir(spec.name)


@register
class SSHEngines(EngineSet):
    kind = "ssh"
    launchers = ("ssh",)
    record_type = SSHRecord

    @classmethod
    def for_hosts(cls, spec: Any, profile_dir: Any, hosts: Sequence[str] | None = None, *,
                  ssh_config: Sequence[str] | None = None, accept_new_host_keys: bool = False,
                  connect_timeout: float | None = None, remote_python: str | None = None,
                  deadline: float = float("inf")) -> "SSHEngines":  # fmt: skip
        """The SSH engine set of ``hosts`` (default: the profile's) with command-line SSH settings
        (`doctor`, `bootstrap`); the settings are checked here, before any host is contacted."""
        from ipcluster_kit.cluster.enginesets.base import EngineSetContext
        from ipcluster_kit.profile.hosts import parse_hosts
        from ipcluster_kit.validate import check_text

        if remote_python is not None:
            check_text("--remote-python", remote_python)
        chosen = parse_hosts(hosts) if hosts else list(spec.hosts)
        options = {"hosts": chosen, "remote_python": remote_python,
                   "ssh_options": ssh_options(spec, ssh_config, accept_new_host_keys=accept_new_host_keys,
                                              connect_timeout=connect_timeout)}  # fmt: skip
        return cls(EngineSetContext(spec=spec, profile_dir=profile_dir, engines=sum(h.engines for h in chosen),
                                    deadline=deadline, options=options))  # fmt: skip

    @property
    def hosts(self) -> list[HostSpec]:
        return list(self.context.options.get("hosts") or self.spec.hosts)

    @property
    def remote_python(self) -> str:
        return self.context.options.get("remote_python") or self.spec.remote_python

    def _options(self, record: SSHRecord | None = None) -> Any:
        from ipcluster_kit.remote.ssh import SSHOptions

        if record is not None and record.ssh:
            return SSHOptions.from_dict(record.ssh)
        return self.context.options.get("ssh_options") or ssh_options(self.spec)

    def validate(self) -> None:
        if not self.hosts:
            raise BadInput(f"profile {self.spec.name!r} has no remote hosts; pass --host [user@]host[:port][=N]")
        self._options()  # an unreadable --ssh-config is refused before anything starts

    def preview(self) -> list[Preview]:
        directory = remote_profile_dir_for(self.spec)
        shown = directory if directory.startswith("/") else f"~/{directory}"
        out = []
        for host in self.hosts:
            python = host.remote_python or self.remote_python
            argv = [python, "-m", "ipyparallel.engine", f"--file={shown}/security/{ENGINE_CONNECTION_FILE}",
                    f"--profile-dir={shown}"]  # fmt: skip
            command = " ".join(a if _PLAIN.match(a) else shlex.quote(a) for a in argv)  # ~/ stays readable
            out.append(Preview(f"{host.engines} engine(s) on {host.label} over SSH (after copying the engine"
                               " connection file there), each in a session of its own", command))  # fmt: skip
        return out

    def start(self, on_record: Callable[[EngineSetRecord], None]) -> SSHRecord:
        from ipcluster_kit.remote.bootstrap import bootstrap_hosts

        options = self._options()
        record = SSHRecord(engines=0, ssh=options.to_dict())

        def host_done(result: Any) -> None:  # as each host finishes: its engines are recorded at once
            if result.record and result.record.engines:
                record.hosts.append(result.record)
                record.engines += len(result.record.engines)
                on_record(record)

        results = bootstrap_hosts(
            self.hosts, connection_files(self.profile_dir)["engine"], remote_profile_dir=remote_profile_dir_for(self.spec),
            remote_python=self.remote_python, ssh_options=options, timeout=self.context.remaining(), on_result=host_done,
        )  # fmt: skip
        order = [h.label for h in self.hosts]
        record.hosts.sort(key=lambda h: order.index(h.host.label))
        record.failures = [r.error or f"{r.label}: failed" for r in results if not r.ok]
        on_record(record)
        return record

    def status(self, record: EngineSetRecord, timeout: float) -> SetStatus:
        from ipcluster_kit.remote.control import remote_engine_status

        assert isinstance(record, SSHRecord)
        engines = []
        report = remote_engine_status(record.hosts, ssh_options=self._options(record), timeout=timeout) if record.hosts else []
        for host, found in zip(record.hosts, report):
            states = {e.pid: e for e in found.engines}
            for engine in host.engines:
                state = states.get(engine.pid)
                if found.error or state is None:
                    engines.append(EngineStatus(self.kind, found.host, False, pid=engine.pid, log=engine.log,
                                                error=found.error or "not reported"))  # fmt: skip
                else:
                    engines.append(EngineStatus(self.kind, found.host, state.running, pid=engine.pid, log=engine.log,
                                                log_tail=state.log_tail or None))  # fmt: skip
        facts = {"failures": record.failures} if record.failures else {}
        return SetStatus(self.kind, engines, facts)

    def stop(self, record: EngineSetRecord, timeout: float) -> SetStop:
        from ipcluster_kit.remote.control import stop_remote_engines

        assert isinstance(record, SSHRecord)
        result = SetStop(self.kind)
        if not record.hosts:
            return result
        for host in stop_remote_engines(record.hosts, ssh_options=self._options(record), timeout=timeout):
            for engine in host.engines:
                entry = {"host": host.host, "pid": engine.pid, "state": engine.state}
                if engine.state in ("terminated", "killed"):
                    result.stopped.append(entry)
                    result.engines_stopped += 1
                elif engine.running:
                    result.left.append(entry)
            if host.error:
                result.error = f"{result.error}; {host.error}" if result.error else host.error
        return result

    def doctor(self, **options: Any) -> list[Check]:
        from ipcluster_kit.remote.doctor import DEFAULT_MAX_CLOCK_SKEW, diagnose

        return diagnose(
            self.hosts, connection_files(self.profile_dir)["engine"], remote_profile_dir=remote_profile_dir_for(self.spec),
            remote_python=self.remote_python, ssh_options=self._options(),
            max_clock_skew=options.get("max_clock_skew", DEFAULT_MAX_CLOCK_SKEW),
        )  # fmt: skip
