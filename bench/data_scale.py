"""Data at scale: `gen train images` on large folders of 64x64 RGB PNGs, today's in-memory loader
against the decoded-data cache (gencore/datacache.py), cold (cache built by the run) and warm.

Per run: peak RSS (the kernel's high-water mark of resident pages, VmHWM, which counts mapped
file pages too; from wait4's ru_maxrss), peak PSS (sampled from /proc/PID/smaps_rollup every
second, summed over the processes of a torchrun launch), the time until the training step is
announced (the line after data loading, the split and the model set-up), the whole command's
wall and CPU time, and the epoch's samples/s from metrics.jsonl.

    python bench/scale_data.py /work/scale-data/20k 20000        # the synthetic folders, once
    python bench/data_scale.py commands /work/scale-data/20k --loader --width 8 --latent 8
    python bench/data_scale.py ratio /work/scale-data/20k          # paired samples/s, in memory
    python bench/data_scale.py ddp /work/scale-data/20k --width 8 --latent 8    # 1 process, then 2 ranks

`ratio` trains the same model on the same batches read from an in-memory float32 tensor (today)
and from the cache, in alternating rounds; the median of the per-round ratios is the figure.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of `pid` so far, from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def family(pid: int) -> list[int]:
    """`pid` and all its descendants (torchrun's ranks)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            children = []
        todo.extend(int(c) for c in children)
    return out


def measure(args: list[str], cwd: Path, env: dict, command: list[str] | None = None, launcher: bool = False,
            stop_after: float | None = None) -> dict:
    """Run `python -m gencore ARGS` (or `command`); its peak RSS and PSS, time to the training
    step, wall and CPU."""
    started = time.perf_counter()
    # A shell's background job ignores SIGINT, and Python then ignores Ctrl-C: restore it.
    proc = subprocess.Popen(command or [sys.executable, "-m", "gencore", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first_step = {}
    peaks = {"pss_kib": 0, "rank_pss_kib": {}}
    lines: list[str] = []

    def read_stderr():
        for line in proc.stderr:
            lines.append(line)
            if "training step:" in line and "t" not in first_step:
                first_step["t"] = time.perf_counter() - started
                first_step["cpu"] = cpu_seconds(proc.pid)
                if stop_after is not None:  # Ctrl-C: the run checkpoints and exits 130
                    threading.Timer(stop_after, proc.send_signal, args=(signal.SIGINT,)).start()

    def sample():
        while proc.poll() is None:
            pids = family(proc.pid)
            ranks = [p for p in pids if p != proc.pid] if launcher else pids  # the ranks, not torchrun
            values = {p: pss_kib(p) for p in ranks}
            peaks["pss_kib"] = max(peaks["pss_kib"], sum(values.values()))
            for p, v in values.items():
                peaks["rank_pss_kib"][p] = max(peaks["rank_pss_kib"].get(p, 0), v)
            time.sleep(1.0)  # smaps_rollup walks the page tables: not free with GBs mapped

    reader, sampler = threading.Thread(target=read_stderr), threading.Thread(target=sample)
    reader.start()
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    reader.join()
    sampler.join()
    if proc.returncode != 0 and not (stop_after is not None and proc.returncode == 130):
        raise RuntimeError(f"gen {' '.join(args)} failed:\n{''.join(lines[-20:])}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "first_step_s": first_step.get("t"),
            "first_step_cpu_s": first_step.get("cpu"),
            "peak_rss_mib": usage.ru_maxrss / 1024, "peak_pss_mib": peaks["pss_kib"] / 1024,
            "rank_peak_pss_mib": sorted(v / 1024 for v in peaks["rank_pss_kib"].values()),
            "stderr_tail": "".join(lines[-4:])}


def samples_per_s(run: Path) -> float | None:
    if not (run / "metrics.jsonl").exists():
        return None
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in rows if r.get("event") == "epoch"]
    return epochs[-1]["samples_per_s"] if epochs else None


def commands(data: Path, train_args: list[str], loader: bool, work: Path, env: dict,
             stop_after: float | None = None, cold_stop_after: float | None = None) -> list[dict]:
    """Today's loader (if asked), then the cache cold (removed first) and warm; each stopped with
    Ctrl-C `stop_after` seconds into training when given (whole commands otherwise), the cold
    one `cold_stop_after` seconds in when that is given."""
    from gencore.datacache import data_root, read_manifest

    rows = []
    plan = ([("loader", "off")] if loader else []) + [("cache cold", "on"), ("cache warm", "on")]
    if cold_stop_after == 0:  # --cold-stop-after 0: the warm run only, on the cache already there
        plan = [("cache warm", "on")]
    for label, cache in plan:
        if label == "cache cold":  # this folder's caches only
            for old in data_root().glob("images-*"):
                if (read_manifest(old) or {}).get("root") == str(data.resolve()):
                    shutil.rmtree(old)
        out = work / label.replace(" ", "-")
        shutil.rmtree(out, ignore_errors=True)
        args = ["--threads", env["OMP_NUM_THREADS"], "train", "images", "--data", str(data), "--cache", cache,
                "--epochs", "1", *train_args, "-o", str(out)]
        stop = cold_stop_after if label == "cache cold" and cold_stop_after is not None else stop_after
        row = {"data": data.name, "path": label, "command": "gen " + " ".join(args), "stop_after_s": stop,
               **measure(args, work, env, stop_after=stop)}
        row["samples_per_s"] = samples_per_s(out)
        stopped = re.search(r"interrupted at step (\d+)", row["stderr_tail"])
        row["steps"] = int(stopped.group(1)) if stopped else None
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "stderr_tail"}), flush=True)
    return rows


