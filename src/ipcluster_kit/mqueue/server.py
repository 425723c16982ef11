"""The queue server: a ``multiprocessing.managers.BaseManager`` sharing one ``Broker`` over TCP.

This is the book's design (a manager serving shared objects on a port) with the parts it leaves
out: the manager is actually started and serves; one bad connection (wrong key, garbage) costs a
thread, not the server; the process can be stopped cleanly (SIGINT/SIGTERM or ``--until-drained``)
and tells its workers so; a port in use is one clear error.

The standard ``Server.serve_forever`` is meant to own a whole process (it ends in ``sys.exit``)
and its accept loop cannot be stopped, so ``QueueServer`` runs the same ``Server`` object with its
own small loop: it overrides ``accepter`` (to stop), ``handle_request`` (to tune sockets, track
connections, and refuse unauthenticated peers quietly) and ``serve_client`` (to tell the broker
when a worker's connection closes).

The standard ``handle_request`` answers a peer that fails the key challenge with a pickled
traceback, which shows the server's file paths to anyone who can connect. Here such a peer gets
the challenge protocol's own failure message and a closed connection, and the server logs the
attempt (logger ``ipcluster_kit.mqueue.server``; ``queue serve`` prints it on stderr).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from multiprocessing import AuthenticationError, connection, managers
from typing import Any, Callable

from ipcluster_kit.mqueue import net
from ipcluster_kit.mqueue.broker import Broker
from ipcluster_kit.mqueue.protocol import BROKER_TYPEID, EXPOSED
from ipcluster_kit.mqueue.client import SERIALIZER
from ipcluster_kit.mqueue.tasks import DEFAULT_TASK
from ipcluster_kit.validate import check_seconds

log = logging.getLogger(__name__)

MAX_GRACE = 3600.0


def check_server_options(lease_timeout: float = 30.0, grace: float = 1.0) -> tuple[float, float]:
    """The checks of ``queue serve``'s durations, shared by the CLI (before it reads the key) and the API."""
    return (
        check_seconds("--lease-timeout", lease_timeout),
        check_seconds("--grace", grace, allow_zero=True, maximum=MAX_GRACE),
    )


# A peer must finish the key challenge within this many seconds (an idle connection costs a thread).
HANDSHAKE_TIMEOUT = 10.0


def _refusal_reason(exc: BaseException) -> str:
    if isinstance(exc, AuthenticationError):
        return "wrong key (authentication failed)"
    if isinstance(exc, EOFError):
        return "it hung up during the key challenge"
    if isinstance(exc, (BlockingIOError, TimeoutError)):
        return f"no answer to the key challenge within {HANDSHAKE_TIMEOUT:g} s"
    return f"not the queue protocol ({type(exc).__name__})"


