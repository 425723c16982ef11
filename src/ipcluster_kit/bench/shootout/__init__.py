"""The scheme shoot-out: every task scheme and high-water mark on the same work, side by side.

For each combination of scheme (``lru``, ``leastload``, ``weighted``, ``plainrandom``, ``twobin``,
``pure``) and ``hwm`` (default 1 and 0; ``pure`` is the C scheduler, where ``hwm`` does not apply, so
it runs once) the shoot-out

1. starts a temporary local cluster with that scheme (heartbeat 100 ms, so that the eleven
   bring-ups are quicker);
2. reads back from the controller which scheme really runs (:mod:`.controller`): the
   ``task_scheme`` in the client connection file and the line its scheduler logged on start; for a
   Python scheme it also watches the ``hwm`` at work;
3. connects a client that can farm tasks whatever order the engines registered in (the ``pure``
   engine-id gap);
4. runs the workloads through ``load_balanced_view().map(f, args, chunksize=1)`` with the
   benchmark runner's measuring round (:func:`ipcluster_kit.bench.measure.measure_round`), every
   result verified before its time counts (:mod:`.run`);
5. stops the cluster in the background while the next one comes up (it is gone before any timing).

Workloads: ``overhead`` (no-op throughput), ``hetero`` (exponentially distributed durations,
reported against the lower bound), ``sum``, ``primes``, and ``user``: your ``module:function``
over an argument list (:mod:`.userfunc`). The document (``ipcluster-kit/bench-schemes`` v1,
``docs/bench-json.md``) holds every run and a recommendation per workload (:mod:`.recommend`):
the best combination against ipyparallel's default, a tie when their intervals overlap, and what
``pure`` gives up whenever it is named. :mod:`.report` draws the table, the notes and the plot.

Modules: :mod:`.plan` (what runs, validated), :mod:`.userfunc`, :mod:`.controller`, :mod:`.run`,
:mod:`.recommend` (all that ``init --scheme auto`` imports), :mod:`.report`.
"""
