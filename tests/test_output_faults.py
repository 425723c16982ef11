"""Where a command's output document goes (issue 11, class 5), through the real command line.

``--json PATH`` (written by ``files.write_output``): ``-`` and ``/dev/stdout`` are standard output,
a FIFO and a symlink are written through and stay what they are, a regular file is replaced
atomically with its mode kept, and a full disk is one error line. The serial-only quick benchmark
is the cheapest command that writes a result document (no cluster).
"""

from __future__ import annotations

import json
import os
import stat
import threading

from helpers import run_kit

BENCH = ("bench", "run", "sum", "--quick", "--backend", "serial")


def _is_result(text: str) -> bool:
    return json.loads(text)["schema"] == "ipcluster-kit/bench-result"


def test_a_full_disk_is_one_error_line_and_the_device_stays():
    result = run_kit(*BENCH, "--json", "/dev/full")
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == ["ipcluster-kit: error: cannot write /dev/full: No space left on device"]
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_dash_and_dev_stdout_are_standard_output():
    result = run_kit(*BENCH, "--json", "-")
    assert result.returncode == 0, result.stderr
    assert _is_result(result.stdout), result.stdout[:300]
    # /dev/stdout is the same place (it used to be replaced by a file): the document, and only it
    result = run_kit(*BENCH, "--json", "/dev/stdout")
    assert result.returncode == 0, result.stderr
    assert _is_result(result.stdout), result.stdout[:300]


def test_a_fifo_is_written_through(tmp_path):
    fifo = tmp_path / "results.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    result = run_kit(*BENCH, "--json", str(fifo))
    reader.join(timeout=30)
    assert result.returncode == 0, result.stderr
    assert got and _is_result(got[0])
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_symlink_stays_and_its_target_gets_the_document(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "out.json"
    target.write_text("old")
    link = tmp_path / "out.json"
    link.symlink_to(target)
    result = run_kit(*BENCH, "--json", str(link))
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert _is_result(target.read_text())


def test_a_regular_file_is_replaced_whole_and_keeps_its_mode(tmp_path):
    out = tmp_path / "out.json"
    out.write_text("previous results")
    out.chmod(0o640)
    inode = out.stat().st_ino
    result = run_kit(*BENCH, "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert _is_result(out.read_text())
    assert out.stat().st_ino != inode and stat.S_IMODE(out.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temporary file left
