"""CPU threads for training: `gen --threads N` against gen's default, paired in one run.

    python bench/threads.py                     # 1 thread, every core, and the default; 5 paired repeats
    python bench/threads.py --repeats 3 --epochs 4

Each repeat trains the default digits VAE for a few epochs once per setting, in turn, in fresh
processes, and reads the training samples/s of the epochs after the first from metrics.jsonl.
It prints medians, each setting's ratio to one thread within the same repeat (so the load other
processes put on the machine at that moment cancels), the CPU seconds spent, and the 1-minute
load average at the start of each repeat.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gencore.threads import idle_cpus


def train_rate(threads: int | None, epochs: int, work: Path, extra: list[str]) -> tuple[float, float]:
    """(median samples/s of epochs 2.., CPU seconds) of one short `gen train images`."""
    out = work / f"run-{threads}-{time.perf_counter_ns()}"
    flags = ["--threads", str(threads)] if threads else []
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "gencore", "-q", *flags, "train", "images", "--epochs", str(epochs),
                    "--checkpoint-every", "0", *extra, "-o", str(out)], check=True, env=env, cwd=work)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["samples_per_s"] for r in rows if r.get("event") == "epoch"][1:]
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return statistics.median(rates), cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--smoke", action="store_true", help="one repeat of 2 epochs on 300 digits")
    args = parser.parse_args()
    repeats, epochs = (1, 2) if args.smoke else (args.repeats, args.epochs)
    extra = ["--limit", "300"] if args.smoke else []
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    settings = {"1 thread": 1, f"{cores} threads (every core)": cores, "default (--threads unset)": None}
    rates = {name: [] for name in settings}
    cpu = {name: [] for name in settings}
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            loads.append(f"{os.getloadavg()[0]:.1f} (default: {idle_cpus()})")
            for name, threads in settings.items():
                rate, seconds = train_rate(threads, epochs, Path(tmp), extra)
                rates[name].append(rate)
                cpu[name].append(seconds)
    print(f"{cores} usable CPUs; {repeats} repeats of {epochs} epochs; 1-minute load average at each repeat (the thread count the default chose): "
          f"{', '.join(loads)}")
    print("| threads | samples/s (median) | ratio to 1 thread, same repeat (median) | CPU s per run (median) |")
    print("|---|---|---|---|")
    for name in settings:
        ratio = statistics.median(r / one for r, one in zip(rates[name], rates["1 thread"]))
        print(f"| {name} | {statistics.median(rates[name]):,.0f} | {ratio:.2f} | {statistics.median(cpu[name]):.1f} |")


if __name__ == "__main__":
    main()