def ratio(data: Path, rounds: int, steps: int, batch: int, width: int) -> dict:
    """Paired, interleaved samples/s of one training loop fed from memory and from the cache."""
    import torch

    from gencore.models.autoencoder import AutoEncoder
    from gencore.registry import get_domain
    from gencore.training.data import load

    domain = get_domain("images")
    cached = load(domain, str(data), {}, "on")
    memory = cached.items.to()  # the same items as today's loader gives (tests/test_datacache.py)
    n = memory.shape[0]
    spec = {"arch": "vae", "item_kind": "grid2d", "item_shape": list(memory.shape[1:]), "latent_dim": 8,
            "width": width, "hidden": 256, "cond_dim": 0, "likelihood": "bernoulli", "conditioning": "film"}
    try:
        model = AutoEncoder(spec)
    except Exception:  # noqa: BLE001 -- the spec keys of this version
        from gencore.archs import get_arch
        from gencore.training.settings import TrainSettings

        arch = get_arch("vae")
        settings = arch.resolve(TrainSettings(width=width, latent_dim=8), cached, 1, "cpu", 1)
        model = arch.build(arch.model_spec(settings, cached))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)

    def run(source) -> float:
        order = torch.randperm(n, generator=generator)
        started = time.perf_counter()
        for s in range(steps):
            x = source[order[s * batch:(s + 1) * batch]].to("cpu")
            loss = model.losses(x, x, None)["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return steps * batch / (time.perf_counter() - started)

    run(memory)  # warm-up
    ratios = []
    for r in range(rounds):
        first, second = (memory, cached.items) if r % 2 == 0 else (cached.items, memory)
        a, b = run(first), run(second)
        mem, cache = (a, b) if r % 2 == 0 else (b, a)
        ratios.append(cache / mem)
        print(f"round {r + 1}: memory {mem:.0f} samples/s, cache {cache:.0f} samples/s, ratio {cache / mem:.3f}",
              flush=True)
    return {"data": data.name, "rounds": rounds, "steps": steps, "batch": batch, "width": width,
            "ratios": ratios, "median_ratio": statistics.median(ratios)}


def ddp(data: Path, train_args: list[str], work: Path, env: dict) -> list[dict]:
    """`gen train images` as one process, then as two gloo ranks of torchrun (`--nproc 2`), on
    the same warm cache (built first, outside the measured runs): peak PSS, summed over the
    ranks, and its ratio to the one process's."""
    from gencore.registry import get_domain
    from gencore.training.data import load

    load(get_domain("images"), str(data), {}, "on")  # warm: neither measured run builds it
    rows = []
    for nproc in (1, 2):
        out = work / f"ddp-{nproc}"
        shutil.rmtree(out, ignore_errors=True)
        args = ["--threads", env["OMP_NUM_THREADS"], "train", "images", "--data", str(data), "--cache", "on",
                "--epochs", "1", *train_args, "-o", str(out)] + (["--nproc", "2"] if nproc == 2 else [])
        row = {"data": data.name, "processes": nproc, "command": "gen " + " ".join(args),
               **measure(args, work, {**env, "GLOO_SOCKET_IFNAME": "lo"}, launcher=nproc == 2)}
        row["samples_per_s"] = samples_per_s(out)
        if nproc == 2:
            row["pss_ratio_to_one_process"] = row["peak_pss_mib"] / rows[0]["peak_pss_mib"]
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "stderr_tail"}), flush=True)
    return rows


def read_epoch(data: Path, batch: int) -> None:
    """One rank (or the only process) of `ddp`: open the cache as training does (local rank 0
    checks it, the others wait for it), take this rank's share of a shuffled epoch and read every
    batch of it from the shards, converted to float32 as training's batches are."""
    import torch
    from torch.utils.data import DistributedSampler

    from gencore import distributed
    from gencore.registry import get_domain
    from gencore.training.data import prepare

    dist = distributed.from_env()
    distributed.init(dist, torch.device("cpu"))
    data_ = prepare(get_domain("images"), str(data), {}, limit=None, seed=0, cache="on", dist=dist)
    sampler = DistributedSampler(range(len(data_.items)), num_replicas=dist.world, rank=dist.rank, seed=0)
    order = torch.tensor(list(iter(sampler)))
    for start in range(0, len(order), batch):
        x = data_.items[order[start:start + batch]].to("cpu")
        assert x.dtype == torch.float32
    print("training step: (read the epoch)", file=sys.stderr, flush=True)
    distributed.barrier(dist)
    distributed.shutdown(dist)


