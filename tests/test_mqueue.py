"""The multiprocessing.managers job queue as a library: broker rules, key handling, the bench backend.

The command line, with every process real, is in ``test_mqueue_cli.py``.
"""

from __future__ import annotations

import os
import socket
import stat
import threading
import time

import pytest

from ipcluster_kit.bench.workloads import noop, nth_prime, sum_range
from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.mqueue import authkey, net
from ipcluster_kit.mqueue.backend import QueuePool, run_map
from ipcluster_kit.mqueue.broker import Broker
from ipcluster_kit.mqueue.protocol import DONE, JOBS, STOP, WAIT
from ipcluster_kit.mqueue.client import connect
from ipcluster_kit.mqueue.server import QueueServer


def first_primes(count: int) -> list[int]:
    """An independent oracle (a sieve), not the function under test."""
    limit = 8000 if count <= 1000 else count * 20
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\x00\x00"
    for i in range(2, int(limit**0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytearray(len(sieve[i * i :: i]))
    primes = [i for i, flag in enumerate(sieve) if flag]
    assert len(primes) >= count
    return primes[:count]


def test_nth_prime_oracle_agrees():
    assert first_primes(1000)[-1] == 7919 == nth_prime(999)


# -- broker rules (no sockets) -------------------------------------------------------------------


def _take(broker: Broker, wid: str, n: int = 1) -> list[int]:
    reply = broker.get_job(wid, n, 0)
    assert reply[0] == JOBS, reply
    return [job_id for job_id, _, _ in reply[1]]


def test_workers_wait_on_an_empty_open_queue_and_stop_only_when_done():
    b = Broker(lease_timeout=5)
    assert b.get_job("w", 1, 0.05) == (WAIT,)  # empty but open: wait, do not quit
    b.submit([1, 2])
    a, c = _take(b, "w", 1), _take(b, "w", 1)
    assert b.get_job("w", 1, 0) == (WAIT,)  # nothing pending, queue open
    b.put_results("w", [(a[0], True, 3)])
    b.close()
    assert b.get_job("w", 1, 0) == (WAIT,)  # closed, but a job is still out
    b.put_results("w", [(c[0], True, 5)])
    assert b.get_job("w", 1, 0) == (DONE,)
    assert b.results_of(0, 2) == [(True, 3), (True, 5)]



def test_release_gives_back_only_the_callers_jobs_to_the_front_once():
    b = Broker()
    b.hello("w")
    b.hello("x")
    b.submit([10, 11, 12])
    first, second = _take(b, "w", 1), _take(b, "w", 1)
    other = _take(b, "x", 1)
    # a job named twice counts once; a job another worker holds stays with it
    assert b.release("w", [second[0], first[0], second[0], other[0]]) == 2
    assert b.stats()["leased"] == 1 and b.stats()["requeued"] == 0
    assert [job[0] for job in b.get_job("x", 5, 0)[1]] == [first[0], second[0]]  # lowest id first

class FakeClock:
    """The broker's lease clock, advanced by hand: lease expiry without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_a_waiting_worker_is_woken_by_the_last_result():
    b = Broker(lease_timeout=5)
    b.submit([1])
    (job,) = _take(b, "a")
    b.close()
    replies = []
    t = threading.Thread(target=lambda: replies.append(b.get_job("b", 1, 10)))
    t.start()
    wait_until(lambda: b.waiting_workers() == 1)  # "b" is blocked in the server
    b.put_results("a", [(job, True, 1)])
    t.join(5)
    assert replies == [(DONE,)]


def test_silent_worker_loses_its_lease_and_late_result_is_a_duplicate():
    clock = FakeClock()
    b = Broker(lease_timeout=0.2, clock=clock)
    b.submit(list(range(3)))
    b.close()
    (j0,) = _take(b, "slow")
    clock.advance(0.19)
    assert b.reap() == 0  # not yet
    clock.advance(0.02)
    assert b.reap() == 1
    assert b.stats()["workers"]["lost"] == 1
    assert _take(b, "fast", 3) == [0, 1, 2]  # the requeued job comes first
    b.put_results("fast", [(0, True, "fast"), (1, True, 1), (2, True, 2)])
    assert b.put_results("slow", [(j0, True, "slow")]) == 0  # late: discarded
    s = b.stats()
    assert (s["done"], s["requeued"], s["duplicates"], s["finished"]) == (3, 1, 1, True)
    assert b.results_of(0, 3) == [(True, "fast"), (True, 1), (True, 2)]  # the first result won


def test_late_result_wins_when_the_requeued_copy_is_still_pending():
    clock = FakeClock()
    b = Broker(lease_timeout=0.1, clock=clock)
    b.submit([7])
    b.close()
    _take(b, "slow")
    clock.advance(0.15)
    assert b.reap() == 1
    assert b.put_results("slow", [(0, True, "late")]) == 1
    assert b.get_job("other", 1, 0) == (DONE,)  # the stale queue entry is skipped
    assert b.stats()["duplicates"] == 0


def test_heartbeats_keep_a_long_job_leased():
    clock = FakeClock()
    b = Broker(lease_timeout=0.2, clock=clock)
    b.submit([1])
    _take(b, "w")
    for _ in range(5):  # 0.4 s in all, twice the lease, but never 0.2 s without a heartbeat
        clock.advance(0.15)
        b.heartbeat("w")
        assert b.reap() == 0
    assert b.stats()["leased"] == 1
    clock.advance(0.21)  # and once they stop, the lease expires
    assert b.reap() == 1


def test_closed_connection_requeues_at_once():
    b = Broker(lease_timeout=60)
    b.submit([1, 2])
    done = threading.Event()
    box = []

    def worker_thread():  # the server runs each connection in its own thread
        box.append(b.get_job("w", 2, 0))
        box.append(threading.get_ident())
        done.set()

    threading.Thread(target=worker_thread).start()
    done.wait(5)
    assert b.connection_closed(box[1]) == 2
    assert b.stats()["pending"] == 2 and b.stats()["workers"]["disconnected"] == 1


def test_stop_answers_waiting_workers_and_collectors():
    b = Broker(lease_timeout=5)
    b.submit([1])
    b.stop("maintenance")
    assert b.get_job("w", 1, 5) == (STOP, "maintenance")
    assert b.heartbeat("w") == STOP
    assert b.wait_results(0, 10, 5)["stopping"] == "maintenance"


def test_closed_queue_refuses_more_jobs_and_bad_tasks_are_refused():
    b = Broker()
    b.close()
    with pytest.raises(BadInput, match="closed"):
        b.submit([1])
    with pytest.raises(BadInput, match="module:function"):
        Broker().submit([1], "not a task")


# -- key handling --------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in (authkey.ENV_AUTHKEY, authkey.ENV_KEY_FILE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_missing_key_file_is_created_private_only_when_asked(clean_env, tmp_path):
    path = tmp_path / "home" / ".ipcluster-kit" / "queue.key"
    with pytest.raises(BadInput, match="does not exist"):
        authkey.load_authkey()
    made = authkey.load_authkey(create=True)
    assert made.created and made.path == path and not path.exists()  # written only when asked
    authkey.save_new_key(made)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(made.key) == 64 and made.key.decode() not in repr(made)
    again = authkey.load_authkey()
    assert again.key == made.key and not again.created


def test_key_precedence_and_checks(clean_env, tmp_path):
    explicit = tmp_path / "k1"
    explicit.write_bytes(b"a" * 20)
    explicit.chmod(0o600)
    clean_env.setenv(authkey.ENV_AUTHKEY, "b" * 20)
    assert authkey.load_authkey().key == b"b" * 20  # the environment variable
    assert authkey.load_authkey(explicit).key == b"a" * 20  # --key-file wins
    clean_env.delenv(authkey.ENV_AUTHKEY)
    clean_env.setenv(authkey.ENV_KEY_FILE, str(explicit))
    assert authkey.load_authkey().key == b"a" * 20
    explicit.chmod(0o644)
    with pytest.raises(BadInput, match="readable by other users"):
        authkey.load_authkey()
    clean_env.setenv(authkey.ENV_AUTHKEY, "short")
    with pytest.raises(BadInput, match="too short"):
        authkey.load_authkey()


def test_create_key_file_writes_where_asked_and_nothing_else(clean_env, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    made = authkey.create_key_file(shared / "q.key")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755  # the chosen directory is left alone
    assert stat.S_IMODE((shared / "q.key").stat().st_mode) == 0o600
    assert authkey.load_authkey(shared / "q.key").key == made.key
    with pytest.raises(BadInput, match="already exists"):
        authkey.create_key_file(shared / "q.key")
    with pytest.raises(BadInput, match=f"directory {tmp_path / 'nope'} does not exist"):
        authkey.create_key_file(tmp_path / "nope" / "q.key")
    assert not (tmp_path / "nope").exists()


@pytest.mark.parametrize("named_by", ["--key-file", "$IPCK_QUEUE_KEY_FILE"])
@pytest.mark.parametrize("create", [False, True])
def test_an_explicit_key_file_that_does_not_exist_is_an_error_never_created(clean_env, tmp_path, named_by, create):
    missing = tmp_path / "nonexistent" / "k"
    if named_by == "--key-file":
        call = lambda: authkey.load_authkey(missing, create=create)  # noqa: E731
    else:
        clean_env.setenv(authkey.ENV_KEY_FILE, str(missing))
        call = lambda: authkey.load_authkey(create=create)  # noqa: E731
    with pytest.raises(BadInput) as info:
        call()
    assert info.value.message.startswith(f"key file {missing} (from {named_by}) does not exist")
    assert not missing.parent.exists()
    assert not (tmp_path / "home").exists()  # and no default key made instead


@pytest.mark.parametrize("text", ["nohost", "h:", ":80", "h:99999", "h:port", "[::1]", "[::1]:80"])
def test_bad_addresses(text):
    with pytest.raises(BadInput, match="bad address"):
        net.parse_address(text)


def test_good_addresses():
    assert net.parse_address("127.0.0.1:50000") == ("127.0.0.1", 50000)
    assert net.parse_address(" example.org:0 ", listen=True) == ("example.org", 0)
    with pytest.raises(BadInput, match="only a server"):
        net.parse_address("example.org:0")
    assert net.format_address(("::1", 5)) == "[::1]:5"


# -- server and client in one process ------------------------------------------------------------


def test_wrong_key_fails_clearly_and_the_server_keeps_serving():
    key = os.urandom(16).hex().encode()
    with QueueServer(("127.0.0.1", 0), key, lease_timeout=5) as server:
        with pytest.raises(KitError, match=f"authentication failed connecting to {server.where}"):
            connect(server.address, b"x" * 32)
        proxy = connect(server.address, key)
        assert proxy.submit([3]) == (0, 1)
        assert proxy.stats()["submitted"] == 1


def _read_until_closed(sock: socket.socket, timeout: float = 10) -> bytes:
    """Everything the server sends until it closes the connection (a timeout fails the test)."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:  # closed with our garbage unread: a reset, not a FIN
            return data
        if not chunk:
            return data
        data += chunk


def _assert_no_detail(data: bytes) -> None:
    for leak in (b"#TRACEBACK", b"Traceback", b".py", b"multiprocessing", b"AuthenticationError"):
        assert leak not in data, data


@pytest.mark.parametrize("garbage", [b"GET / HTTP/1.0\r\n\r\n", b"\x00\x00\x00\x05hello", b"\xff" * 300])
def test_a_garbage_peer_gets_no_detail_and_is_logged(caplog, garbage):
    key = os.urandom(16).hex().encode()
    caplog.set_level("WARNING", logger="ipcluster_kit.mqueue.server")
    with QueueServer(("127.0.0.1", 0), key) as server:
        with socket.create_connection(server.address, timeout=10) as peer:
            peer.sendall(garbage)
            data = _read_until_closed(peer)
            me = net.format_address(peer.getsockname())
        _assert_no_detail(data)
        assert data == b"" or b"#CHALLENGE#" in data  # at most the challenge (a reset may drop it)
        wait_until(lambda: any(me in r.getMessage() for r in caplog.records))
        assert connect(server.address, key).stats()["submitted"] == 0  # still serving
    (record,) = [r for r in caplog.records if me in r.getMessage()]
    assert record.getMessage().startswith(f"refused a connection from {me}: ")


def test_a_wrong_key_peer_gets_only_the_protocol_failure_and_is_logged(caplog):
    from multiprocessing import AuthenticationError, connection

    key = os.urandom(16).hex().encode()
    caplog.set_level("WARNING", logger="ipcluster_kit.mqueue.server")
    with QueueServer(("127.0.0.1", 0), key) as server:
        peer = socket.create_connection(server.address, timeout=10)
        peer.settimeout(None)  # multiprocessing's Connection reads a blocking descriptor
        conn = connection.Connection(peer.detach())
        with pytest.raises(AuthenticationError):
            connection.answer_challenge(conn, b"w" * 32)
        with socket.socket(fileno=os.dup(conn.fileno())) as raw:
            rest = _read_until_closed(raw)
        conn.close()
        assert rest == b""  # after the failure message: closed, nothing pickled
        wait_until(lambda: any("wrong key" in r.getMessage() for r in caplog.records))


def test_a_silent_peer_is_dropped_after_the_handshake_timeout(caplog, monkeypatch):
    from ipcluster_kit.mqueue import server as server_module

    monkeypatch.setattr(server_module, "HANDSHAKE_TIMEOUT", 0.3)
    caplog.set_level("WARNING", logger="ipcluster_kit.mqueue.server")
    with QueueServer(("127.0.0.1", 0), b"k" * 32) as server:
        with socket.create_connection(server.address, timeout=10) as peer:
            data = _read_until_closed(peer)  # says nothing; the server hangs up
        _assert_no_detail(data)
        wait_until(lambda: any("no answer to the key challenge" in r.getMessage() for r in caplog.records))


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the condition"
        time.sleep(0.01)


def test_port_in_use_is_a_clear_error():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(KitError, match=f"cannot listen on 127.0.0.1:{port}: address already in use"):
            QueueServer(("127.0.0.1", port), b"k" * 32)


@pytest.mark.parametrize("answer", [b"HTTP/1.0 200 OK\r\n\r\n", b"\x00\x00\x00\x05hello", None])
def test_a_service_that_is_not_a_queue_server_is_a_clear_error(monkeypatch, answer):
    monkeypatch.setattr(net, "CONNECT_TIMEOUT", 0.5)
    with socket.create_server(("127.0.0.1", 0)) as other:
        where = f"127.0.0.1:{other.getsockname()[1]}"

        def serve_one():
            conn, _ = other.accept()
            with conn:
                if answer is not None:
                    conn.sendall(answer)
                conn.settimeout(5)
                try:
                    while conn.recv(4096):  # until the client hangs up
                        pass
                except OSError:
                    pass

        t = threading.Thread(target=serve_one)
        t.start()
        try:
            expected = "did not answer within 0.5 s" if answer is None else "is not an ipcluster-kit queue server"
            with pytest.raises(KitError, match=f"{where}.*{expected}|{expected}.*{where}"):
                connect(other.getsockname(), b"k" * 32)
        finally:
            t.join(5)


def test_server_stop_leaves_no_thread_and_frees_the_port():
    before = threading.active_count()
    server = QueueServer(("127.0.0.1", 0), b"k" * 32).start()
    proxy = connect(server.address, b"k" * 32)
    proxy.stats()
    server.stop(grace=0.1)
    assert threading.active_count() == before
    with socket.create_server(server.address):  # the port is free again
        pass


# -- the benchmark backend -----------------------------------------------------------------------


def test_run_map_primes_in_order_with_two_processes():
    assert run_map(nth_prime, range(300), processes=2, timeout=60) == first_primes(300)


@pytest.mark.parametrize("start_method", ["spawn", "fork"])
def test_run_map_start_methods_and_batches(start_method):
    assert run_map(sum_range, [10, 100, 0], processes=2, timeout=60, start_method=start_method) == [45, 4950, 0]
    assert run_map(noop, list(range(500)), processes=2, timeout=60, batch=16, start_method=start_method) == list(range(500))


def test_a_pool_serves_several_maps_and_stops_its_workers_by_pid():
    with QueuePool(2) as pool:
        pids = pool.pids
        assert pool.map(nth_prime, range(100), timeout=60) == first_primes(100)
        assert pool.map(sum_range, [3, 4], timeout=60) == [3, 6]
        assert pool.map(noop, [], timeout=60) == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_run_map_reports_a_failing_job():
    with pytest.raises(KitError, match="1 of 3 jobs failed; job 1: ValueError"):
        run_map(nth_prime, [1, -1, 2], processes=1, timeout=60)


def test_run_map_refuses_what_workers_cannot_import():
    with pytest.raises(BadInput, match="module-level function"):
        run_map(lambda x: x, [1], processes=1, timeout=10)


def test_run_map_timeout_stops_its_workers():
    started = time.monotonic()
    with pytest.raises(KitError, match="timed out after 0.5 s with 0 of 2 results"):
        run_map(time.sleep, [30, 30], processes=2, timeout=0.5)
    assert time.monotonic() - started < 15
    # No worker process of ours is left behind.
    import multiprocessing

    assert multiprocessing.active_children() == []
