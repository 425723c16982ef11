"""Addresses and the TCP details the standard library leaves at their defaults.

``multiprocessing.connection`` opens plain blocking sockets: no connect timeout, no keepalive,
Nagle's algorithm on. Here clients connect with ``client_connection`` (a timed connect and
handshake, so a dead host is an error after seconds, not minutes), and both ends of every
connection get ``TCP_NODELAY`` and TCP keepalive (so a peer that vanished without closing its
socket, such as a powered-off host, is noticed after about half a minute instead of never).
"""

from __future__ import annotations

import errno
import os
import re
import socket
import struct
from typing import Any

from ipcluster_kit.errors import BadInput, KitError

Address = tuple[str, int]

# Keepalive: first probe after 10 s of silence, then every 5 s, give up after 3 unanswered.
KEEPALIVE_IDLE = 10
KEEPALIVE_INTERVAL = 5
KEEPALIVE_COUNT = 3
# Data sent but not acknowledged for this long closes the connection.
USER_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT = 10.0

_ADDRESS_RE = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]\s]*)):(?P<port>\d{1,5})$")


def parse_address(text: str, *, listen: bool = False) -> Address:
    """``HOST:PORT`` -> ``(host, port)``; BadInput naming the value otherwise (IPv4 only).

    Port 0 ("any free port") is for a server about to listen (``listen``), never for a client.
    """
    match = _ADDRESS_RE.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise BadInput(f"bad address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:50000")
    if match.group("v6"):
        # multiprocessing.connection opens AF_INET sockets for (host, port) addresses.
        raise BadInput(f"bad address {text!r}: IPv6 is not supported by multiprocessing; use an IPv4 address or name")
    host = match.group("host") or ""
    port = int(match.group("port"))
    if not 0 <= port <= 65535:
        raise BadInput(f"bad address {text!r}: port {port} is out of range 0-65535")
    if port == 0 and not listen:
        raise BadInput(f"bad address {text!r}: port 0 means any free port, which only a server can use")
    if not host:
        raise BadInput(f"bad address {text!r}: missing host (use 0.0.0.0 to listen on every interface)")
    return host, port


def format_address(address: Any) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen_error(address: Address, exc: OSError) -> KitError:
    """The error to show when the server cannot bind ``address``."""
    where = format_address(address)
    if isinstance(exc, socket.gaierror):
        return BadInput(f"cannot listen on {where}: cannot resolve host {address[0]!r}")
    if exc.errno == errno.EADDRINUSE:
        return KitError(f"cannot listen on {where}: address already in use (another server? pick another port)")
    if exc.errno == errno.EADDRNOTAVAIL:
        return BadInput(f"cannot listen on {where}: that address does not belong to this host")
    if exc.errno == errno.EACCES:
        return KitError(f"cannot listen on {where}: permission denied (ports below 1024 need privileges)")
    return KitError(f"cannot listen on {where}: {exc.strerror or exc}")


def _socket_of(conn: Any) -> socket.socket | None:
    """A duplicate socket object for a ``multiprocessing.connection.Connection`` (None if closed)."""
    try:
        return socket.socket(fileno=os.dup(conn.fileno()))
    except (OSError, ValueError):
        return None


def _tune_socket(sock: socket.socket) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    options = [
        (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
    ]
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
        ("TCP_USER_TIMEOUT", USER_TIMEOUT_MS),
    ):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    for level, option, value in options:
        try:
            sock.setsockopt(level, option, value)
        except OSError:
            pass


def tune_connection(conn: Any) -> None:
    """TCP_NODELAY and keepalive on an established connection; silently skipped where unsupported."""
    sock = _socket_of(conn)
    if sock is None:
        return
    try:
        _tune_socket(sock)
    finally:
        sock.close()  # closes the duplicate only


def _receive_timeout(sock: socket.socket, seconds: float) -> None:
    """SO_RCVTIMEO: a blocking read on the raw descriptor fails after ``seconds`` (0 = never)."""
    whole = int(seconds)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", whole, int((seconds - whole) * 1e6)))
    except (OSError, struct.error):
        pass


def receive_timeout(conn: Any, seconds: float) -> None:
    """``_receive_timeout`` on a ``multiprocessing`` connection (0 = reads block for ever again)."""
    sock = _socket_of(conn)
    if sock is not None:
        _receive_timeout(sock, seconds)
        sock.close()  # the duplicate only; the option is on the shared socket


def peer_name(conn: Any) -> str:
    """``host:port`` of the other end of a connection, for the server's log ("?" when unknown)."""
    sock = _socket_of(conn)
    if sock is None:
        return "?"
    try:
        return format_address(sock.getpeername())
    except OSError:
        return "?"
    finally:
        sock.close()


class NotAQueueServer(Exception):
    """The peer answered, but not with the ``multiprocessing`` handshake."""


def client_connection(address: Any, family: Any = None, authkey: bytes | None = None) -> Any:
    """``multiprocessing.connection.Client`` for TCP, with the options the standard one lacks.

    - connect with a timeout (the standard client blocks for minutes on an unreachable host);
    - TCP_NODELAY *before* the handshake: otherwise the client's last handshake message and its
      first request are two small writes in a row, and Nagle's algorithm holds the second until
      the server's delayed ACK, ~40 ms on every new connection;
    - keepalive, and a timeout on the handshake (a service that is not a queue server and never
      answers is an error, not a hang).
    """
    from multiprocessing import connection

    sock = socket.create_connection(tuple(address), timeout=CONNECT_TIMEOUT)
    try:
        _tune_socket(sock)
        sock.settimeout(None)
        _receive_timeout(sock, CONNECT_TIMEOUT)
        conn = connection.Connection(sock.detach())
    finally:
        sock.close()
    try:
        if authkey is not None:
            connection.answer_challenge(conn, authkey)
            connection.deliver_challenge(conn, authkey)
        receive_timeout(conn, 0)
    except AssertionError:
        conn.close()
        raise NotAQueueServer("unexpected handshake") from None
    except BlockingIOError:
        conn.close()
        raise TimeoutError("no answer to the handshake") from None
    except BaseException:
        conn.close()
        raise
    return conn


def shutdown_connection(conn: Any) -> None:
    """Wake a thread blocked reading ``conn``: its peer and its reader both see end-of-file."""
    sock = _socket_of(conn)
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()


def wake_listener(address: Address) -> None:
    """Connect once to our own listening ``address`` so that a blocked ``accept()`` returns."""
    host, port = address[0], address[1]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    try:
        with socket.create_connection((host, port), timeout=1.0):
            pass
    except OSError:
        pass
