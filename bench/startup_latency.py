"""Start-up latency of the `gen` console script, end to end in fresh processes: `gen --help`,
`gen sample --n 16`, and the first commands of a new user on the shipped runs, in a folder with no
./runs (medians of 5; targets: under 0.5 s, under 3 s and under 5 s on a CPU).

    python bench/startup_latency.py -r runs/digits     # a trained run to sample from
    python bench/startup_latency.py                    # trains a tiny run first
    python bench/startup_latency.py --smoke            # one of each
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gencore.runs import pretrained_runs

# A new user's first commands (issue 18), on the shipped runs
FIRST_COMMANDS = {
    "digits": ["-q", "sample", "-r", "pretrained:digits", "--class", "7", "--n", "16"],
    "smb": ["-q", "sample", "-r", "pretrained:smb", "--class", "coin", "--n", "4", "--width", "150", "--playable"],
    "chorales": ["-q", "sample", "-r", "pretrained:chorales", "--class", "minor", "--n", "4"],
}

# The console script of this Python's environment, as a user runs it; else the module.
_SCRIPT = Path(sys.executable).with_name("gen")
GEN = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "gencore"]


def seconds(args: list[str], cwd: Path) -> float:
    return timed(args, cwd)[0]


def timed(args: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one `gen ARGS`; CPU time tells a loaded machine apart."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([*GEN, *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--run", type=Path, help="run to sample from (default: train a tiny one)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="one timing of each")
    parser.add_argument("--shipped-only", action="store_true", help="only the first commands on the shipped runs")
    args = parser.parse_args()
    repeats = 1 if args.smoke else args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run = args.run.resolve() if args.run else work / "tiny"
        if args.run is None and not args.shipped_only:
            subprocess.run([*GEN, "-q", "train", "images", "--epochs", "1", "--width", "8", "--limit", "200",
                            "--checkpoint-every", "0", "-o", str(run)], cwd=work, check=True, env={**os.environ})
        seconds(["--help"], work)  # warm the file cache once, like any second use
        helps = [] if args.shipped_only else [seconds(["--help"], work) for _ in range(repeats)]
        samples = [] if args.shipped_only else [
            seconds(["-q", "sample", "-r", str(run), "--n", "16", "-o", str(work / f"s{i}")], work)
            for i in range(repeats)]
        fresh = work / "fresh"  # no ./runs here
        fresh.mkdir()
        shipped = {" ".join(args): [timed([*args, "-o", str(work / f"p{i}")], fresh) for i in range(repeats)]
                   for name, args in FIRST_COMMANDS.items() if name in pretrained_runs()}
    print(f"{GEN[-1]}; {os.cpu_count()} CPUs; medians of {repeats}; 1-minute load average {os.getloadavg()[0]:.1f}")
    if helps:
        print(f"gen --help: {statistics.median(helps):.2f} s (target < 0.5 s)  [{' '.join(f'{t:.2f}' for t in helps)}]")
        print(f"gen sample --n 16: {statistics.median(samples):.2f} s (target < 3 s on a CPU)  "
              f"[{' '.join(f'{t:.2f}' for t in samples)}]")
    for command, times in shipped.items():
        walls, cpus = [t[0] for t in times], [t[1] for t in times]
        print(f"gen {command.removeprefix('-q ')}: {statistics.median(walls):.2f} s wall (target < 5 s on an idle "
              f"CPU), {statistics.median(cpus):.2f} s CPU  [{' '.join(f'{t:.2f}' for t in walls)}]")
    missing = [name for name in FIRST_COMMANDS if name not in pretrained_runs()]
    if missing:
        print(f"not shipped, not timed: {', '.join('pretrained:' + n for n in missing)}")


if __name__ == "__main__":
    main()
