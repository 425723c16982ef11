"""ipcluster-kit: set up an IPython Parallel cluster, open it safely, and measure whether it pays off."""

__version__ = "0.1.0"
