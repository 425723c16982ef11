"""Remote engine hosts over SSH: concurrent, version-checked bring-up, stop by PID, and doctor.

The API the CLI (``up``/``down``/``status``/``doctor``) calls:

- :func:`bootstrap.bootstrap_hosts` -> list of :class:`records.HostResult` (one per host)
- :func:`control.stop_remote_engines` / :func:`control.remote_engine_status` on the
  :class:`records.HostRecord` values kept in the state file
- :func:`doctor.diagnose` -> list of :class:`ipcluster_kit.checks.Check`

``commands`` holds what they share (running a script over SSH, checks before any host is touched).
The engine-set layer (:mod:`ipcluster_kit.cluster.enginesets.ssh`) is what `up`/`status`/`down` use.

asyncssh is imported only when a connection is made, so importing this package is cheap.
"""

from ipcluster_kit.checks import Check
from ipcluster_kit.profile.hosts import HostSpec, parse_hosts
from ipcluster_kit.remote.bootstrap import bootstrap_hosts, default_remote_profile_dir
from ipcluster_kit.remote.control import HostEngines, remote_engine_status, stop_remote_engines
from ipcluster_kit.remote.doctor import diagnose
from ipcluster_kit.remote.records import HostRecord, HostResult, Versions
from ipcluster_kit.remote.ssh import SSHOptions

__all__ = [
    "Check",
    "HostEngines",
    "HostRecord",
    "HostResult",
    "HostSpec",
    "SSHOptions",
    "Versions",
    "bootstrap_hosts",
    "default_remote_profile_dir",
    "diagnose",
    "parse_hosts",
    "remote_engine_status",
    "stop_remote_engines",
]
