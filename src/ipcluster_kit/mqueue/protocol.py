"""The queue's wire vocabulary: what the server exposes, what ``get_job`` answers, and the limits.

Shared by the broker (which holds the state), the server (which exposes it) and the clients
(producers, workers, collectors), so none of them imports another's module for a constant.
"""

from __future__ import annotations

# Replies of get_job / exchange.
JOBS = "jobs"  # ("jobs", [(job_id, task_id, arg), ...])
WAIT = "wait"  # ("wait",): nothing to do yet, ask again
DONE = "done"  # ("done",): the producer closed the queue and every job has a result: exit
STOP = "stop"  # ("stop", reason): the server is shutting down before the work is done

MAX_WAIT = 30.0  # longest a get_job / wait_results call blocks in the server
MAX_BATCH = 1000
MAX_SUBMIT = 100_000

BROKER_TYPEID = "broker"  # the name the manager registers the broker under

# Methods the server exposes to clients (the proxy).
EXPOSED = (
    "hello",
    "heartbeat",
    "goodbye",
    "get_job",
    "exchange",
    "put_results",
    "release",
    "task",
    "submit",
    "close",
    "wait_results",
    "mark_collected",
    "stats",
)


def heartbeat_interval(lease_timeout: float) -> float:
    """How often a worker proves it is alive: three times per lease, within 50 ms and 10 s."""
    return max(0.05, min(lease_timeout / 3.0, 10.0))
