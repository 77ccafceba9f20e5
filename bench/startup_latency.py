"""Start-up latency of the `gen` console script, end to end in fresh processes: `gen --help` and
`gen sample --n 16` (medians of 5; targets: under 0.5 s and under 3 s on a CPU).

    python bench/startup_latency.py -r runs/digits     # a trained run to sample from
    python bench/startup_latency.py                    # trains a tiny run first
    python bench/startup_latency.py --smoke            # one of each
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The console script of this Python's environment, as a user runs it; else the module.
_SCRIPT = Path(sys.executable).with_name("gen")
GEN = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "gencore"]


def seconds(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run([*GEN, *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--run", type=Path, help="run to sample from (default: train a tiny one)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="one timing of each")
    args = parser.parse_args()
    repeats = 1 if args.smoke else args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run = args.run.resolve() if args.run else work / "tiny"
        if args.run is None:
            subprocess.run([*GEN, "-q", "train", "images", "--epochs", "1", "--width", "8", "--limit", "200",
                            "--checkpoint-every", "0", "-o", str(run)], cwd=work, check=True, env={**os.environ})
        seconds(["--help"], work)  # warm the file cache once, like any second use
        helps = [seconds(["--help"], work) for _ in range(repeats)]
        samples = [seconds(["-q", "sample", "-r", str(run), "--n", "16", "-o", str(work / f"s{i}")], work)
                   for i in range(repeats)]
    print(f"{GEN[-1]}; {os.cpu_count()} CPUs; medians of {repeats}")
    print(f"gen --help: {statistics.median(helps):.2f} s (target < 0.5 s)  [{' '.join(f'{t:.2f}' for t in helps)}]")
    print(f"gen sample --n 16: {statistics.median(samples):.2f} s (target < 3 s on a CPU)  "
          f"[{' '.join(f'{t:.2f}' for t in samples)}]")


if __name__ == "__main__":
    main()
