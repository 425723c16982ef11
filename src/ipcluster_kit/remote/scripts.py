"""Python programs run on engine hosts with the remote interpreter (``PYTHON -c SCRIPT ARGS``).

They use only the standard library and old-fashioned syntax (no f-strings) so that even an
old or foreign interpreter can report its version instead of failing with a SyntaxError.
Each prints one JSON object on stdout. Arguments come as one JSON document in ``argv[1]``;
secrets (the connection file) only ever travel on stdin, never on a command line.
"""

from __future__ import annotations

import json

# Shared helpers, prepended to every script.
_PRELUDE = r'''
import sys, os, json, socket, time

def _dist_version(spec):
    """ipyparallel's version from its .dist-info next to the package: fast, no import."""
    for location in (spec.submodule_search_locations or []):
        site = os.path.dirname(location)
        try:
            names = os.listdir(site)
        except OSError:
            continue
        for name in names:
            if name.startswith("ipyparallel-") and name.endswith(".dist-info"):
                return name[len("ipyparallel-"):-len(".dist-info")]
    return None

def _host_info():
    info = {
        "python": "%d.%d.%d" % tuple(sys.version_info[:3]),
        "executable": sys.executable,
        "hostname": socket.gethostname(),
        "home": os.path.expanduser("~"),
        "uid": os.getuid() if hasattr(os, "getuid") else None,
        "platform": sys.platform,
        "ipyparallel": None,
        "ipyparallel_error": None,
    }
    try:
        info["netns"] = os.readlink("/proc/self/ns/net")
    except (OSError, AttributeError):
        info["netns"] = None
    try:
        import importlib.util
        spec = importlib.util.find_spec("ipyparallel")
    except Exception as exc:
        spec = None
        info["ipyparallel_error"] = "%s: %s" % (type(exc).__name__, exc)
    if spec is None:
        if info["ipyparallel_error"] is None:
            info["ipyparallel_error"] = "No module named 'ipyparallel'"
    else:
        try:
            info["ipyparallel"] = _dist_version(spec)
            if info["ipyparallel"] is None:
                from importlib.metadata import version
                info["ipyparallel"] = version("ipyparallel")
        except Exception:
            try:
                import ipyparallel
                info["ipyparallel"] = ipyparallel.__version__
            except Exception as exc:
                info["ipyparallel_error"] = "%s: %s" % (type(exc).__name__, exc)
    return info

def _proc_stat(pid):
    """(state, start time in clock ticks since boot) of a process, or None."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            data = fh.read()
    except (IOError, OSError):
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[19])

def _alive(pid, start_time):
    st = _proc_stat(pid)
    if st is None:
        if os.path.isdir("/proc/self"):
            return False
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False
    if st[0] in ("Z", "X"):
        return False
    return start_time is None or st[1] == start_time

def _tail(path, lines=8):
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 4000))
            text = fh.read().decode("utf-8", "replace")
    except (IOError, OSError):
        return ""
    return "\n".join(text.splitlines()[-lines:])

def _out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()

ARGS = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
'''

PREFLIGHT = _PRELUDE + r'''
info = _host_info()
info["time"] = time.time()
_out(info)
'''

# Write the engine connection file (stdin) into <profile_dir>/security with 0600 in 0700 dirs,
# atomically, then report its checksum and modes as read back from disk.
INSTALL = _PRELUDE + r'''
import hashlib, stat
data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
profile_dir = ARGS["profile_dir"]
os.umask(0o077)
security = os.path.join(profile_dir, "security")
logdir = os.path.join(profile_dir, "log")
for d in (profile_dir, security, logdir):
    if not os.path.isdir(d):
        os.makedirs(d, 0o700)
    os.chmod(d, 0o700)
target = os.path.join(security, ARGS["name"])
tmp = "%s.tmp-%d" % (target, os.getpid())
fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
try:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)
finally:
    os.close(fd)
os.chmod(tmp, 0o600)
os.rename(tmp, target)
with open(target, "rb") as fh:
    digest = hashlib.sha256(fh.read()).hexdigest()
_out({
    "path": target,
    "sha256": digest,
    "mode": stat.S_IMODE(os.stat(target).st_mode),
    "dir_mode": stat.S_IMODE(os.stat(security).st_mode),
    "profile_dir_mode": stat.S_IMODE(os.stat(profile_dir).st_mode),
})
'''

# Start N engines, each in its own session (immune to the SSH session ending), output to a log
# file on the host; report their PIDs with start times, and keep a copy of the list on the host.
START = _PRELUDE + r'''
import subprocess
os.umask(0o077)
profile_dir = ARGS["profile_dir"]
logdir = os.path.join(profile_dir, "log")
if not os.path.isdir(logdir):
    os.makedirs(logdir, 0o700)
argv = [sys.executable, "-m", "ipyparallel.engine", "--file=" + ARGS["file"],
        "--profile-dir=" + profile_dir] + list(ARGS.get("engine_args", []))
started = []
devnull = os.open(os.devnull, os.O_RDONLY)
for i in range(int(ARGS["n"])):
    log = os.path.join(logdir, "ipengine-%s-%d.log" % (ARGS["tag"], i))
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen(argv, stdin=devnull, stdout=fd, stderr=fd, cwd=profile_dir,
                                close_fds=True, start_new_session=True)
    finally:
        os.close(fd)
    st = _proc_stat(proc.pid)
    started.append({"pid": proc.pid, "start_time": st[1] if st else None, "log": log})
record = os.path.join(profile_dir, "ipcluster-kit-engines.json")
try:
    with open(record) as fh:
        old = json.load(fh).get("engines", [])
except (IOError, OSError, ValueError):
    old = []
keep = [e for e in old if _alive(e["pid"], e.get("start_time"))]
tmp = record + ".tmp"
with open(tmp, "w") as fh:
    json.dump({"engines": keep + started}, fh)
os.rename(tmp, record)
_out({"engines": started, "python": sys.executable})
'''

