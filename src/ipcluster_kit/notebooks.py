"""Helpers the example notebooks use inside their kernels.

:data:`PROFILE_ENV` names the profile they should use (``ipcluster-kit notebooks --profile``), and
:func:`cleanup_stack` gives them one place to register what must be stopped, closed on the
kernel's exit (normal shutdown, restart, SIGTERM) if the last cell never runs. Serving the
notebooks is :mod:`ipcluster_kit.notebook_server`'s.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

PROFILE_ENV = "IPCK_PROFILE"
"""Environment variable naming the kit profile the notebooks use (set by ``--profile``)."""


_STACKS: list[contextlib.ExitStack] = []


def _close_stacks() -> None:
    while _STACKS:
        stack = _STACKS.pop()
        try:
            stack.close()
        except Exception:  # one failed clean-up must not skip the others
            import traceback

            traceback.print_exc()


def _on_sigterm(signum, frame) -> None:
    _close_stacks()
    # Then die of the signal as if there had been no handler.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def cleanup_stack() -> contextlib.ExitStack:
    """An ExitStack for a notebook's resources, closed by its last cell or, failing that, when the kernel ends.

    A try/finally cannot span cells. Instead each resource is pushed onto this stack as soon as it
    exists (``stack.callback(cluster.stop_cluster_sync)``) and the notebook's last cell calls
    ``stack.close()``. If that cell never runs (a cell failed, the kernel was restarted or shut
    down), the stack is closed when the kernel process ends:

    * Jupyter stops a kernel with a shutdown request, and the kernel exits normally: ``atexit``
      closes the stack;
    * if the kernel does not exit in time (a cell is still running), Jupyter sends SIGTERM: the
      handler installed here closes the stack, then lets the signal end the process. (Raising
      SystemExit instead would not do: IPython catches it inside a running cell.)

    Closing twice is harmless: a closed stack is empty.
    """
    import atexit

    stack = contextlib.ExitStack()
    _STACKS.append(stack)
    atexit.register(stack.close)
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)
    return stack
