"""A job queue over TCP with ``multiprocessing.managers``: the standard library's way, done right.

The book serves two raw ``Queue`` objects from a ``BaseManager``. This package keeps that design
(a manager serving a shared object on a port; producers, workers and collectors anywhere that can
reach it) and fixes what the book's code gets wrong:

- the key comes from a private file or ``IPCK_QUEUE_AUTHKEY``, never a constant (``authkey``);
- workers ask the server for work and stop when it says the work is done, never on ``empty()``
  (``broker``, ``worker``);
- a job taken by a worker that dies goes back to the queue, and every job has exactly one
  result (``broker``: leases renewed by heartbeats, requeued on silence or disconnection);
- results are kept and collected in job order, not printed (``collect``);
- the manager is started, serves, and stops cleanly; a port in use, a wrong key or a vanished
  server is one clear line, not a traceback (``server``, ``client``, ``net``).

Modules: ``broker`` (state, no sockets), ``server``, ``client``, ``worker``, ``producer``,
``collect``, ``authkey``, ``tasks``, ``net``, and ``backend`` (``run_map`` for ``bench``).
"""
