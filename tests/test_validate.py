"""The shared edge checks (validate.py) and the output writer (files.write_output)."""

from __future__ import annotations

import math
import os
import stat
import subprocess
import sys
import threading

import pytest

from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.files import check_output_path, write_output
from ipcluster_kit.validate import check_count, check_seconds, check_text


@pytest.mark.parametrize(
    "value, why",
    [
        ("a\nb", "newline"),
        ("a\rb", "newline"),
        ("a\x00b", "control"),
        ("a\x1b[31mb", "control"),
        ("a\tb", "control"),
        ("a\u2028b", "control"),
        ('a"""b', "quotes"),
        ("a'b", "quotes"),
        ("a`b", "quotes"),
        ("a\\b", "quotes"),
        ("", "empty"),
        (" a", "space"),
    ],
)
def test_check_text_refuses_with_one_line_naming_option_and_value(value, why):
    with pytest.raises(BadInput) as info:
        check_text("--queue", value)
    message = info.value.message
    assert "\n" not in message and "\r" not in message
    assert message.startswith(f"invalid --queue {value!r}: ") and why in message
    assert info.value.exit_code == 2


@pytest.mark.parametrize("value", ["short", "gpu-a100", "my queue", "--mem=4G", "proj_42.x", "naïve"])
def test_check_text_accepts_plain_text(value):
    assert check_text("--queue", value) == value


@pytest.mark.parametrize(
    "value, kwargs, needle",
    [
        (float("nan"), {}, "finite"),
        ("nan", {}, "finite"),
        (float("inf"), {}, "finite"),
        (-float("inf"), {}, "finite"),
        (-1, {}, "more than 0"),
        (-1, {"allow_zero": True}, "at least 0"),
        (0, {}, "more than 0"),
        (0.5, {"minimum": 1}, "at least 1"),
        (100, {"maximum": 10}, "at most 10"),
        ("soon", {}, "a number"),
        (True, {}, "a number"),
    ],
)
def test_check_seconds_refuses(value, kwargs, needle):
    with pytest.raises(BadInput) as info:
        check_seconds("--timeout", value, **kwargs)
    assert info.value.message.startswith(f"invalid --timeout {value!r}: ") and needle in info.value.message


def test_check_seconds_accepts():
    assert check_seconds("--timeout", 2) == 2.0
    assert check_seconds("--grace", 0, allow_zero=True) == 0.0
    assert check_seconds("--timeout", "1.5") == 1.5
    assert not math.isnan(check_seconds("--timeout", 1e-3))


@pytest.mark.parametrize(
    "value, minimum, kwargs, needle",
    [
        (-1, 0, {}, "at least 0"),
        (0, 1, {}, "at least 1"),
        (1.5, 0, {}, "whole number"),
        (float("nan"), 0, {}, "whole number"),
        ("x", 0, {}, "whole number"),
        (True, 0, {}, "whole number"),
        (70000, 1, {"maximum": 65535}, "at most 65535"),
    ],
)
def test_check_count_refuses(value, minimum, kwargs, needle):
    with pytest.raises(BadInput) as info:
        check_count("--engines", value, minimum, **kwargs)
    assert info.value.message.startswith(f"invalid --engines {value!r}: ") and needle in info.value.message


def test_check_count_accepts():
    assert check_count("--engines", 3, 1) == 3
    assert check_count("--engines", 3.0, 1) == 3
    assert check_count("--engines", "4", 1) == 4


# --- write_output -------------------------------------------------------------------------------


def test_write_output_dash_is_stdout(capfd):
    write_output("-", '{"a": 1}\n')
    assert capfd.readouterr().out == '{"a": 1}\n'


def test_write_output_replaces_a_regular_file_atomically_keeping_its_mode(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old content that is longer\n")
    path.chmod(0o640)
    before = path.stat().st_ino
    write_output(path, "new\n")
    assert path.read_text() == "new\n"
    assert path.stat().st_ino != before  # a new file renamed over the old one
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temporary left


def test_write_output_creates_a_new_file(tmp_path):
    write_output(tmp_path / "new.png", b"\x89PNG")
    assert (tmp_path / "new.png").read_bytes() == b"\x89PNG"


def test_write_output_writes_through_a_symlink(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("a much longer old document\n")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_output(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new\n"


def test_write_output_writes_into_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_output(fifo, "through the pipe\n")
    reader.join(timeout=10)
    assert got == [b"through the pipe\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_write_output_full_disk_is_one_kit_error():
    with pytest.raises(KitError) as info:
        write_output("/dev/full", "x" * 10000)
    assert info.value.message == "cannot write /dev/full: No space left on device"
    assert info.value.exit_code == 1
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # still the device


@pytest.mark.parametrize("where, needle", [("dir", "directory"), ("missing/x.json", "No such file")])
def test_write_output_bad_places_are_one_kit_error(tmp_path, where, needle):
    (tmp_path / "dir").mkdir()
    with pytest.raises(KitError) as info:
        write_output(tmp_path / where, "x")
    assert "\n" not in info.value.message and needle in info.value.message


def test_write_output_to_dev_stdout_reaches_a_pipe():
    code = "from ipcluster_kit.files import write_output; print('before', flush=True); write_output('/dev/stdout', 'doc\\n')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout == "before\ndoc\n"


def test_write_output_to_dev_stdout_redirected_to_a_file_appends(tmp_path):
    out = tmp_path / "captured"
    code = "from ipcluster_kit.files import write_output; print('before', flush=True); write_output('/dev/stdout', 'doc\\n')"
    with open(out, "w") as fh:
        subprocess.run([sys.executable, "-c", code], stdout=fh, timeout=60, check=True)
    assert out.read_text() == "before\ndoc\n"


@pytest.mark.parametrize("where, needle", [("dir", "is a directory"), ("missing/x.json", "does not exist")])
def test_check_output_path_refuses_early(tmp_path, where, needle):
    (tmp_path / "dir").mkdir()
    with pytest.raises(BadInput) as info:
        check_output_path("--json", tmp_path / where)
    assert info.value.message.startswith(f"invalid --json {str(tmp_path / where)!r}: ") and needle in info.value.message


def test_check_output_path_accepts(tmp_path):
    for ok in ("-", "/dev/null", tmp_path / "new.json"):
        check_output_path("--json", ok)


def test_is_stdout_knows_the_names_of_standard_output():
    from ipcluster_kit.files import is_stdout

    code = "from ipcluster_kit.files import is_stdout; print(is_stdout('-'), is_stdout('/dev/stdout'), is_stdout('/dev/null'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == ["True", "True", "False"]
    assert is_stdout("-")
