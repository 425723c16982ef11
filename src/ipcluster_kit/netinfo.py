"""Which address of this machine other hosts can reach.

The hostname is no answer: Debian maps it to 127.0.1.1, and an engine told to connect there
connects to itself. The address of the interface that carries the default route is.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from pathlib import Path

LISTEN_ALL = ("0.0.0.0", "*", "::")


def is_listen_all(ip: str) -> bool:
    return ip in LISTEN_ALL


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return ip == "localhost"


def default_route_interface(route_table: Path = Path("/proc/net/route")) -> str | None:
    """Name of the interface of the IPv4 default route, read from the kernel's table."""
    try:
        lines = route_table.read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 8 and fields[1] == "00000000" and fields[7] == "00000000":
            return fields[0]
    return None


def interface_ipv4(name: str) -> str | None:
    """The IPv4 address of interface ``name`` (Linux SIOCGIFADDR), without sending any traffic."""
    import fcntl

    SIOCGIFADDR = 0x8915
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])


def routable_address() -> str | None:
    """This machine's address on the interface of the default route, or None when there is none."""
    iface = default_route_interface()
    if iface is None:
        return None
    try:
        address = interface_ipv4(iface)
    except ImportError:  # not Linux: no fcntl ioctl for this
        return None
    if address is None or is_loopback(address):
        return None
    return address
