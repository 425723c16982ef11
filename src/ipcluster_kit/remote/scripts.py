"""Python programs run on engine hosts with the remote interpreter (``PYTHON -c SCRIPT ARGS``).

The checks (``PREFLIGHT``, ``INSTALL``, ``DOCTOR``) use only the standard library and old-fashioned
syntax (no f-strings), so that even an old or foreign interpreter can report its version instead of
failing with a SyntaxError. Starting and stopping engines (:func:`start_script`,
:func:`control_script`) runs only with an interpreter that passed the versions check, and runs the
kit's own :mod:`ipcluster_kit.processes` there.
Each prints one JSON object on stdout. Arguments come as one JSON document in ``argv[1]``;
secrets (the connection file) only ever travel on stdin, never on a command line.
"""

from __future__ import annotations

import json
from pathlib import Path

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
# Runs after the versions check: this interpreter has ipyparallel, hence psutil, and is of the
# controller's minor version, so the kit's own processes module runs here as it is.
_START = r"""
os.umask(0o077)
profile_dir = ARGS["profile_dir"]
argv = [sys.executable, "-m", "ipyparallel.engine", "--file=" + ARGS["file"],
        "--profile-dir=" + profile_dir] + list(ARGS.get("engine_args", []))
started = []
for i in range(int(ARGS["n"])):
    log = os.path.join(profile_dir, "log", "ipengine-%s-%d.log" % (ARGS["tag"], i))
    record, _proc = spawn(argv, log, "engine", cwd=profile_dir)
    started.append(record.to_dict())
_update_host_list(profile_dir, started)
_out({"engines": started, "python": sys.executable})
"""

# Report which recorded engines still run (same PID *and* start time), with the tail of the
# log of those that do not; with "stop", stop them and what they started (stop_processes: TERM,
# KILL after the timeout). A PID that now belongs to another process is left alone.
_CONTROL = r"""
profile_dir = ARGS.get("profile_dir")
engines = ARGS.get("engines")
if engines is None:
    engines = _host_list(profile_dir)
records = [ProcessRecord.from_dict(e) for e in engines]
results = {}
for record in records:
    results[record.pid] = describe(record)
    if results[record.pid] != "running" and record.log:
        results[record.pid] += "\n" + _tail(record.log)
if ARGS.get("stop"):
    running = [r for r in records if results[r.pid] == "running"]
    report = stop_processes(running, timeout=float(ARGS.get("timeout", 5)), kill_timeout=3)
    killed = set(r.pid for r in report.killed)
    for record in running:
        results[record.pid] = "killed" if record.pid in killed else "terminated"
    for record in report.left:  # an engine, or a nanny that outlived its engine
        results[record.pid] = "still running"
    if profile_dir:
        _update_host_list(profile_dir, [])
_out({"results": dict((str(k), v) for k, v in results.items())})
"""

# The list of engines kept on the host (``<profile dir>/ipcluster-kit-engines.json``): the way to
# stop engines whose local record was lost.
_HOST_LIST = r"""
def _host_list(profile_dir):
    try:
        with open(os.path.join(profile_dir, "ipcluster-kit-engines.json")) as fh:
            return json.load(fh).get("engines", [])
    except (OSError, ValueError, AttributeError):
        return []

def _update_host_list(profile_dir, added):
    path = os.path.join(profile_dir, "ipcluster-kit-engines.json")
    if not os.path.exists(path) and not added:
        return
    keep = [e for e in _host_list(profile_dir) if is_alive(ProcessRecord.from_dict(e))]
    try:
        with open(path + ".tmp", "w") as fh:
            json.dump({"engines": keep + list(added)}, fh)
        os.rename(path + ".tmp", path)
    except OSError:
        pass
"""


def _with_processes(driver: str) -> str:
    """The kit's processes module (stdlib + psutil), the shared helpers, then ``driver``."""
    from ipcluster_kit import processes

    source = Path(processes.__file__).read_text()
    return source + _PRELUDE + _HOST_LIST + driver


def start_script() -> str:
    return _with_processes(_START)


def control_script() -> str:
    return _with_processes(_CONTROL)


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