# Report which recorded engines still run (same PID *and* start time), with the tail of the
# log of those that do not; with "signal", stop them: TERM to the process group, KILL after
# the timeout. Engines that are not running (or whose PID now belongs to another process)
# are left alone.
CONTROL = _PRELUDE + r'''
import signal as _signal
engines = ARGS.get("engines")
profile_dir = ARGS.get("profile_dir")
record = os.path.join(profile_dir, "ipcluster-kit-engines.json") if profile_dir else None
if engines is None and record:
    try:
        with open(record) as fh:
            engines = json.load(fh).get("engines", [])
    except (IOError, OSError, ValueError):
        engines = []
engines = engines or []

def _send(pid, sig):
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
        return True
    except OSError:
        return False

results = {}
targets = []
for e in engines:
    pid, start = int(e["pid"]), e.get("start_time")
    st = _proc_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        results[pid] = "not running"
    elif start is not None and st[1] != start:
        results[pid] = "not running (pid reused)"
    else:
        results[pid] = "running"
        targets.append((pid, start))
    if results[pid] != "running" and e.get("log"):
        results[pid] += "\n" + _tail(e["log"])

def _children(parents):
    """Processes whose parent is one of ``parents``: an engine's nanny runs in a session of its own,
    so signalling the engine's group does not reach it."""
    found = []
    if not os.path.isdir("/proc/self"):
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as fh:
                data = fh.read()
        except (IOError, OSError):
            continue
        rest = data[data.rindex(")") + 2:].split()
        if int(rest[1]) in parents and rest[0] not in ("Z", "X"):
            found.append((int(entry), int(rest[19])))
    return found

if ARGS.get("stop"):
    helpers = _children(set(pid for pid, _ in targets))
    for pid, start in targets + helpers:
        _send(pid, _signal.SIGTERM)
    deadline = time.time() + float(ARGS.get("timeout", 5))
    pending = list(targets) + helpers
    while pending and time.time() < deadline:
        time.sleep(0.05)
        pending = [t for t in pending if _alive(*t)]
    for pid, start in targets:
        results[pid] = "terminated"
    for pid, start in pending:
        _send(pid, _signal.SIGKILL)
        if pid in results:
            results[pid] = "killed"
    deadline = time.time() + 3
    while pending and time.time() < deadline:
        time.sleep(0.05)
        pending = [t for t in pending if _alive(*t)]
    for pid, start in pending:
        results[pid] = "still running"  # an engine, or a nanny that outlived its engine
    if record and os.path.exists(record):
        try:
            with open(record) as fh:
                old = json.load(fh).get("engines", [])
            keep = [e for e in old if _alive(int(e["pid"]), e.get("start_time"))]
            with open(record + ".tmp", "w") as fh:
                json.dump({"engines": keep}, fh)
            os.rename(record + ".tmp", record)
        except (IOError, OSError, ValueError):
            pass
_out({"results": dict((str(k), v) for k, v in results.items())})
'''

# Everything `doctor` asks of one host, in one round trip.
DOCTOR = _PRELUDE + r'''
import hashlib, stat, select, errno
report = {"info": _host_info()}
profile_dir = ARGS["profile_dir"]
if profile_dir.startswith("~/"):
    profile_dir = profile_dir[2:]
if not os.path.isabs(profile_dir):
    profile_dir = os.path.join(os.path.expanduser("~"), profile_dir)
path = os.path.join(profile_dir, "security", ARGS["name"])
cf = {"path": path, "exists": os.path.isfile(path)}
if cf["exists"]:
    with open(path, "rb") as fh:
        cf["sha256"] = hashlib.sha256(fh.read()).hexdigest()
    cf["mode"] = stat.S_IMODE(os.stat(path).st_mode)
    cf["dir_mode"] = stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode)
report["connection_file"] = cf
ports = {}
socks = {}
for port in ARGS.get("ports", []):
    s = socket.socket(socket.AF_INET6 if ":" in ARGS["address"] else socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    err = s.connect_ex((ARGS["address"], port))
    if err in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
        socks[s] = port
    else:
        ports[str(port)] = os.strerror(err)
        s.close()
deadline = time.time() + float(ARGS.get("timeout", 3))
while socks and time.time() < deadline:
    _, writable, _ = select.select([], list(socks), [], max(0.0, deadline - time.time()))
    for s in writable:
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        ports[str(socks.pop(s))] = "ok" if err == 0 else os.strerror(err)
        s.close()
for s, port in socks.items():
    ports[str(port)] = "timed out"
    s.close()
report["ports"] = ports
report["time"] = time.time()
_out(report)
'''


def args(obj: dict) -> str:
    """The single JSON argument a script takes."""
    return json.dumps(obj, separators=(",", ":"))
