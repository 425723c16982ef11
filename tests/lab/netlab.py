"""A multi-host test lab: Linux network namespaces on a private subnet, each with its own sshd.

Each lab host is

- a network namespace ``ipck-<pid>-h<i>`` with a veth into a bridge ``ick<pid>b`` in the root
  namespace, on a private /24 chosen free (``10.213.X.0/24``; the root side is ``10.213.X.1``,
  host i is ``10.213.X.(10+i)``; no default route, so nothing leaves the lab);
- its own ``sshd`` (Debian's openssh-server) with its own ed25519 host key, run in a private
  mount and UTS namespace: its hostname is the namespace name and a private home directory is
  bind-mounted over ``/root``, so a file copied to ``/root/...`` really lands on that host only.
  Paths under ``/root`` the engines' Python needs (e.g. a pyenv interpreter) are bind-mounted
  back into that home, read-only.

The client side is a key pair, a known_hosts file with every host key, and an ssh config file
(``IdentityFile``, ``UserKnownHostsFile``, ``Host h<i>`` aliases) usable both by asyncssh and by
OpenSSH (``ssh -F``). Teardown kills every process in each namespace before deleting it, and
copes with a half-built lab; :func:`cleanup_stale` removes what a killed test run left behind.

Needs root, ``ip`` (iproute2), ``unshare`` (util-linux), ``sshd``/``ssh-keygen`` (openssh).
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from helpers import stop_process_group

SSHD = "/usr/sbin/sshd"
BASE = "10.213"
LOCK_DIR = Path("/run/ipck-lab")
NS_PATTERN = re.compile(r"^ipck-(\d+)-h\d+$")
LINK_PATTERN = re.compile(r"^ick(\d+)(?:b|v\d+)$")


def unavailable_reason() -> str | None:
    """Why the lab cannot run here, or None."""
    if sys.platform != "linux":
        return "the test lab needs Linux network namespaces"
    if os.geteuid() != 0:
        return "the test lab needs root (network namespaces, sshd)"
    for tool in ("ip", "unshare", "ssh-keygen", "mount"):
        if shutil.which(tool) is None:
            return f"the test lab needs {tool!r} (apt-get install iproute2 util-linux openssh-client mount)"
    if not os.access(SSHD, os.X_OK):
        return f"the test lab needs {SSHD} (apt-get install openssh-server)"
    return None


def _run(*argv: str, check: bool = True, timeout: float = 20, input: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def netns_pids(ns: str) -> list[int]:
    proc = _run("ip", "netns", "pids", ns, check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def kill_netns_processes(ns: str, timeout: float = 5.0) -> None:
    """TERM, then KILL, every process in namespace ``ns``; bounded."""
    pids = netns_pids(ns)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and netns_pids(ns):
        time.sleep(0.05)
    for pid in netns_pids(ns):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and netns_pids(ns):
        time.sleep(0.05)


def remove_network(namespaces: list[str], veths: list[str], bridge: str | None) -> None:
    """Stop every process in each namespace, then delete the veths, the namespaces and the bridge.

    A veth goes before its namespace: deleting the namespace first leaves the root-side end to be
    removed by the kernel in its own time, and a new lab may meet it.
    """
    for ns in namespaces:
        kill_netns_processes(ns)
    for veth in veths:
        _run("ip", "link", "del", veth, check=False)
    for ns in namespaces:
        _run("ip", "netns", "del", ns, check=False)
    if bridge:
        _run("ip", "link", "del", bridge, check=False)


def remove_stale_network(ns_pattern: re.Pattern, link_pattern: re.Pattern) -> list[str]:
    """Remove the namespaces and links (veths, bridges) whose name's pid (group 1) is no process."""
    def stale(pattern: re.Pattern, name: str) -> bool:
        m = pattern.match(name)
        return bool(m) and not _pid_alive(int(m.group(1)))

    namespaces = [line.split()[0] for line in _run("ip", "netns", "list", check=False).stdout.splitlines() if line.split()]
    namespaces = [ns for ns in namespaces if stale(ns_pattern, ns)]
    links = [line.split(":")[1].strip().split("@")[0] for line in _run("ip", "-o", "link", "show", check=False).stdout.splitlines()
             if len(line.split(":")) > 1]  # fmt: skip
    links = [name for name in links if stale(link_pattern, name)]
    bridges = [name for name in links if name.endswith("b")]
    remove_network(namespaces, [name for name in links if name not in bridges], None)
    for bridge in bridges:
        _run("ip", "link", "del", bridge, check=False)
    return namespaces + links


