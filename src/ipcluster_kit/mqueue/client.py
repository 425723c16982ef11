"""Connecting to a queue server, and turning connection failures into one clear error.

Every client (producer, worker, collector, status) calls the broker through ``BrokerProxy``. A
proxy opens one connection per thread; each call is one round trip.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from multiprocessing import AuthenticationError, connection, managers
from typing import Any, Iterator

from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.mqueue import net
from ipcluster_kit.mqueue.authkey import ENV_AUTHKEY
from ipcluster_kit.mqueue.protocol import BROKER_TYPEID, EXPOSED


class ServerGone(KitError):
    """The connection to the server broke (it stopped, or the network did)."""


# Managers look their connection functions up by serializer name: ours is pickle, as the
# default, with ``net.client_connection`` (timeouts, TCP_NODELAY, keepalive) for connecting.
SERIALIZER = "ipck-pickle"
managers.listener_client.setdefault(SERIALIZER, (connection.Listener, net.client_connection))


class BrokerProxy(managers.BaseProxy):
    """Client side of ``broker.Broker``; same methods, each a round trip to the server."""

    _exposed_ = EXPOSED

    def hello(self, worker_id: str, info: dict | None = None) -> dict:
        return self._callmethod("hello", (worker_id, info))

    def heartbeat(self, worker_id: str) -> str:
        return self._callmethod("heartbeat", (worker_id,))

    def goodbye(self, worker_id: str) -> None:
        return self._callmethod("goodbye", (worker_id,))

    def get_job(self, worker_id: str, max_jobs: int = 1, timeout: float = 1.0) -> tuple:
        return self._callmethod("get_job", (worker_id, max_jobs, timeout))

    def exchange(self, worker_id: str, results: list, max_jobs: int = 1, timeout: float = 1.0) -> tuple:
        return self._callmethod("exchange", (worker_id, results, max_jobs, timeout))

    def put_results(self, worker_id: str, results: list) -> int:
        return self._callmethod("put_results", (worker_id, results))

    def release(self, worker_id: str, job_ids: list) -> int:
        return self._callmethod("release", (worker_id, job_ids))

    def task(self, task_id: int) -> Any:
        return self._callmethod("task", (task_id,))

    def submit(self, args: list, task: Any = None) -> tuple[int, int]:
        return self._callmethod("submit", (args, task))

    def close(self) -> int:
        return self._callmethod("close")

    def wait_results(self, cursor: int = 0, max_items: int = 10_000, timeout: float = 1.0) -> dict:
        return self._callmethod("wait_results", (cursor, max_items, timeout))

    def mark_collected(self) -> None:
        return self._callmethod("mark_collected")

    def stats(self) -> dict:
        return self._callmethod("stats")


class _ClientManager(managers.BaseManager):
    pass


_ClientManager.register(BROKER_TYPEID, proxytype=BrokerProxy, exposed=EXPOSED)

_LOST_ERRNOS = {errno.EPIPE, errno.ECONNRESET, errno.ECONNABORTED, errno.ETIMEDOUT, errno.EHOSTUNREACH,
                errno.ENETUNREACH, errno.ENOTCONN}


@contextlib.contextmanager
def server_errors(where: str) -> Iterator[None]:
    """Map what ``multiprocessing`` raises when talking to a server to one-line KitErrors."""
    try:
        yield
    except AuthenticationError:
        raise KitError(
            f"authentication failed connecting to {where} "
            f"(check the key file / {ENV_AUTHKEY}: it must hold the server's key)"
        ) from None
    except socket.gaierror as exc:
        raise BadInput(f"cannot resolve the host of {where}: {exc.strerror}") from None
    except net.NotAQueueServer:
        raise KitError(f"the service at {where} is not an ipcluster-kit queue server") from None
    except TimeoutError:
        raise ServerGone(
            f"the queue server at {where} did not answer within {net.CONNECT_TIMEOUT:g} s "
            "(stopped, unreachable, or not a queue server)"
        ) from None
    except ConnectionRefusedError:
        raise ServerGone(
            f"cannot connect to the queue server at {where}: connection refused "
            "(is `ipcluster-kit queue serve` running there?)"
        ) from None
    except (EOFError, ConnectionError) as exc:
        raise ServerGone(
            f"lost the connection to the queue server at {where} ({type(exc).__name__}): "
            "the server stopped or became unreachable"
        ) from None
    except managers.RemoteError as exc:
        lines = [ln for ln in str(exc).splitlines() if ln.strip() and not set(ln.strip()) <= {"-"}]
        raise KitError(f"the queue server at {where} failed: {lines[-1].strip() if lines else exc}") from None
    except OSError as exc:
        if exc.errno in _LOST_ERRNOS:
            raise ServerGone(f"lost the connection to the queue server at {where}: {exc.strerror}") from None
        if "bad message length" in str(exc):
            raise KitError(f"the service at {where} is not an ipcluster-kit queue server") from None
        raise KitError(f"connection error with the queue server at {where}: {exc.strerror or exc}") from None


def connect(address: net.Address, authkey: bytes) -> BrokerProxy:
    """A proxy for the broker at ``address``; KitError (one line) if that is not possible."""
    where = net.format_address(address)
    manager = _ClientManager(address=tuple(address), authkey=authkey, serializer=SERIALIZER)
    with server_errors(where):
        manager.connect()
        return manager.broker()
