"""Your own task function for the shoot-out: ``--function module:function`` over ``--args FILE``.

The module is imported here (the current directory is searched, as ``python -m`` does) and on the
engines (its directory is put on their ``sys.path``). Every problem is one ``BadInput`` line
naming the option and the value, before any cluster starts.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ipcluster_kit.bench.workloads import Workload
from ipcluster_kit.errors import BadInput

_FUNCTION_SPEC = re.compile(r"^([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*):([A-Za-z_][\w]*)$")


@dataclass
class UserFunction:
    spec: str  # module:function
    func: Callable[[Any], Any]
    args: list
    args_file: str
    module_dir: str | None  # put on the engines' sys.path so that they import the module too

    def workload(self, name: str = "user") -> Workload:
        return Workload(name, self.func, self.args, f"{self.spec} over {len(self.args)} argument(s) from {self.args_file}")

    def import_code(self) -> str:
        """Python that imports the function's module on an engine (its directory put on sys.path first)."""
        code = f"import {self.func.__module__}"
        if self.module_dir:
            code = f"import sys\nif {self.module_dir!r} not in sys.path: sys.path.insert(0, {self.module_dir!r})\n" + code
        return code


def parse_function_spec(text: str) -> tuple[str, str]:
    match = _FUNCTION_SPEC.match(text or "")
    if not match:
        raise BadInput(f"invalid --function {text!r}: expected module:function (e.g. mytasks:simulate)")
    return match.group(1), match.group(2)


def load_args(path: str | os.PathLike) -> list:
    """The argument list: a JSON file holding a list, or a Python file defining ``ARGS``.

    Each element is one task's single argument (``f(element)``); pass a list or tuple and unpack
    it in the function for several.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"invalid --args {str(path)!r}: no such file")
    if path.suffix == ".py":
        import runpy

        try:
            namespace = runpy.run_path(str(path), run_name="__ipck_args__")
        except Exception as exc:
            raise BadInput(f"invalid --args {str(path)!r}: running it raised {type(exc).__name__}: {exc}") from None
        if "ARGS" not in namespace:
            raise BadInput(f"invalid --args {str(path)!r}: the file defines no ARGS")
        args = namespace["ARGS"]
        if not isinstance(args, (list, tuple, range)):
            raise BadInput(f"invalid --args {str(path)!r}: ARGS is a {type(args).__name__}, not a list")
        args = list(args)
    else:
        try:
            args = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"invalid --args {str(path)!r}: cannot read it ({exc})") from None
        except ValueError as exc:
            raise BadInput(f"invalid --args {str(path)!r}: not valid JSON ({exc})") from None
        if not isinstance(args, list):
            raise BadInput(f"invalid --args {str(path)!r}: the JSON is a {type(args).__name__}, not a list")
    if not args:
        raise BadInput(f"invalid --args {str(path)!r}: the argument list is empty")
    return args


def load_user_function(spec: str, args_file: str | os.PathLike | None) -> UserFunction:
    """Import ``module:function`` here (the current directory is searched, as ``python -m`` does)."""
    module_name, func_name = parse_function_spec(spec)
    if args_file is None:
        raise BadInput(f"--function {spec} needs --args FILE (a JSON list, or a .py file defining ARGS)")
    args = load_args(args_file)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise BadInput(f"invalid --function {spec!r}: cannot import {module_name!r} ({type(exc).__name__}: {exc})") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise BadInput(f"invalid --function {spec!r}: module {module_name!r} has no function {func_name!r}")
    module_file = getattr(module, "__file__", None)
    root = None
    if module_file:
        root = Path(module_file).resolve().parent
        for _ in range(module_name.count(".")):  # a package module: the directory above the package
            root = root.parent
    return UserFunction(spec, func, args, str(args_file), str(root) if root else None)
