"""``ipcluster-kit notebooks``: the example notebooks copied to a working folder and served by JupyterLab.

It works in four steps, each in a short module here:

1. :func:`.copying.copy_examples` copies the packaged notebooks into a working folder. The
   installed files are never edited (Jupyter saves into the copy), and a copy that already exists
   is kept: it may hold the user's edits.
2. :mod:`.checks` refuses, before anything starts, a port that something listens on, a profile that
   does not exist, and says when ipyparallel's JupyterLab extension would not show.
3. :class:`.server.LabServer` starts JupyterLab from this very environment (``sys.executable -m
   jupyterlab``), bound to 127.0.0.1, with ipyparallel's server extension enabled on the command
   line, IPYTHONDIR pointing at the kit's profiles (so the IPython Parallel panel lists them) and
   the token passed in the environment (not on the command line, where ``ps`` would show it).
4. :func:`.server.serve` waits for Ctrl-C or SIGTERM and stops the server by PID: SIGTERM (Jupyter
   then shuts its kernels down, and they stop their clusters), a timeout, and then every process
   the server had started that is still there (kernels, controllers, engines), through
   :func:`ipcluster_kit.processes.stop_processes`.

What runs inside the notebooks' kernels (the clean-up stack) is :mod:`ipcluster_kit.notebooks`.
"""
