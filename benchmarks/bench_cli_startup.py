"""Wall time of `ipcluster-kit --help` and `ipcluster-kit init` against `ipython profile create --parallel`.

Run: python benchmarks/bench_cli_startup.py [--repeat 7] [--json FILE]
The three commands are run interleaved, round after round, so that machine noise hits all alike.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import summary, write  # noqa: E402


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    samples: dict[str, list[float]] = {"kit --help": [], "kit init": [], "ipython profile create --parallel": []}
    for i in range(args.repeat + 1):  # round 0 warms the file cache and is discarded
        root = Path(tempfile.mkdtemp(prefix="ipck-bench-"))
        (root / "ipy").mkdir()  # ipython refuses a missing ipython dir
        try:
            round_times = {
                "kit --help": timed([str(bindir / "ipcluster-kit"), "--help"]),
                "kit init": timed([str(bindir / "ipcluster-kit"), "init", "p", "--ipython-dir", str(root / "kit")]),
                "ipython profile create --parallel": timed(
                    [str(bindir / "ipython"), "profile", "create", "p", "--parallel", f"--ipython-dir={root / 'ipy'}"]
                ),
            }
            ipy_lines = sum(len(p.read_text().splitlines()) for p in (root / "ipy" / "profile_p").glob("*.py"))
            kit_lines = sum(len(p.read_text().splitlines()) for p in (root / "kit" / "profile_p").glob("*.py"))
        finally:
            shutil.rmtree(root, ignore_errors=True)
        if i:
            for key, value in round_times.items():
                samples[key].append(value)
    results = {key: summary(values) for key, values in samples.items()}
    ratio = results["ipython profile create --parallel"]["median"] / results["kit init"]["median"]
    for key, value in results.items():
        print(f"{key:36s} median {value['median'] * 1000:7.0f} ms  (min {value['min'] * 1000:.0f}, max {value['max'] * 1000:.0f})")
    print(f"ipython profile create / kit init: {ratio:.2f}x; config lines: kit {kit_lines}, ipython {ipy_lines}")
    write("cli_startup", {"repeat": args.repeat, "results": results, "ratio_ipython_over_kit_init": ratio,
                          "config_lines": {"kit": kit_lines, "ipython_profile_create": ipy_lines}}, args.json)  # fmt: skip


if __name__ == "__main__":
    main()
