"""A real Slurm cluster for the tests: Debian's slurmctld, slurmd and munge, in network namespaces.

The lab is

- a private ``munged`` (its own key, socket and seed under the lab directory), referenced from
  ``slurm.conf`` by ``AuthInfo=socket=...``, so the machine's own munge (if any) is never used;
- ``slurmctld`` on this host (``SlurmctldHost`` is ``hostname -s``, reached by the nodes at the
  bridge address ``10.213.X.1``), on a port chosen free;
- compute nodes ``ipck-<tag>-n<i>``: each a ``slurmd`` in its own network namespace (veth into a
  private bridge ``ics<tag>b``, address ``10.213.X.(10+i)``, no route out) and its own UTS namespace
  (hostname = node name). The namespace is entered with ``nsenter --net=``, not ``ip netns exec``:
  the latter remounts ``/sys``, which hides the cgroup mounts, and slurmd 22.05 then dies at start.
  The file system is shared, so jobs run this machine's Python (the worktree's ``.venv``).

Every name (namespaces, links, directory, cluster name) carries a tag made of the creating PID and
a letter per lab of that process, so concurrent test runs (and two labs of one run) cannot collide, and :func:`cleanup_stale` removes what a killed run left behind.
Commands that talk to the cluster (``sbatch``, ``squeue``, ``scancel``, ``sinfo``, ``srun``) need
:attr:`SlurmLab.env` (``SLURM_CONF``). Teardown stops every process in each node's namespace
(killing slurmd alone leaves slurmstepd and the job's processes running), deletes each veth before
its namespace, then stops slurmctld and munged.

Needs root, ``ip``/``nsenter``/``unshare`` and the Debian packages slurmctld, slurmd, slurm-client, munge.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .netlab import LabNetwork, _pid_alive, _run, kill_netns_processes, netns_pids, remove_stale_network

SLURMCTLD, SLURMD, MUNGED, MUNGEKEY = "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged", "/usr/sbin/mungekey"
PARTITION = "lab"
NS_PATTERN = re.compile(r"^ipck-(\d+)[a-z]-n\d+$")
LINK_PATTERN = re.compile(r"^ics(\d+)[a-z](?:b|v\d+)$")
ROOT_PATTERN = re.compile(r"^ipck-slurm-(\d+)-")
_labs_made = itertools.count()  # labs built by this process: the letter of the next lab's tag


def unavailable_reason() -> str | None:
    """Why the Slurm lab cannot run here, or None."""
    if sys.platform != "linux":
        return "the Slurm lab needs Linux network namespaces"
    if os.geteuid() != 0:
        return "the Slurm lab needs root (network namespaces, slurmd)"
    for tool in ("ip", "nsenter", "unshare", "sbatch", "squeue", "scancel", "sinfo", "srun"):
        if shutil.which(tool) is None:
            return f"the Slurm lab needs {tool!r} (apt-get install iproute2 util-linux slurm-client)"
    for path in (SLURMCTLD, SLURMD, MUNGED, MUNGEKEY):
        if not os.access(path, os.X_OK):
            return f"the Slurm lab needs {path} (apt-get install slurmctld slurmd munge)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen | None, timeout: float = 5) -> None:
    """TERM a daemon started by the lab, KILL it after ``timeout``; reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _wait(predicate, timeout: float, what: str, log: Path | None = None, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            tail = log.read_text(errors="replace")[-1500:] if log and log.exists() else ""
            raise RuntimeError(f"Slurm lab: {what} not within {timeout:g} s. {tail}")
        time.sleep(interval)


def cleanup_stale() -> list[str]:
    """Remove the daemons, namespaces, links and directories of Slurm labs whose creating process is gone."""
    import psutil

    removed: list[str] = []
    tmp = Path(tempfile.gettempdir())
    stale_roots = [p for p in tmp.glob("ipck-slurm-*") if (m := ROOT_PATTERN.match(p.name)) and not _pid_alive(int(m.group(1)))]
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if any(str(root) + "/" in cmdline for root in stale_roots):
            try:
                proc.kill()
                removed.append(f"pid {proc.pid}")
            except psutil.Error:
                pass
    removed += remove_stale_network(NS_PATTERN, LINK_PATTERN)
    for root in stale_roots:
        shutil.rmtree(root, ignore_errors=True)
        removed.append(str(root))
    return removed


@dataclass
class SlurmNode:
    index: int
    name: str  # Slurm node name = hostname inside the node = network namespace name
    address: str
    veth: str
    slurmd: subprocess.Popen | None = None

    @property
    def ns(self) -> str:
        return self.name

    def netns_id(self) -> str:
        """What ``readlink /proc/self/ns/net`` shows inside this node: ``net:[inode]``."""
        return f"net:[{os.stat(f'/run/netns/{self.ns}').st_ino}]"


@dataclass
class SlurmLab(LabNetwork):
    n_nodes: int = 2
    cpus_per_node: int = 2
    # A silent node is flagged not responding ("*") at the first ping that fails (nodes are pinged
    # when silent for a third of this), and marked down (ending its jobs) after this many seconds.
    slurmd_timeout: int = 5
    nodes: list[SlurmNode] = field(default_factory=list)
    root: Path | None = None
    ctld_port: int = 0
    slurmd_port: int = 0
    munged: subprocess.Popen | None = None
    slurmctld: subprocess.Popen | None = None
    build_seconds: float | None = None
    tag: str = ""

    # ---------------------------------------------------------------- what clients need

    @property
    def conf(self) -> Path:
        assert self.root
        return self.root / "slurm.conf"

    @property
    def munge_socket(self) -> Path:
        assert self.root
        return self.root / "munge-socket" / "munge.socket"

    @property
    def env(self) -> dict[str, str]:
        """The environment additions for every process that calls sbatch/squeue/scancel/sinfo/srun."""
        return {"SLURM_CONF": str(self.conf)}

    def client_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    @property
    def partition(self) -> str:
        return PARTITION

    # ---------------------------------------------------------------- build

    def build(self) -> "SlurmLab":
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        cleanup_stale()
        started = time.monotonic()
        try:
            self._build()
        except BaseException:
            self.teardown()
            raise
        self.build_seconds = time.monotonic() - started
        return self

    def _build(self) -> None:
        pid = os.getpid()
        self.tag = f"{pid}{string.ascii_lowercase[next(_labs_made) % 26]}"
        self.root = Path(tempfile.mkdtemp(prefix=f"ipck-slurm-{pid}-"))
        os.chmod(self.root, 0o711)  # munged: every directory above its socket must be world-executable
        for sub, mode in (("munge", 0o700), ("munge-socket", 0o755), ("state", 0o700), ("log", 0o755)):
            (self.root / sub).mkdir(mode=mode)
        _run(MUNGEKEY, "--create", "--keyfile", str(self.root / "munge" / "munge.key"))
        self._start_munged()

        self.open_network(f"ics{self.tag}b")
        for i in range(1, self.n_nodes + 1):
            node = SlurmNode(index=i, name=f"ipck-{self.tag}-n{i}", address=f"{self.subnet}.{10 + i}", veth=f"ics{self.tag}v{i}")
            self.nodes.append(node)
            self._make_namespace(node)

        self.ctld_port, self.slurmd_port = free_port(), free_port()
        self.conf.write_text(self.slurm_conf())
        _wait(self.munge_socket.exists, 10, "munged's socket", self.root / "log" / "munged.log")
        self._start_slurmctld()
        for node in self.nodes:
            (self.root / f"spool-{node.name}").mkdir(mode=0o755)
            self.start_slurmd(node)
        self.wait_nodes_idle()

    def _start_munged(self) -> None:
        assert self.root
        munge = self.root / "munge"
        self.munged = self._popen(
            [MUNGED, "--foreground", "--force", f"--socket={self.munge_socket}", f"--key-file={munge / 'munge.key'}",
             f"--pid-file={munge / 'munged.pid'}", f"--seed-file={munge / 'munged.seed'}",
             f"--log-file={self.root / 'log' / 'munged.log'}"],  # fmt: skip
            self.root / "log" / "munged.out",
        )

    def _start_slurmctld(self) -> None:
        assert self.root
        log = self.root / "log" / "slurmctld.log"
        self.slurmctld = self._popen([SLURMCTLD, "-D", "-i", "-f", str(self.conf)], self.root / "log" / "slurmctld.out")
        _wait(lambda: self.slurmctld.poll() is not None or _accepts(self.gateway, self.ctld_port), 20, "slurmctld listening", log)
        if self.slurmctld.poll() is not None:
            raise RuntimeError(f"slurmctld exited: {(self.root / 'log' / 'slurmctld.out').read_text()[-1500:]}")

    def _popen(self, argv: list[str], log_path: Path) -> subprocess.Popen:
        with open(log_path, "ab") as log:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                    env={**os.environ, **self.env})  # fmt: skip

    def _make_namespace(self, node: SlurmNode) -> None:
        self.attach_namespace(node.ns, node.veth, node.address)

    def slurm_conf(self) -> str:
        assert self.root
        root, nodes = self.root, self.nodes
        lines = [
            f"# Slurm test lab {self.tag} (tests/lab/slurmlab.py)",
            f"ClusterName=ipck{self.tag}",
            f"SlurmctldHost={socket.gethostname().split('.')[0]}({self.gateway})",
            f"SlurmctldPort={self.ctld_port}",
            f"SlurmdPort={self.slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={root / 'state'}",
            f"SlurmctldPidFile={root / 'slurmctld.pid'}",
            f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
            f"SlurmdSpoolDir={root / 'spool-%n'}",
            f"SlurmdPidFile={root / 'slurmd-%n.pid'}",
            f"SlurmdLogFile={root / 'log' / 'slurmd-%n.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "SchedulerType=sched/builtin",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "SchedulerParameters=batch_sched_delay=0",
            "SlurmdParameters=config_overrides",
            "ReturnToService=2",
            f"SlurmdTimeout={self.slurmd_timeout}",
            "MessageTimeout=5",
            "KillWait=2",
            "MinJobAge=2",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            *(
                f"NodeName={n.name} NodeAddr={n.address} NodeHostname={n.name} CPUs={self.cpus_per_node} State=UNKNOWN"
                for n in nodes
            ),
            f"PartitionName={PARTITION} Nodes={','.join(n.name for n in nodes)} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
        return "\n".join(lines)

    # ---------------------------------------------------------------- nodes

    def start_slurmd(self, node: SlurmNode) -> None:
        """slurmd in the node's network namespace, with the node's hostname in a UTS namespace of its own."""
        assert self.root
        script = f"hostname {node.name} && exec {SLURMD} -D -N {node.name} -f {self.conf}"
        node.slurmd = self._popen(
            ["nsenter", f"--net=/run/netns/{node.ns}", "--", "unshare", "--uts", "--", "/bin/sh", "-c", script],
            self.root / "log" / f"slurmd-{node.name}.out",
        )

    def sinfo_states(self) -> dict[str, str]:
        """Node name -> Slurm state (idle, alloc, down*, ...)."""
        proc = self.run("sinfo", "-h", "-N", "-o", "%N %T")
        return dict(line.split(None, 1) for line in proc.stdout.splitlines() if " " in line)

    def wait_nodes_idle(self, nodes: list[SlurmNode] | None = None, timeout: float = 30) -> None:
        names = [n.name for n in (nodes or self.nodes)]

        def ready():
            for node in nodes or self.nodes:
                if node.slurmd is None or node.slurmd.poll() is not None:
                    raise RuntimeError(f"slurmd of {node.name} exited: {self.node_log(node)}")
            states = self.sinfo_states()
            return all(states.get(n) == "idle" for n in names)

        _wait(ready, timeout, f"nodes {names} idle", self.root / "log" / "slurmctld.log" if self.root else None)

    def node_log(self, node: SlurmNode) -> str:
        assert self.root
        texts = [(self.root / "log" / name).read_text(errors="replace")[-1000:]
                 for name in (f"slurmd-{node.name}.out", f"slurmd-{node.name}.log") if (self.root / "log" / name).exists()]  # fmt: skip
        return " | ".join(texts)

    def node_pids(self, node: SlurmNode) -> list[int]:
        return netns_pids(node.ns)

    def job_pids(self, node: SlurmNode) -> list[int]:
        """Processes on the node other than its slurmd (slurmstepd, job scripts, engines)."""
        keep = {node.slurmd.pid} if node.slurmd else set()
        found = []
        for pid in netns_pids(node.ns):
            try:
                exe = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if pid not in keep and not exe.endswith(b"slurmd"):
                found.append(pid)
        return found

    def kill_node(self, node: SlurmNode) -> None:
        """The node is lost: every process in its namespace (slurmd, slurmstepd, the job's) is killed."""
        for pid in netns_pids(node.ns):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if node.slurmd:
            node.slurmd.wait(5)
        node.slurmd = None
        _wait(lambda: not netns_pids(node.ns), 5, f"processes of {node.name} gone")

    def revive_node(self, node: SlurmNode, timeout: float = 60) -> None:
        """Start a lost node's slurmd again and wait until Slurm has it idle (ReturnToService=2)."""
        self.start_slurmd(node)
        self.wait_nodes_idle([node], timeout)

    # ---------------------------------------------------------------- jobs

    def run(self, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess:
        """A Slurm client command against the lab (``SLURM_CONF`` set); not checked."""
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.client_env())

    def squeue(self) -> list[dict[str, str]]:
        """Every job Slurm still lists: id, name, state, reason, nodes."""
        proc = self.run("squeue", "-h", "-o", "%i|%j|%T|%r|%N")
        keys = ("id", "name", "state", "reason", "nodes")
        return [dict(zip(keys, line.split("|"))) for line in proc.stdout.splitlines() if line.strip()]

    def cancel_all(self, timeout: float = 20) -> None:
        """Cancel every job of the lab and wait until squeue lists none (test clean-up)."""
        if self.squeue():
            self.run("scancel", "--full", "--quiet", f"--partition={PARTITION}")
            _wait(lambda: not self.squeue(), timeout, "every job gone from squeue", interval=0.1)

    # ---------------------------------------------------------------- teardown

    def teardown(self) -> None:
        for node in self.nodes:  # slurmd and everything it started (slurmstepd, jobs) in the node
            if node.ns in self._netns_made:
                kill_netns_processes(node.ns)
            if node.slurmd is not None:
                _stop(node.slurmd, 1)
                node.slurmd = None
        self.close_network([node.veth for node in self.nodes])
        _stop(self.slurmctld)
        _stop(self.munged)
        self.slurmctld = self.munged = None
        if self.root and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "SlurmLab":
        return self.build()

    def __exit__(self, *exc) -> None:
        self.teardown()


def _accepts(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=0.2).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def slurm_lab():
    """One Slurm lab for the whole test session (skipped with a reason where it cannot run)."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    lab = SlurmLab().build()
    try:
        yield lab
    finally:
        lab.teardown()


if __name__ == "__main__":  # manual use: python -m tests.lab.slurmlab keeps a lab up until Enter
    with SlurmLab() as lab:
        print(f"lab up in {lab.build_seconds:.2f} s; export SLURM_CONF={lab.conf}")
        print(_run("sinfo", check=False).stdout)
        try:
            input("press Enter to tear it down ")
        except EOFError:
            pass
