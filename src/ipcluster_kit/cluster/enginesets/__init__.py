"""Where a cluster's engines run: one interface (:mod:`.base`), one short module per kind.

``local`` (processes on this machine), ``ssh`` (other hosts), ``mpi`` (one ``mpiexec`` world),
``slurm`` (a batch job). :func:`base.for_launcher` picks the kind for a profile's launcher and
refuses, naming the ``ipcluster start`` command, the batch systems `up` does not drive.
"""
