"""Remote engine hosts over SSH: concurrent, version-checked bring-up, stop by PID, and doctor.

The API the CLI (``up``/``down``/``status``/``doctor``) calls:

- :func:`bootstrap.bootstrap_hosts` -> list of :class:`bootstrap.HostResult` (one per host)
- :func:`control.stop_remote_engines` / :func:`control.remote_engine_status` on the
  :class:`bootstrap.HostRecord` values kept in the state file
- :func:`doctor.diagnose` -> list of :class:`doctor.Check`

asyncssh is imported only when a connection is made, so importing this package is cheap.
"""

from ipcluster_kit.remote.bootstrap import (
    HostRecord,
    HostResult,
    Versions,
    bootstrap_hosts,
    default_remote_profile_dir,
)
from ipcluster_kit.remote.control import HostEngines, remote_engine_status, stop_remote_engines
from ipcluster_kit.remote.doctor import Check, diagnose
from ipcluster_kit.profile.hosts import HostSpec, parse_hosts
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
