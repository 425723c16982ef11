"""Every ``ipcluster-kit ...`` line of the READMEs is a command the real CLI accepts.

Each example (a line of a shell block, or an inline code span such as ``ipcluster-kit init NAME``)
is parsed by the CLI's own click command: the subcommand must exist, every option must exist and
take the value given, required arguments must be there. Examples with ``--dry-run`` run for real
(in a temporary IPython directory), and a ``$ ipcluster-kit ...`` example followed by its output
must print exactly that output. So the documentation cannot drift from the commands.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from ipcluster_kit.cli.clickcompat import UsageError
from ipcluster_kit.cli.main import command, main

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ("README.md", "notebooks/README.md")
SHELL_ENDS = {">", ">>", "&", "|", "&&", ";", "2>&1"}
# Placeholders the documents write where a number goes (NAME, DIR, FILE ... are fine as text).
PLACEHOLDERS = {"P": "8888", "PORT": "8888", "N": "2"}


def _words(text: str) -> list[str]:
    """The CLI arguments of an example: shell comment, redirection and background dropped."""
    words = []
    for word in shlex.split(text.replace("[", " ").replace("]", " "), comments=True):
        if word in SHELL_ENDS:
            break
        if word != "...":
            words.append(PLACEHOLDERS.get(word, word))
    return words[1:]  # without "ipcluster-kit"


def _expand(args: list[str]) -> list[list[str]]:
    """``queue serve/produce/work/collect`` names four subcommands."""
    for i, word in enumerate(args[:2]):
        if "/" in word and not word.startswith(("-", "/", ".")):
            return [args[:i] + [part] + args[i + 1 :] for part in word.split("/")]
    return [args]


def examples() -> list[tuple[str, list[str], str | None]]:
    """(where, argv, documented output or None) for every example in the documents."""
    found = []
    for name in DOCUMENTS:
        text = (ROOT / name).read_text()
        lines = text.splitlines()
        in_block = False
        for number, line in enumerate(lines, 1):
            if line.startswith("```"):
                in_block = not in_block
                continue
            stripped = line.strip()
            prompt = stripped.startswith("$ ipcluster-kit ")
            if in_block and (stripped.startswith("ipcluster-kit ") or prompt):
                output = lines[number].strip() if prompt and number < len(lines) else None
                for argv in _expand(_words(stripped.removeprefix("$ "))):
                    found.append((f"{name}:{number}", argv, output))
        for match in re.finditer(r"`(ipcluster-kit [^`]+)`", text):
            number = text.count("\n", 0, match.start()) + 1
            for argv in _expand(_words(match.group(1).replace("\n", " "))):
                found.append((f"{name}:{number}", argv, None))
    return found


EXAMPLES = examples()


def parse(argv: list[str]) -> None:
    """Parse ``argv`` as the CLI would, down to the last subcommand, without running anything."""
    cmd = command()
    ctx = cmd.make_context("ipcluster-kit", list(argv))
    while hasattr(cmd, "resolve_command"):
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:  # a group named on its own (`ipcluster-kit bench ...`)
            return
        name, sub, rest = cmd.resolve_command(ctx, rest)
        if not rest and hasattr(sub, "resolve_command"):  # `ipcluster-kit queue`: the group itself
            return
        ctx = sub.make_context(name, rest, parent=ctx)
        cmd = sub


def test_the_documents_have_examples():
    assert len(EXAMPLES) >= 25, EXAMPLES
    assert {where.split(":")[0] for where, _, _ in EXAMPLES} == set(DOCUMENTS)


@pytest.mark.parametrize("where, argv, output", EXAMPLES, ids=[f"{w}:{' '.join(a)[:60]}" for w, a, _ in EXAMPLES])
def test_example_parses(where, argv, output):
    try:
        parse(argv)
    except UsageError as exc:
        pytest.fail(f"{where}: `ipcluster-kit {shlex.join(argv)}` is not a valid command line: {exc.format_message()}")


RUNNABLE = [(w, a, o) for w, a, o in EXAMPLES if "--dry-run" in a or o is not None]


@pytest.mark.parametrize("where, argv, output", RUNNABLE, ids=[f"{w}:{' '.join(a)[:60]}" for w, a, _ in RUNNABLE])
def test_example_runs_as_documented(where, argv, output, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capfd.readouterr()
    if output is None:
        assert info.value.code in (0, None), f"{where}: exit {info.value.code}\n{err}"
        assert not (tmp_path / "ipython").exists() or not any((tmp_path / "ipython").iterdir())  # a dry run
    else:
        assert (out + err).strip() == output, f"{where}: the README shows {output!r}"