class _KitServer(managers.Server):
    """``managers.Server`` that can be stopped, and reports closed connections to the broker."""

    broker: Broker

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stop_event = threading.Event()  # normally created by serve_forever()
        self._conns: set[Any] = set()
        self._handlers: set[threading.Thread] = set()
        self._conns_lock = threading.Lock()

    def accepter(self) -> None:
        while not self.stop_event.is_set():
            try:
                conn = self.listener.accept()
            except OSError:
                if self.stop_event.is_set():
                    break
                time.sleep(0.01)  # e.g. EMFILE: do not spin
                continue
            if self.stop_event.is_set():
                conn.close()
                break
            handler = threading.Thread(target=self.handle_request, args=(conn,), daemon=True)
            with self._conns_lock:
                self._handlers = {t for t in self._handlers if t.is_alive()}
                self._handlers.add(handler)
            handler.start()

    def handle_request(self, conn: Any) -> None:
        net.tune_connection(conn)
        with self._conns_lock:
            self._conns.add(conn)
        try:
            if self._authenticate(conn):
                self._serve_request(conn)
        except SystemExit:  # serve_client() ends with sys.exit(0) when its client hangs up
            pass
        finally:
            with self._conns_lock:
                self._conns.discard(conn)
            conn.close()

    def _authenticate(self, conn: Any) -> bool:
        """The manager's key challenge, both ways; a peer that fails it is logged and dropped."""
        net.receive_timeout(conn, HANDSHAKE_TIMEOUT)
        try:
            connection.deliver_challenge(conn, self.authkey)
            connection.answer_challenge(conn, self.authkey)
        except Exception as exc:  # a wrong key, garbage, a peer that hangs up or never answers
            log.warning("refused a connection from %s: %s", net.peer_name(conn), _refusal_reason(exc))
            return False
        net.receive_timeout(conn, 0)
        return True

    def _serve_request(self, conn: Any) -> None:
        """One request of an authenticated client, as ``managers.Server`` serves it, minus tracebacks."""
        try:
            _, funcname, args, kwds = conn.recv()
            if funcname not in self.public:
                raise ValueError(f"{funcname!r} unrecognized")
            message = ("#RETURN", getattr(self, funcname)(conn, *args, **kwds))
        except Exception as exc:
            # The client shows this text; a formatted traceback would add the server's paths.
            message = ("#TRACEBACK", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(message)
        except Exception:  # the client is gone: nothing to tell it
            pass

    def serve_client(self, conn: Any) -> None:
        try:
            super().serve_client(conn)
        finally:
            self.broker.connection_closed(threading.get_ident())

    def close_connections(self, timeout: float = 2.0) -> None:
        """Wake every connection's thread (its client sees end-of-file) and wait for them to end."""
        with self._conns_lock:
            conns = list(self._conns)
            handlers = list(self._handlers)
        for conn in conns:
            net.shutdown_connection(conn)
        deadline = time.monotonic() + timeout
        for t in handlers:
            t.join(timeout=max(0.0, deadline - time.monotonic()))


class QueueServer:
    """A job queue served on ``address`` until ``stop()``. Use ``start()`` (threads) or ``run()``."""

    def __init__(
        self,
        address: net.Address,
        authkey: bytes,
        *,
        lease_timeout: float = 30.0,
        default_task: Any = DEFAULT_TASK,
    ):
        self.broker = Broker(lease_timeout=lease_timeout, default_task=default_task)
        broker = self.broker

        class _Manager(managers.BaseManager):
            _Server = _KitServer

            def get_server(self) -> _KitServer:
                # Python < 3.12 ignores _Server in get_server(); build ours explicitly.
                return _KitServer(self._registry, self._address, self._authkey, self._serializer)

        _Manager.register(BROKER_TYPEID, callable=lambda: broker, exposed=EXPOSED)
        try:
            manager = _Manager(address=tuple(address), authkey=authkey, serializer=SERIALIZER)
            self._server: _KitServer = manager.get_server()
        except OSError as exc:
            raise net.listen_error(tuple(address), exc) from None
        self._server.broker = broker
        self.address: net.Address = self._server.address
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()

    @property
    def where(self) -> str:
        return net.format_address(self.address)

    def start(self) -> "QueueServer":
        """Serve in background threads of this process (accept loop and lease reaper)."""
        for target, name in ((self._server.accepter, "accepter"), (self._reaper, "reaper")):
            t = threading.Thread(target=target, name=f"ipck-queue-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _reaper(self) -> None:
        interval = max(0.02, min(self.broker.lease_timeout / 4.0, 1.0))
        while not self._server.stop_event.wait(interval):
            self.broker.reap()

    def stop(self, reason: str = "the server was stopped", grace: float = 1.0) -> None:
        """Tell workers (STOP, or DONE if the work is complete), wait up to ``grace`` s, close all."""
        _, grace = check_server_options(grace=grace)
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.broker.stop(reason)
        deadline = time.monotonic() + grace
        while self.broker.connected_workers() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._server.stop_event.set()
        net.wake_listener(self.address)
        for t in self._threads:
            if t.name.endswith("accepter"):
                t.join(timeout=2.0)
        try:
            self._server.listener.close()
        except OSError:
            pass
        self._server.close_connections()
        for t in self._threads:
            t.join(timeout=2.0)

    @property
    def stop_requested(self) -> bool:
        # Also set by a client calling the manager's own "shutdown".
        return self._server.stop_event.is_set()

    def run(
        self,
        *,
        until_drained: bool = False,
        grace: float = 1.0,
        on_ready: Callable[["QueueServer"], None] | None = None,
        handle_signals: bool = True,
    ) -> str:
        """Serve in the foreground until SIGINT/SIGTERM, or until drained. Returns why it stopped."""
        _, grace = check_server_options(grace=grace)
        stop = threading.Event()
        why: list[str] = []
        previous: dict[int, Any] = {}

        def on_signal(signum: int, frame: Any) -> None:
            why.append(f"the server got {signal.Signals(signum).name}")
            stop.set()

        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, on_signal)
        try:
            self.start()
            if on_ready is not None:
                on_ready(self)
            while not stop.wait(0.1):
                if self.stop_requested:
                    why.append("a client asked the server to shut down")
                    break
                if until_drained and self.broker.is_drained():
                    why.append("drained: every job has a result and they were collected")
                    break
            reason = why[0] if why else "stopped"
            self.stop(reason, grace=grace)
            return reason
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def __enter__(self) -> "QueueServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop(grace=0.2)
