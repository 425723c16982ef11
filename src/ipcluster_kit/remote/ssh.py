"""SSH connections to engine hosts, with asyncssh.

One connection per host, reused for every step of a bring-up. OpenSSH client configuration is
honoured: ``~/.ssh/config`` by default, or the files given as ``--ssh-config`` instead (like
``ssh -F``): ``Host`` aliases, ``HostName``, ``User``, ``Port``, ``IdentityFile``,
``UserKnownHostsFile``, ``ProxyJump`` ...

Host keys are verified against the known_hosts files (``UserKnownHostsFile``, else
``~/.ssh/known_hosts``). An unknown host key is an error that says how to add it; with
``accept_new_host_keys`` an unknown key is accepted and appended to the first known_hosts file
(OpenSSH's ``StrictHostKeyChecking=accept-new``). A host key that differs from a known one is
refused in every mode.

Every failure becomes a :class:`~ipcluster_kit.errors.KitError` naming the host, never a
traceback, and no key material is ever put into a message or a log.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shlex
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.validate import check_seconds

if TYPE_CHECKING:  # asyncssh is imported lazily: the CLI must start without it.
    import asyncssh

    from ipcluster_kit.profile.hosts import HostSpec

log = logging.getLogger("ipcluster_kit.remote")

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")


@dataclass(frozen=True)
class SSHOptions:
    """How to reach the hosts.

    ``config``: OpenSSH client config files to use *instead of* ``~/.ssh/config`` (``ssh -F``);
    empty means ``~/.ssh/config`` when it exists.
    ``known_hosts``: known_hosts files to use instead of the config's ``UserKnownHostsFile`` /
    ``~/.ssh/known_hosts``; empty means "as configured".
    ``accept_new_host_keys``: accept (and record) a host key never seen before; a changed key is
    still refused.
    ``connect_timeout``: seconds for TCP connect, key exchange and authentication.
    """

    config: tuple[Path, ...] = ()
    known_hosts: tuple[Path, ...] = ()
    accept_new_host_keys: bool = False
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    @classmethod
    def build(
        cls,
        ssh_config: Sequence[str | os.PathLike] | str | os.PathLike | None = None,
        *,
        known_hosts: Sequence[str | os.PathLike] | None = None,
        accept_new_host_keys: bool = False,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> "SSHOptions":
        """Validated options from CLI values: each config file must exist and be readable."""
        if ssh_config is None:
            configs: list = []
        elif isinstance(ssh_config, (str, os.PathLike)):
            configs = [ssh_config]
        else:
            configs = list(ssh_config)
        paths = []
        for item in configs:
            path = Path(item).expanduser()
            if not path.is_file() or not os.access(path, os.R_OK):
                raise BadInput(f"--ssh-config {str(item)!r}: no such readable file")
            paths.append(path.absolute())
        connect_timeout = check_seconds("--connect-timeout", connect_timeout)
        return cls(
            config=tuple(paths),
            known_hosts=tuple(Path(p).expanduser().absolute() for p in (known_hosts or ())),
            accept_new_host_keys=accept_new_host_keys,
            connect_timeout=float(connect_timeout),
        )

    def to_dict(self) -> dict[str, Any]:
        """What later checks and stops reuse (kept in the state file); never a key."""
        return {"config": [str(p) for p in self.config], "known_hosts": [str(p) for p in self.known_hosts],
                "connect_timeout": self.connect_timeout}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SSHOptions":
        return cls(config=tuple(Path(p) for p in data.get("config", [])),
                   known_hosts=tuple(Path(p) for p in data.get("known_hosts", [])),
                   connect_timeout=float(data.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)))  # fmt: skip


def _fmt_seconds(seconds: float) -> str:
    return f"{seconds:g} s"


class _HostKeyPolicy:
    """Decides on a host key that is not among the trusted keys, and remembers why."""

    def __init__(self, known_hosts_files: list[Path], accept_new: bool):
        self.files = known_hosts_files
        self.accept_new = accept_new
        self.verdict: str | None = None  # "unknown", "changed", "accepted"
        self.accepted: tuple[str, str, int, Any] | None = None
        self.seen: tuple[str, int] | None = None  # the host name and port as ssh resolved them

    def _has_known_keys(self, host: str, addr: str, port: int) -> bool:
        import asyncssh

        lookup_port = None if port == 22 else port
        for path in self.files:
            if not path.is_file():
                continue
            try:
                known = asyncssh.read_known_hosts(str(path))
                trusted, cas, revoked, *_ = asyncssh.match_known_hosts(known, host, addr, lookup_port)
            except (OSError, ValueError) as exc:  # unreadable or malformed file: treat as "has keys", refuse
                log.debug("cannot read known_hosts %s: %s", path, exc)
                return True
            if trusted or cas or revoked:
                return True
        return False

    def decide(self, host: str, addr: str, port: int, key: Any) -> bool:
        self.seen = (host, port)
        if self._has_known_keys(host, addr, port):
            self.verdict = "changed"
            return False
        if self.accept_new:
            self.verdict = "accepted"
            self.accepted = (host, addr, port, key)
            return True
        self.verdict = "unknown"
        return False


def _client_factory(policy: _HostKeyPolicy):
    import asyncssh

    class _Client(asyncssh.SSHClient):
        def validate_host_public_key(self, host, addr, port, key):  # noqa: D401 - asyncssh hook
            return policy.decide(host, addr, port, key)

    return _Client


def _known_hosts_line(host: str, port: int, key: Any) -> str:
    pattern = host if port == 22 else f"[{host}]:{port}"
    # export_public_key gives "type base64 comment"; known_hosts wants "pattern type base64".
    fields = key.export_public_key("openssh").decode().split()
    return f"{pattern} {fields[0]} {fields[1]}\n"


def _record_accepted_key(path: Path, host: str, port: int, key: Any) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as fh:
        fh.write(_known_hosts_line(host, port, key))


def _resolve_options(host: "HostSpec", options: SSHOptions):
    """asyncssh options for ``host`` with the config applied; the known_hosts files in effect."""
    import asyncssh

    kwargs: dict[str, Any] = {
        "config": [str(p) for p in options.config] if options.config else (),
        "connect_timeout": options.connect_timeout,
        "login_timeout": options.connect_timeout,
        "keepalive_interval": 15,
        "keepalive_count_max": 4,
    }
    # An explicit port in the spec wins; 22 (the spec's default) lets the ssh config decide.
    if host.port != 22:
        kwargs["port"] = host.port
    if host.user:
        kwargs["username"] = host.user
    if options.known_hosts:
        kwargs["known_hosts"] = [str(p) for p in options.known_hosts]
    try:
        resolved = asyncssh.SSHClientConnectionOptions(host=host.host, **kwargs)
    except (OSError, ValueError, asyncssh.Error) as exc:
        raise KitError(f"{host.label}: bad SSH configuration: {exc}") from None
    known = resolved.known_hosts
    if known is None:
        files: list[Path] = []
    elif isinstance(known, (str, os.PathLike)):
        files = [Path(known).expanduser()]
    elif isinstance(known, (list, tuple)) and all(isinstance(k, (str, os.PathLike)) for k in known):
        files = [Path(k).expanduser() for k in known] or [DEFAULT_KNOWN_HOSTS.expanduser()]
    else:
        files = []
    return kwargs, files


async def connect(host: "HostSpec", options: SSHOptions | None = None) -> "asyncssh.SSHClientConnection":
    """An authenticated SSH connection to ``host``, or a KitError saying why not."""
    import asyncssh

    options = options or SSHOptions()
    label = host.label
    kwargs, known_files = _resolve_options(host, options)
    policy = _HostKeyPolicy(known_files, options.accept_new_host_keys)
    try:
        conn = await asyncio.wait_for(
            asyncssh.connect(host.host, client_factory=_client_factory(policy), **kwargs),
            timeout=options.connect_timeout + 1,
        )
    except asyncssh.HostKeyNotVerifiable as exc:
        if policy.verdict is None:  # revoked key, bad certificate ...
            raise KitError(f"{label}: host key verification failed: {exc.reason}") from None
        real_host, real_port = policy.seen or (host.host, host.port)
        port_opt = f"-p {real_port} " if real_port != 22 else ""
        keyscan = f"ssh-keyscan {port_opt}{real_host} >> ~/.ssh/known_hosts"
        where = ", ".join(str(p) for p in known_files) or "known_hosts"
        if policy.verdict == "changed":
            raise KitError(
                f"{label}: the host key does not match the one recorded in {where}: refusing to connect"
                " (if the host was reinstalled, remove its old entry with `ssh-keygen -R HOST` and verify the new key)"
            ) from None
        raise KitError(
            f"{label}: host key for {real_host} is not known (looked in {where}); add it with"
            f" `{keyscan}` after checking its fingerprint, or pass --accept-new-host-keys"
        ) from None
    except asyncssh.PermissionDenied:
        user = host.user or "the configured user"
        raise KitError(
            f"{label}: authentication refused for {user}: check the key (IdentityFile in the ssh config)"
            " and ~/.ssh/authorized_keys on the host"
        ) from None
    except asyncio.TimeoutError:
        raise KitError(
            f"{label}: no SSH answer within {_fmt_seconds(options.connect_timeout)} (host down or port filtered?)"
        ) from None
    except ConnectionRefusedError:
        raise KitError(f"{label}: connection refused (is sshd running on that host and port?)") from None
    except socket.gaierror as exc:
        raise KitError(f"{label}: cannot resolve host name {host.host!r} ({exc.strerror})") from None
    except OSError as exc:
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
            raise KitError(f"{label}: host unreachable ({exc.strerror}); is it up and on the network?") from None
        if exc.errno == errno.ETIMEDOUT:
            raise KitError(f"{label}: connection timed out (host down or port filtered?)") from None
        raise KitError(f"{label}: cannot connect: {exc.strerror or exc}") from None
    except asyncssh.DisconnectError as exc:
        raise KitError(f"{label}: SSH connection failed: {exc.reason}") from None
    except asyncssh.Error as exc:
        raise KitError(f"{label}: SSH error: {exc}") from None
    except ValueError as exc:  # e.g. an unreadable IdentityFile
        raise KitError(f"{label}: SSH setup failed: {exc}") from None

    if policy.verdict == "accepted" and policy.accepted:
        acc_host, _addr, acc_port, key = policy.accepted
        target = known_files[0] if known_files else DEFAULT_KNOWN_HOSTS.expanduser()
        try:
            _record_accepted_key(target, acc_host, acc_port, key)
            log.info("%s: accepted new host key %s, recorded in %s", label, key.get_fingerprint(), target)
        except OSError as exc:
            log.warning("%s: accepted new host key but could not record it in %s: %s", label, target, exc)
    return conn


@dataclass
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str


async def run(
    conn: "asyncssh.SSHClientConnection",
    argv: Sequence[str],
    *,
    label: str,
    timeout: float,
    input: bytes | str | None = None,
) -> CommandResult:
    """Run ``argv`` (quoted for the remote shell) and collect its output, within ``timeout``."""
    import asyncssh

    command = " ".join(shlex.quote(a) for a in argv)
    try:
        if isinstance(input, bytes):
            proc = await asyncio.wait_for(conn.run(command, input=input, encoding=None, check=False), timeout)
            out = (proc.stdout or b"").decode("utf-8", "replace")
            err = (proc.stderr or b"").decode("utf-8", "replace")
        else:
            proc = await asyncio.wait_for(conn.run(command, input=input, check=False), timeout)
            out, err = proc.stdout or "", proc.stderr or ""
    except asyncio.TimeoutError:
        raise KitError(f"{label}: remote command did not finish within {_fmt_seconds(timeout)}") from None
    except (asyncssh.Error, OSError) as exc:
        raise KitError(f"{label}: SSH connection lost: {exc}") from None
    status = proc.exit_status if proc.exit_status is not None else -1
    return CommandResult(exit_status=status, stdout=str(out), stderr=str(err))
