"""The JSON Schemas of the kit's documents, one file each beside this module, and checking against them.

``bench-result-v1.json`` (``bench --json``), ``bench-schemes-v1.json`` (``bench schemes --json``), and
the others' documents as they come (the cluster state file, the sweep). Each is described in
``docs/``. :func:`errors` validates a parsed document with jsonschema; :func:`load_document` reads a
file and turns every way it can be wrong into one ``BadInput`` line naming the file.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ipcluster_kit.errors import BadInput


@dataclass(frozen=True)
class DocumentKind:
    """A family of documents: its ``schema`` name, version, schema file, and how to name it to a user."""

    name: str  # the document's "schema" field, e.g. "ipcluster-kit/bench-result"
    version: int
    file: str  # beside this module
    what: str  # "bench result": messages say "not a bench result"
    how_to_write: str = ""  # e.g. "write one with `ipcluster-kit bench --json FILE`"
    aliases: tuple[str, ...] = ()  # older "schema" names of the same format


def schema(file: str) -> dict:
    """The JSON Schema in ``file`` (shipped in the package)."""
    return json.loads(resources.files(__name__).joinpath(file).read_text())


def _jsonschema() -> Any:
    # jsonschema imports every optional format checker it finds; rfc3987_syntax (installed with
    # Jupyter's jsonschema[format-nongpl]) compiles a grammar on import, 1.1 s of the 1.2 s. The kit
    # checks no IRI formats, so that one module is hidden while jsonschema loads, then made
    # importable again for whoever else needs it.
    if "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
        try:
            import jsonschema
        finally:
            del sys.modules["rfc3987_syntax"]
        return jsonschema
    import jsonschema

    return jsonschema


@functools.lru_cache(maxsize=None)
def _validator(file: str) -> Any:
    jsonschema = _jsonschema()
    return jsonschema.Draft202012Validator(schema(file))


def errors(document: Any, kind: DocumentKind) -> list[str]:
    """Why ``document`` is not a valid ``kind`` document (empty when it is), most telling first."""
    if not isinstance(document, dict):
        return ["not a JSON object"]
    name = document.get("schema")
    if name != kind.name and name not in kind.aliases:
        hint = f"; {kind.how_to_write}" if kind.how_to_write else ""
        return [f"not a {kind.what} (schema is {name!r}, expected {kind.name!r}{hint})"]
    if document.get("schema_version") != kind.version:
        return [f"unsupported schema_version {document.get('schema_version')!r} (this kit reads {kind.version})"]
    found = sorted(_validator(kind.file).iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}" for e in found]


def load_document(path: str | os.PathLike, kind: DocumentKind) -> dict:
    """Read and validate a ``kind`` document; BadInput naming the file when it is not one."""
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():  # a FIFO or a device: would block, or never end
        raise BadInput(f"cannot read {str(path)!r}: not a regular file")
    try:
        text = path.read_text()
    except OSError as exc:
        raise BadInput(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BadInput(f"cannot read {str(path)!r}: not a text file") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{str(path)!r} is not valid JSON ({exc})") from None
    found = errors(document, kind)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise BadInput(f"{str(path)!r} is not a valid {kind.what}: {found[0]}{more}")
    return document
