"""Where a benchmark's documents go: ``--json`` and ``--plot`` paths, checked before the run
(minutes of work must not end in "cannot write"), written after it through ``files.write_output``
(``-`` is standard output; a FIFO, a device or a symlink is written through, never replaced)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from ipcluster_kit.errors import BadInput
from ipcluster_kit.files import STDOUT, check_output_path, write_output

PathLike = str | os.PathLike


def _is_special(path: Path) -> bool:
    """An existing FIFO, device or the like: its name need not end in .png."""
    return path.exists() and not path.is_file() and not path.is_dir()


def _same(a: PathLike, b: PathLike) -> bool:
    if str(a) == STDOUT or str(b) == STDOUT:
        return str(a) == str(b)
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass
    return os.path.abspath(pa) == os.path.abspath(pb)


def check_outputs(json_path: PathLike | None, plot_path: PathLike | None) -> None:
    """BadInput (one line, naming the value) for an output that cannot be written; call before the run."""
    if json_path is not None:
        check_output_path("--json", json_path)
    if plot_path is not None:
        plot = Path(plot_path)
        if str(plot_path) != STDOUT and plot.suffix.lower() != ".png" and not _is_special(plot):
            raise BadInput(f"invalid --plot {str(plot_path)!r}: the plot is a PNG file, name it *.png")
        check_output_path("--plot", plot_path)
    if json_path is not None and plot_path is not None and _same(json_path, plot_path):
        raise BadInput(f"invalid --plot {str(plot_path)!r}: it is the --json file too; give each its own file")


def dumps(document: dict) -> str:
    """A result document as the kit writes it: indented JSON, no NaN or infinity."""
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (then closed), for ``write_output`` or a notebook's display."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def write_json(path: PathLike, document: dict) -> None:
    write_output(path, dumps(document))


def write_outputs(document: dict, json_path: PathLike | None, plot_path: PathLike | None,
                  png: Callable[[dict], bytes]) -> None:  # fmt: skip
    """Write the document and its plot (``png(document)`` renders it) where ``check_outputs`` allowed."""
    if json_path is not None:
        write_json(json_path, document)
    if plot_path is not None:
        write_output(plot_path, png(document))