def cleanup_stale() -> list[str]:
    """Remove namespaces and links of earlier labs whose creating process is gone."""
    return remove_stale_network(NS_PATTERN, LINK_PATTERN)


def add_bridge(name: str, gateway: str) -> None:
    """The lab's bridge in the root namespace, ``gateway`` its /24 address."""
    _run("ip", "link", "add", name, "type", "bridge")
    _run("ip", "addr", "add", f"{gateway}/24", "dev", name)
    _run("ip", "link", "set", name, "up")


def add_namespace(ns: str, veth: str, bridge: str, address: str) -> None:
    """A network namespace whose ``eth0`` (``address``/24) is the peer of ``veth`` on ``bridge``."""
    _run("ip", "netns", "add", ns)
    _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
    _run("ip", "link", "set", veth, "master", bridge)
    _run("ip", "link", "set", veth, "up")
    _run("ip", "-n", ns, "link", "set", "lo", "up")
    _run("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
    _run("ip", "-n", ns, "link", "set", "eth0", "up")


def _python_binds(python: str) -> list[str]:
    """Directories under /root that ``python`` (a venv's or a pyenv's) needs, to keep in private homes."""
    candidates = {os.path.realpath(python)}
    probe = _run(python, "-c", "import sys, json; print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix]))")
    candidates.update(os.path.realpath(p) for p in json.loads(probe.stdout))
    binds = set()
    for path in candidates:
        if path == "/root" or path.startswith("/root/"):
            parts = Path(path).parts  # ('/', 'root', ...)
            # bind the directory of the installation (e.g. /root/.pyenv/versions/3.11.7)
            target = Path(path)
            if target.is_file():
                target = target.parent.parent
            if len(parts) >= 3:
                binds.add(str(target))
    # drop nested duplicates
    result = []
    for path in sorted(binds):
        if not any(path.startswith(other + "/") for other in result):
            result.append(path)
    return result


def reserve_subnet() -> tuple[str, int]:
    """A free private /24 prefix (``10.213.X``) and the fd of the lock that holds it for this lab.

    Shared by every lab of this machine (sshd and Slurm labs), so concurrent labs never pick the same one.
    """
    LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
    in_use = _run("ip", "-4", "-o", "addr", "show").stdout + _run("ip", "-4", "route", "show", "table", "all").stdout
    choices = list(range(200, 250))
    random.shuffle(choices)
    for x in choices:
        prefix = f"{BASE}.{x}"
        if f"{prefix}." in in_use:
            continue
        fd = os.open(LOCK_DIR / f"{prefix}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            same = os.fstat(fd).st_ino == os.stat(LOCK_DIR / f"{prefix}.lock").st_ino
        except OSError:
            same = False
        if not same:  # held by another lab, or unlinked by one finishing: try another subnet
            os.close(fd)
            continue
        return prefix, fd
    raise RuntimeError(f"no free /24 under {BASE}.200-249 for the lab")


def release_subnet(prefix: str, fd: int) -> None:
    try:
        (LOCK_DIR / f"{prefix}.lock").unlink()  # while still holding the lock
    except OSError:
        pass
    os.close(fd)


@dataclass
class LabHost:
    index: int
    ns: str
    address: str
    alias: str
    root: Path  # the host's directory on this machine (sshd config, keys, logs, home)
    veth: str
    host_pubkey: str = ""
    sshd: subprocess.Popen | None = None

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def hostname(self) -> str:
        return self.ns

    @property
    def spec(self) -> str:
        return f"root@{self.address}"

    def netns_id(self) -> str:
        """What ``readlink /proc/self/ns/net`` shows inside this host: ``net:[inode]``."""
        return f"net:[{os.stat(f'/run/netns/{self.ns}').st_ino}]"


def _complete_json(path: Path) -> bool:
    """The file exists and holds a whole JSON document (ipcontroller writes it non-atomically)."""
    try:
        json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return True


@dataclass
class Controller:
    proc: subprocess.Popen
    profile_dir: Path
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def engine_file(self) -> Path:
        return self.profile_dir / "security" / "ipcontroller-engine.json"

    @property
    def client_file(self) -> Path:
        return self.profile_dir / "security" / "ipcontroller-client.json"

    def stop(self, timeout: float = 10) -> None:
        """TERM the controller's process group (it and its schedulers), KILL after ``timeout``."""
        stop_process_group(self.proc, timeout)


@dataclass(kw_only=True)  # keyword-only: a lab's own fields stay first in its constructor
class LabNetwork:
    """A lab's network: a private /24 (reserved), a bridge in the root namespace, namespaces on it."""

    subnet: str | None = None  # "10.213.X"
    bridge: str = ""
    _lock_fd: int | None = None
    _netns_made: list[str] = field(default_factory=list)

    @property
    def gateway(self) -> str:
        """This host's address on the lab network: where a controller must listen."""
        return f"{self.subnet}.1"

    def open_network(self, bridge: str) -> None:
        self.subnet, self._lock_fd = reserve_subnet()
        self.bridge = bridge
        add_bridge(bridge, self.gateway)

    def attach_namespace(self, ns: str, veth: str, address: str) -> None:
        self._netns_made.append(ns)  # first: teardown removes a half-made namespace too
        add_namespace(ns, veth, self.bridge, address)

    def close_network(self, veths: list[str]) -> None:
        """Every namespace's processes stopped, the namespaces, veths and bridge deleted, the /24 freed."""
        remove_network(self._netns_made, veths, self.bridge)
        self._netns_made.clear()
        self.bridge = ""
        if self._lock_fd is not None and self.subnet:
            release_subnet(self.subnet, self._lock_fd)
            self._lock_fd = None


@dataclass
class Lab(LabNetwork):
    n_hosts: int = 2
    python: str = sys.executable  # the interpreter engines run on the hosts
    hosts: list[LabHost] = field(default_factory=list)
    root: Path | None = None

    # ---------------------------------------------------------------- paths for the client side

    @property
    def client_dir(self) -> Path:
        assert self.root
        return self.root / "client"

    @property
    def ssh_config(self) -> Path:
        return self.client_dir / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.client_dir / "known_hosts"

    @property
    def client_key(self) -> Path:
        return self.client_dir / "id_ed25519"

    # ---------------------------------------------------------------- build

    def build(self) -> "Lab":
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        cleanup_stale()
        try:
            self._build()
        except BaseException:
            self.teardown()
            raise
        return self

    def _build(self) -> None:
        pid = os.getpid()
        self.open_network(f"ick{pid}b")
        self.root = Path(tempfile.mkdtemp(prefix="ipck-lab-"))
        os.chmod(self.root, 0o700)

        self.client_dir.mkdir(mode=0o700)
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ipck-lab-client", "-f", str(self.client_key))
        client_pub = (self.client_dir / "id_ed25519.pub").read_text()
        binds = _python_binds(self.python)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory

        for i in range(1, self.n_hosts + 1):
            host = LabHost(
                index=i,
                ns=f"ipck-{pid}-h{i}",
                address=f"{self.subnet}.{10 + i}",
                alias=f"h{i}",
                root=self.root / f"h{i}",
                veth=f"ick{pid}v{i}",
            )
            self.hosts.append(host)
            self._make_host(host, client_pub, binds)
        self._write_client_files()
        for host in self.hosts:
            self.start_sshd(host)
        for host in self.hosts:
            self.wait_sshd(host)

    def _make_host(self, host: LabHost, client_pub: str, binds: list[str]) -> None:
        self.attach_namespace(host.ns, host.veth, host.address)

        host.root.mkdir(mode=0o700)
        key = host.root / "ssh_host_ed25519_key"
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.ns, "-f", str(key))
        host.host_pubkey = " ".join(Path(f"{key}.pub").read_text().split()[:2])
        home = host.home
        home.mkdir(mode=0o700)
        (home / ".ssh").mkdir(mode=0o700)
        (home / ".ssh" / "authorized_keys").write_text(client_pub)
        os.chmod(home / ".ssh" / "authorized_keys", 0o600)
        (home / "ipck-lab-host").write_text(host.ns + "\n")
        for path in binds:
            (home / Path(path).relative_to("/root")).mkdir(parents=True, exist_ok=True)
        (host.root / "sshd_config").write_text(
            "\n".join(
                [
                    "Port 22",
                    f"ListenAddress {host.address}",
                    f"HostKey {key}",
                    f"PidFile {host.root / 'sshd.pid'}",
                    "AuthorizedKeysFile .ssh/authorized_keys",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes yes",
                    "UseDNS no",
                    "X11Forwarding no",
                    "PrintMotd no",
                    "MaxStartups 64:30:128",
                    "Subsystem sftp internal-sftp",
                    "LogLevel INFO",
                    "",
                ]
            )
        )
        mounts = [f"mount --bind -o ro {shlex.quote(p)} {shlex.quote(str(home / Path(p).relative_to('/root')))}" for p in binds]
        script = "\n".join(
            [
                "set -e",
                f"hostname {shlex.quote(host.ns)}",
                *mounts,
                f"mount --rbind {shlex.quote(str(home))} /root",
                f"exec {SSHD} -D -e -f {shlex.quote(str(host.root / 'sshd_config'))}",
            ]
        )
        (host.root / "start-sshd.sh").write_text(script + "\n")

    def _write_client_files(self) -> None:
        self.known_hosts.write_text("".join(f"{h.address} {h.host_pubkey}\n" for h in self.hosts))
        os.chmod(self.known_hosts, 0o600)
        lines = []
        for h in self.hosts:
            lines += [f"Host {h.alias}", f"    HostName {h.address}", ""]
        lines += [
            "Host *",
            "    User root",
            f"    IdentityFile {self.client_key}",
            "    IdentitiesOnly yes",
            f"    UserKnownHostsFile {self.known_hosts}",
            "    StrictHostKeyChecking yes",
            "    BatchMode yes",
            "    ConnectTimeout 5",
            "    LogLevel ERROR",
            "",
        ]
        self.ssh_config.write_text("\n".join(lines))
        os.chmod(self.ssh_config, 0o600)

    # ---------------------------------------------------------------- sshd control

    def start_sshd(self, host: LabHost) -> None:
        log = open(host.root / "sshd.log", "ab")
        try:
            host.sshd = subprocess.Popen(
                [
                    "ip", "netns", "exec", host.ns,
                    "unshare", "--mount", "--uts", "--propagation", "private",
                    "/bin/sh", str(host.root / "start-sshd.sh"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()

    def wait_sshd(self, host: LabHost, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if host.sshd is None or host.sshd.poll() is not None:
                break
            try:
                with socket.create_connection((host.address, 22), timeout=0.5) as sock:
                    sock.settimeout(1)
                    if sock.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        log = (host.root / "sshd.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"sshd of {host.ns} did not come up within {timeout} s: {log}")

    def stop_sshd(self, host: LabHost, timeout: float = 5) -> None:
        """Stop the host's listening sshd (sessions already open keep their own processes)."""
        if host.sshd and host.sshd.poll() is None:
            host.sshd.terminate()
            try:
                host.sshd.wait(timeout)
            except subprocess.TimeoutExpired:
                host.sshd.kill()
                host.sshd.wait(5)
        host.sshd = None

    def restart_sshd(self, host: LabHost) -> None:
        self.stop_sshd(host)
        self.start_sshd(host)
        self.wait_sshd(host)

    def set_link(self, host: LabHost, up: bool) -> None:
        """Take the host off the network (or back): its veth in the bridge goes down/up."""
        _run("ip", "link", "set", host.veth, "up" if up else "down")
        if not up:
            _run("ip", "neigh", "flush", "dev", self.bridge, check=False)

    def run_on(self, host: LabHost, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess:
        """Run a command inside the host's network namespace (not its mount namespace)."""
        return _run("ip", "netns", "exec", host.ns, *argv, timeout=timeout, check=False)

    def host_pids(self, host: LabHost) -> list[int]:
        return netns_pids(host.ns)

    def engine_pids(self, host: LabHost) -> list[int]:
        """PIDs of ipyparallel engines (and their nannies) running on the host."""
        found = []
        for pid in netns_pids(host.ns):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(part.startswith(b"ipyparallel.engine") for part in cmdline):  # engine or its nanny
                found.append(pid)
        return found

    def reset_hosts(self, timeout: float = 5) -> None:
        """Kill every process on every host except its listening sshd (engines, sessions, waiters)."""
        for host in self.hosts:
            keep = host.sshd.pid if host.sshd else None
            for pid in netns_pids(host.ns):
                if pid != keep:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(
            set(netns_pids(h.ns)) - {h.sshd.pid if h.sshd else None} for h in self.hosts
        ):
            time.sleep(0.05)

    def kill_engines(self, timeout: float = 5) -> None:
        """Kill every engine on every lab host (test clean-up); bounded."""
        for host in self.hosts:
            for pid in self.engine_pids(host):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(self.engine_pids(h) for h in self.hosts):
            time.sleep(0.05)

    # ---------------------------------------------------------------- controller

    def start_controller(self, profile_dir: Path, *extra: str, timeout: float = 30) -> Controller:
        """A real ipcontroller listening on the lab network (``gateway``), stopped by PID."""
        profile_dir = Path(profile_dir)
        profile_dir.mkdir(parents=True, exist_ok=True)
        log_path = profile_dir / "ipcontroller.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [
                    self.python, "-m", "ipyparallel.controller",
                    f"--profile-dir={profile_dir}", f"--ip={self.gateway}", "--log-level=WARN",
                    "--HeartMonitor.period=500", *extra,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        ctl = Controller(proc=proc, profile_dir=profile_dir, log_path=log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if _complete_json(ctl.engine_file) and _complete_json(ctl.client_file) and self._listening(ctl.engine_file):
                return ctl
            time.sleep(0.05)
        ctl.stop()
        raise RuntimeError(f"controller did not write its connection files within {timeout} s: {log_path.read_text()[-2000:]}")

    def _listening(self, engine_file: Path) -> bool:
        """Every port engines need accepts connections (the schedulers bind after the files are written)."""
        info = json.loads(engine_file.read_text())
        ports = [info[k] for k in ("registration", "control", "mux", "task", "iopub", "hb_ping", "hb_pong")]
        ports += list(info.get("broadcast", []))
        for port in ports:
            try:
                socket.create_connection((self.gateway, int(port)), timeout=0.5).close()
            except OSError:
                return False
        return True

    # ---------------------------------------------------------------- teardown

    def teardown(self) -> None:
        for host in self.hosts:
            try:
                self.stop_sshd(host, timeout=2)
            except Exception:
                pass
        self.close_network([host.veth for host in self.hosts])
        if self.root and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Lab":
        return self.build()

    def __exit__(self, *exc) -> None:
        self.teardown()


def wait_for_engines(client_file: Path, n: int, timeout: float) -> list[int]:
    """Block until ``n`` engines are registered (bounded); their ids. A local ipyparallel Client."""
    import ipyparallel as ipp

    client = ipp.Client(str(client_file), timeout=timeout)
    try:
        client.wait_for_engines(n, timeout=timeout, interactive=False)
        return sorted(client.ids)
    finally:
        client.close()


def engine_facts(client_file: Path, timeout: float = 20) -> dict[int, dict]:
    """Ask every engine where it runs: hostname, network namespace, the lab marker in its /root."""
    import ipyparallel as ipp

    def where():
        import os
        import socket

        try:
            marker = open("/root/ipck-lab-host").read().strip()
        except OSError:
            marker = None
        return {"hostname": socket.gethostname(), "netns": os.readlink("/proc/self/ns/net"), "marker": marker, "pid": os.getpid()}

    client = ipp.Client(str(client_file), timeout=timeout)
    try:
        ar = client[:].apply_async(ipp.interactive(where))  # sent by value: engines lack this module
        ar.wait(timeout)
        if not ar.ready():
            raise TimeoutError(f"engines did not answer within {timeout} s")
        return dict(zip(ar.engine_id, ar.get()))
    finally:
        client.close()


if __name__ == "__main__":  # manual use: python tests/lab/netlab.py [N] keeps a lab up until Enter
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    with Lab(n) as lab:
        print(json.dumps({"ssh_config": str(lab.ssh_config), "gateway": lab.gateway, "hosts": [h.spec for h in lab.hosts]}, indent=1))
        try:
            input("lab up; press Enter to tear it down ")
        except EOFError:
            pass
