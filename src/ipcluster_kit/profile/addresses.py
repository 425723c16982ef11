"""Where a controller listens and how engines reach it: bind address, location, port range.

Only IPv4: ipyparallel's controller and engines open IPv4 ZeroMQ sockets (they never set
ZMQ_IPV6), so an IPv6 address would be accepted here and fail inside zmq at ``up``.
"""

from __future__ import annotations

import ipaddress
import re

from ipcluster_kit.errors import BadInput
from ipcluster_kit.profile.hosts import is_valid_hostname

# Sockets ipyparallel 9's controller binds with the default broadcast-scheduler depth of 1,
# counted from a real controller started with a port range (tests/test_profile_e2e.py checks it).
CONTROLLER_PORT_COUNT = 18


def parse_ports(text: str) -> tuple[int, int]:
    """``A-B`` to a port range with enough ports for the controller."""
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text or "")
    if not match:
        raise BadInput(f"malformed port range {text!r} (expected A-B, e.g. 10100-10119)")
    first, last = int(match.group(1)), int(match.group(2))
    if not (1 <= first <= 65535 and 1 <= last <= 65535) or first > last:
        raise BadInput(f"invalid port range {text!r}: ports must be 1-65535 and A <= B")
    count = last - first + 1
    if count < CONTROLLER_PORT_COUNT:
        raise BadInput(
            f"port range {text!r} has {count} ports; the controller needs {CONTROLLER_PORT_COUNT}"
            f" (e.g. {first}-{first + CONTROLLER_PORT_COUNT - 1})"
        )
    return first, last


_IPV6_REFUSED = (
    "IPv6 is not supported: ipyparallel's controller and engines open IPv4 ZeroMQ sockets; use an IPv4"
    " address (e.g. 127.0.0.1 or 0.0.0.0)"
)


def validate_bind_ip(ip: str) -> str:
    """The interface the controller binds: an IPv4 address, ``0.0.0.0`` (or ``*``) for all of them."""
    if ip == "*":
        return "0.0.0.0"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        raise BadInput(f"invalid --ip {ip!r}: not an IPv4 address (e.g. 127.0.0.1, 0.0.0.0 or 192.168.1.10)") from None
    if address.version == 6:
        raise BadInput(f"invalid --ip {ip!r}: {_IPV6_REFUSED}")
    if address.is_multicast or address == ipaddress.IPv4Address("255.255.255.255"):
        raise BadInput(f"invalid --ip {ip!r}: a multicast or broadcast address cannot be bound")
    return str(address)


def _looks_numeric(name: str) -> bool:
    # RFC 1123: the last label of a host name is never all digits, so such a name is meant as an address.
    return name.rstrip(".").rpartition(".")[2].isdigit()


def validate_location(location: str) -> str:
    """The address engines and clients connect to: a host name or an IPv4 address they can reach."""
    try:
        address = ipaddress.ip_address(location)
    except ValueError:
        address = None
    if address is None:
        if _looks_numeric(location):
            raise BadInput(f"invalid --location {location!r}: not a valid IPv4 address")
        if not is_valid_hostname(location):
            raise BadInput(f"invalid --location {location!r}: not a host name or IPv4 address")
        return location
    if address.version == 6:
        raise BadInput(f"invalid --location {location!r}: {_IPV6_REFUSED}")
    if address.is_unspecified or address.is_multicast or address == ipaddress.IPv4Address("255.255.255.255"):
        raise BadInput(
            f"invalid --location {location!r}: not an address engines can connect to"
            " (give this machine's address on their network)"
        )
    return str(address)
