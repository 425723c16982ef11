"""The list of subcommand modules. Each has ``register(app)`` that adds its commands."""

from __future__ import annotations

import importlib

import typer

# One module per subcommand (or group of closely related subcommands), in the order of ``--help``.
COMMAND_MODULES = (
    "init",
    "show",
    "cluster",
    "bench",
    "remote",
    "queue",
    "notebooks",
)


def register(app: typer.Typer) -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"ipcluster_kit.cli.{name}")
        module.register(app)