def ddp_read(data: Path, work: Path, env: dict, batch: int) -> list[dict]:
    """Peak PSS of one process against two gloo ranks of torchrun, each reading its share of an
    epoch from the same warm cache."""
    rows = []
    me = str(Path(__file__).resolve())
    for nproc in (1, 2):
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                   me, "read", str(data), "--batch", str(batch)] if nproc == 2 else \
            [sys.executable, me, "read", str(data), "--batch", str(batch)]
        row = {"data": data.name, "processes": nproc, "command": " ".join(command),
               **measure([], work, {**env, "GLOO_SOCKET_IFNAME": "lo"}, command, launcher=nproc == 2)}
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "stderr_tail"}), flush=True)
    return rows


def finish_time(data: Path, run: Path, work: Path) -> dict:
    """CPU and wall seconds of the end-of-run work (code statistics, weights, previews, domain
    metrics) of a trained 64x64 RGB run, against the whole cached corpus `data`: the work is
    capped (gencore/training/finish.py), so it should not grow with the corpus."""
    import torch

    from gencore.api import load_run
    from gencore.registry import get_domain
    from gencore.runconfig import RunConfig
    from gencore.storage import read_json
    from gencore.training.data import prepare
    from gencore.training.finish import finish_autoencoder
    from gencore.training.settings import TrainSettings

    copy = work / "finish-run"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(run, copy)
    config = RunConfig.from_json(read_json(copy / "config.json", "run config"), copy)
    domain = get_domain("images")
    corpus = prepare(domain, str(data), {}, limit=None, seed=0, cache="on")
    model = load_run(copy).model().eval()
    started, cpu = time.perf_counter(), time.process_time()
    metrics = finish_autoencoder(copy, domain, corpus, config, model, TrainSettings.from_json(config.train))
    return {"data": data.name, "items": len(corpus.items), "threads": torch.get_num_threads(),
            "finish_cpu_s": time.process_time() - cpu, "finish_wall_s": time.perf_counter() - started,
            "metrics": metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("commands", "ratio", "ddp", "ddp-read", "read", "finish"))
    parser.add_argument("--run", type=Path, default=None, help="finish: a trained 64x64 RGB run, e.g. --run runs/a")
    parser.add_argument("data", type=Path, help="a folder from bench/scale_data.py, e.g. /work/scale-data/20k")
    parser.add_argument("--loader", action="store_true", help="also run today's in-memory loader (--cache off)")
    parser.add_argument("--threads", default="1", help="OMP threads per run, e.g. --threads 1")
    parser.add_argument("--rounds", type=int, default=5, help="ratio: paired rounds, e.g. --rounds 5")
    parser.add_argument("--steps", type=int, default=30, help="ratio: steps per round, e.g. --steps 30")
    parser.add_argument("--batch", type=int, default=128, help="ratio: batch size, e.g. --batch 128")
    parser.add_argument("--work", type=Path, default=None, help="keep the runs here, e.g. --work /tmp/scale")
    parser.add_argument("--stop-after", type=float, default=None,
                        help="commands: Ctrl-C each run this many seconds into training, e.g. --stop-after 120")
    parser.add_argument("--cold-stop-after", type=float, default=None,
                        help="commands: Ctrl-C the cold run this many seconds into training instead "
                             "(0: no cold run), e.g. --cold-stop-after 15")
    parser.add_argument("--log", type=Path, default=None, help="append the JSON results here")
    args, train_args = parser.parse_known_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="data-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": args.threads, "NO_COLOR": "1"}
    if args.what == "commands":
        result = commands(args.data, train_args, args.loader, work, env, args.stop_after, args.cold_stop_after)
    elif args.what == "ratio":
        width = int(train_args[train_args.index("--width") + 1]) if "--width" in train_args else 32
        result = ratio(args.data, args.rounds, args.steps, args.batch, width)
        print(json.dumps(result))
    elif args.what == "finish":
        result = finish_time(args.data, args.run, work)
        print(json.dumps(result))
    elif args.what == "read":
        return read_epoch(args.data, args.batch)
    elif args.what == "ddp-read":
        result = ddp_read(args.data, work, env, args.batch)
    else:
        result = ddp(args.data, train_args, work, env)
    if args.log:
        with open(args.log, "a") as fh:
            fh.write(json.dumps({"bench": args.what, "argv": sys.argv[1:], "result": result}) + "\n")


if __name__ == "__main__":
    main()
