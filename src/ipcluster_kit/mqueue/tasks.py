"""What a job computes: a module-level function, named ``module:function`` or passed by reference.

Jobs never carry code. A task named by a string is imported by each worker; a function object
(the ``run_map`` backend) is pickled by reference, which also means "imported by the worker".
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Callable

from ipcluster_kit.errors import BadInput

DEFAULT_TASK = "ipcluster_kit.bench.workloads:nth_prime"

_SPEC_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class TaskImportError(Exception):
    """A worker could not import a task: the job goes back to the queue for another worker."""


def check_task(task: Any) -> Any:
    """A valid task: a ``module:function`` string or a callable. BadInput otherwise."""
    if isinstance(task, str):
        if not _SPEC_RE.match(task):
            raise BadInput(f"bad task {task!r}: expected module:function, e.g. {DEFAULT_TASK}")
        return task
    if callable(task):
        return task
    raise BadInput(f"bad task {task!r}: expected module:function or a function")


def resolve(task: Any) -> Callable[[Any], Any]:
    """The function behind ``task``; TaskImportError with the reason if it cannot be imported."""
    if callable(task):
        return task
    module_name, _, attr_path = task.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr_path.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # ImportError, AttributeError, or an error while importing
        raise TaskImportError(f"cannot import task {task!r}: {type(exc).__name__}: {exc}") from None
    if not callable(obj):
        raise TaskImportError(f"task {task!r} is not callable")
    return obj
