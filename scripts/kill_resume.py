"""Crash-safety check: SIGKILL `gen train` at seeded random points, resume it each time, and
compare the result with an uninterrupted run of the same seed, bit for bit.

Half the kills wait a random number of steps and a random fraction of a step; the other half
wait for a checkpoint folder to be staged (`checkpoints/.step-N.partial`) and kill the writer
right then. After every kill each remaining checkpoint must load, and at the end the weights
and the last train state must equal the uninterrupted run's byte for byte.

    python scripts/kill_resume.py --kills 20 --seed 0

tests/test_kill_resume.py runs the same harness with 5 kills.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

STEPS_PER_EPOCH = 12  # --limit 200 leaves 180 training items: 12 batches of 16
TRAIN = ["train", "images", "--width", "8", "--latent", "4", "--limit", "200", "--batch-size", "16",
         "--checkpoint-every", "1", "--keep-checkpoints", "3", "--patience", "1000", "--seed", "3"]
WEIGHTS = ("model.safetensors", "encoder.safetensors", "decoder.safetensors")
POLL_S = 0.001
LIFE_TIMEOUT_S = 300


@dataclass
class Summary:
    kills: int = 0
    mid_write: int = 0  # kills that left a staged checkpoint or a temp file behind
    checkpoints_checked: int = 0
    corrupt: list[str] = field(default_factory=list)
    lives: list[str] = field(default_factory=list)
    identical: dict[str, bool] = field(default_factory=dict)

    @property
    def bitwise_equal(self) -> bool:
        return bool(self.identical) and all(self.identical.values())

    def text(self) -> str:
        same = ", ".join(f"{name} {'equal' if ok else 'DIFFERENT'}" for name, ok in self.identical.items())
        return (f"{self.kills} SIGKILLs, {self.mid_write} during a checkpoint or weights write; "
                f"{self.checkpoints_checked} checkpoint loads after kills, {len(self.corrupt)} corrupt; "
                f"final vs uninterrupted (every tensor byte for byte): {same}")


def environment() -> dict[str, str]:
    # One thread in every process: the same kernels split their sums the same way each time.
    return {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}


def launch(args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as fh:
        return subprocess.Popen([sys.executable, "-m", "gencore", *args], cwd=cwd, env=environment(),
                                stdout=fh, stderr=fh)


def latest_step(run: Path) -> int:
    steps = [int(p.name[5:]) for p in _entries(run / "checkpoints") if p.name.startswith("step-")]
    return max(steps, default=-1)


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except FileNotFoundError:
        return []


def staged(run: Path) -> bool:
    return any(p.name.endswith(".partial") for p in _entries(run / "checkpoints"))


def leftovers(run: Path) -> list[str]:
    """What a writer killed mid-write leaves: staged or set-aside checkpoints, atomic temp files."""
    found = [p.name for p in _entries(run / "checkpoints") if p.name.startswith(".step-")]
    found += [p.name for p in _entries(run) if p.name.endswith(".tmp")]
    return found


def check_checkpoints(run: Path) -> tuple[int, list[str]]:
    """Load every remaining checkpoint the way `--resume` does; return (count, problems)."""
    import numpy as np
    import torch

    from gencore.errors import GenError
    from gencore.models.autoencoder import AutoEncoder
    from gencore.storage import read_json
    from gencore.training import checkpoint

    config = read_json(run / "config.json", "run config")
    problems, count = [], 0
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng():
        for folder in checkpoint.list_checkpoints(run):
            model = AutoEncoder(config["model"])
            optimizer = torch.optim.Adam(model.parameters())
            try:
                checkpoint.load(folder, config["domain"], model, optimizer)
                count += 1
            except GenError as exc:
                problems.append(exc.line())
    random.setstate(py_state)
    np.random.set_state(np_state)
    return count, problems


def one_life(args: list[str], work: Path, run: Path, rng: random.Random, at_write: bool, log: Path) -> str:
    """Start `gen ARGS`, let it make progress, SIGKILL it; return what happened."""
    start = latest_step(run)
    proc = launch(args, work, log)
    deadline = time.monotonic() + LIFE_TIMEOUT_S
    if at_write:
        writes_to_skip = rng.randint(1, 3)
        seen = False
        while proc.poll() is None and time.monotonic() < deadline:
            if staged(run):
                if not seen and latest_step(run) > start:
                    writes_to_skip -= 1
                    if writes_to_skip <= 0:
                        break
                seen = True
            else:
                seen = False
            time.sleep(POLL_S)
        what = "at a staged checkpoint"
    else:
        target, fraction = start + rng.randint(1, 4), rng.random()
        while proc.poll() is None and latest_step(run) < target and time.monotonic() < deadline:
            time.sleep(POLL_S)
        time.sleep(0.1 * fraction)  # a random moment inside the next step (about 0.1 s)
        what = f"{target - max(start, 0)} steps + {fraction:.2f} of a step in"
    if proc.poll() is not None:
        return f"finished by itself (exit {proc.returncode})"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return f"killed {what}"


def kill_and_resume(work: Path, kills: int, seed: int, epochs: int, data: list[str] | None = None) -> Summary:
    """`data`: extra training arguments, e.g. ["--data", FOLDER, "--cache", "on"] to train on a
    folder read through the decoded-data cache."""
    work.mkdir(parents=True, exist_ok=True)
    summary = Summary()
    train = [*TRAIN, *(data or []), "--epochs", str(epochs)]
    reference, run = work / "uninterrupted", work / "killed"
    for folder in (reference, run):
        shutil.rmtree(folder, ignore_errors=True)
    log = work / "gen.log"
    done = subprocess.run([sys.executable, "-m", "gencore", *train, "-o", str(reference)], cwd=work,
                          env=environment(), capture_output=True, text=True, timeout=LIFE_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"the uninterrupted run failed: {done.stderr[-2000:]}")

    rng = random.Random(seed)
    args = [*train, "-o", str(run)]
    while summary.kills < kills:
        outcome = one_life(args, work, run, rng, at_write=summary.kills % 2 == 1, log=log)
        summary.lives.append(outcome)
        if not outcome.startswith("killed"):
            break  # training ran out of steps before the kills did
        summary.kills += 1
        if leftovers(run):
            summary.mid_write += 1
        count, problems = check_checkpoints(run)
        summary.checkpoints_checked += count
        summary.corrupt += problems
        args = ["train", "images", "--resume", str(run)]
    final = subprocess.run([sys.executable, "-m", "gencore", "train", "images", "--resume", str(run)], cwd=work,
                           env=environment(), capture_output=True, text=True, timeout=LIFE_TIMEOUT_S)
    if final.returncode != 0:
        raise RuntimeError(f"the last resume failed: {final.stderr[-2000:]}")
    last = f"checkpoints/step-{latest_step(reference):08d}/train_state.safetensors"
    for name in (*WEIGHTS, last):
        summary.identical[name] = tensors_of(run / name) == tensors_of(reference / name)
    summary.identical["metrics.jsonl epoch rows"] = epoch_rows(run) == epoch_rows(reference)
    return summary


def tensors_of(path: Path) -> tuple[dict, dict]:
    """Metadata and every tensor's dtype, shape and raw bytes. (The files' bytes may differ: the
    safetensors header lists the metadata in hash order, which varies between processes.)"""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        tensors = {k: (str(t.dtype), tuple(t.shape), t.numpy().tobytes())
                   for k in fh.keys() for t in [fh.get_tensor(k)]}
        return fh.metadata(), tensors


def epoch_rows(run: Path) -> list[dict]:
    """The per-epoch metrics, less the wall-clock throughput."""
    from gencore.storage import read_jsonl

    return [{k: v for k, v in row.items() if k != "samples_per_s"}
            for row in read_jsonl(run / "metrics.jsonl") if row.get("event") == "epoch"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs to deliver, e.g. --kills 20")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill points, e.g. --seed 1")
    parser.add_argument("--work", type=Path, default=None, help="keep the runs here, e.g. --work /tmp/kills")
    args = parser.parse_args()
    # About 4 steps per life; the epochs leave room for every kill.
    epochs = max(3, -(-(6 * args.kills + 6) // STEPS_PER_EPOCH))
    work = args.work or Path(tempfile.mkdtemp(prefix="gen-kill-"))
    started = time.perf_counter()
    summary = kill_and_resume(work, args.kills, args.seed, epochs)
    for i, life in enumerate(summary.lives, 1):
        print(f"life {i}: {life}")
    for problem in summary.corrupt:
        print(f"corrupt: {problem}")
    print(summary.text())
    print(f"{epochs} epochs of {STEPS_PER_EPOCH} steps, {time.perf_counter() - started:.0f} s, runs in {work}")
    return 0 if summary.kills == args.kills and not summary.corrupt and summary.bitwise_equal else 1


if __name__ == "__main__":
    sys.exit(main())
