"""Wall time of `gen train` in 1 process against N processes under torchrun (DDP), on the same
total work (same data, epochs and global batch), in one run.

    python bench/ddp_scaling.py --nproc 2 --epochs 10 --repeats 3
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def timed_train(extra: list[str], epochs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "gencore", "-q", "train", "images", "--epochs", str(epochs),
                   "--patience", str(epochs), "--checkpoint-every", "0", "-o", os.path.join(tmp, "run"), *extra]
        start = time.perf_counter()
        subprocess.run(command, check=True, cwd=tmp, env={**os.environ, "GLOO_SOCKET_IFNAME": "lo"})
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    one, many = [], []
    for _ in range(args.repeats):
        one.append(timed_train([], args.epochs))
        many.append(timed_train(["--nproc", str(args.nproc)], args.epochs))
    t1, tn = statistics.median(one), statistics.median(many)
    print(f"{os.cpu_count()} CPUs, digits, {args.epochs} epochs, global batch 64, medians of {args.repeats}")
    print(f"1 process: {t1:.1f} s   {args.nproc} processes: {tn:.1f} s   speed-up {t1 / tn:.2f}x")


if __name__ == "__main__":
    main()
