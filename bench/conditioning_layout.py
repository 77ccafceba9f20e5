"""How the class condition enters the networks (issue 24): format_version 1's concatenated class
planes against a per-class channel shift ("bias", the default since format_version 2) and FiLM.

    python bench/conditioning_layout.py --jobs 3             # choosing set: built-in 8x8 digits, seeds 0-2
    python bench/conditioning_layout.py --resize 28,28 --epochs 20 --layouts concat,bias   # confirmation set
    python bench/conditioning_layout.py --sampling-only      # decoder-only sampling speed alone
    python bench/conditioning_layout.py --smoke              # every path once, in seconds

For each layout and seed it trains gen's default VAE on the digits through `gen train images`
(no other flags unless given) and reads the run's final metrics: validation -ELBO, class control
(an RBF SVM trained on real digits judges the samples), diversity (within-class spread of samples
over that of real digits) and active units. Then it times decoder-only sampling of each layout in
turns, in the same process (gen's bulk path at its automatic precision, uint8 out), and counts
the FLOPs per decoded item.
"""
from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import torch

from gencore.models import CONDITIONINGS
from gencore.models.autoencoder import AutoEncoder, model_spec
from gencore.storage import read_jsonl

METRICS = ("val_neg_elbo", "class_control", "diversity_ratio", "active_units")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def train(layout: str, seed: int, extra: list[str], folder: Path, threads: int) -> dict:
    """One `gen train images` run with `layout`; its final metrics and CPU time (of this process:
    with --jobs, each run has its own)."""
    from typer.testing import CliRunner

    from gencore.cli import app
    from gencore.models import autoencoder

    torch.set_num_threads(threads)
    # the autoencoder arch looks model_spec up in its module when it builds a run's spec
    autoencoder.model_spec = functools.partial(model_spec, conditioning=layout)
    started, cpu = time.perf_counter(), cpu_seconds()
    out = folder / f"{layout}-{seed}"
    result = CliRunner().invoke(app, ["-q", "--seed", str(seed), "train", "images", *extra, "-o", str(out)],
                                catch_exceptions=False)
    autoencoder.model_spec = model_spec
    if result.exit_code != 0:
        sys.exit(f"gen train failed for {layout} seed {seed}: {result.stderr.strip()[-500:]}")
    assert json.loads((out / "config.json").read_text())["model"]["conditioning"] == layout
    rows = read_jsonl(out / "metrics.jsonl")
    final = next(r for r in rows if r.get("event") == "final")
    epochs = sum(r.get("event") == "epoch" for r in rows)
    return {"layout": layout, "seed": seed, "epochs": epochs, "seconds": time.perf_counter() - started,
            "cpu_seconds": cpu_seconds() - cpu, **{k: final.get(k) for k in METRICS}}


def sampling(layouts: list[str], shape: tuple[int, ...], width: int, batch: int, repeats: int) -> dict[str, dict]:
    """Decoder-only samples/s of each layout (gen's BulkDecoder, automatic precision, uint8 out),
    timed in turns so that every layout meets the same load; and FLOPs per decoded item."""
    from torch.utils.flop_counter import FlopCounterMode

    from gencore.sampling import BulkDecoder

    device = torch.device("cpu")
    z = torch.randn(batch, 16, generator=torch.Generator().manual_seed(0))
    c = torch.eye(10)[torch.arange(batch) % 10]
    bulks, flops = {}, {}
    for layout in layouts:
        torch.manual_seed(0)
        decoder = AutoEncoder(model_spec("vae", "grid2d", shape, "bernoulli", 10, latent_dim=16, width=width,
                                         conditioning=layout)).decoder.eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            decoder(z[:8], c[:8])
        flops[layout] = counter.get_total_flops() / 8
        bulks[layout] = BulkDecoder(copy.deepcopy(decoder), device, "auto", chunk=batch)
    times = {layout: [] for layout in layouts}
    cpu = {layout: [] for layout in layouts}
    for r in range(repeats + 1):  # the first round warms up
        for layout, bulk in bulks.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            for _ in bulk.chunks(z, c, pixels=True):
                pass
            if r:
                times[layout].append(time.perf_counter() - started)
                cpu[layout].append(time.process_time() - cpu_started)
    base, cpu_base = statistics.median(times[layouts[0]]), statistics.median(cpu[layouts[0]])
    # CPU time is what a shared machine's load disturbs least
    return {layout: {"samples_per_s": batch / statistics.median(t), "flops_per_item": flops[layout],
                     "samples_per_cpu_s": batch / statistics.median(cpu[layout]),
                     "precision": "bf16" if bulks[layout].bf16 else "fp32",
                     "speedup_vs_first": base / statistics.median(t),
                     "cpu_speedup_vs_first": cpu_base / statistics.median(cpu[layout]),
                     "paired_speedups": [a / b for a, b in zip(times[layouts[0]], t)]}
            for layout, t in times.items()}


def summarise(rows: list[dict], layouts: list[str]) -> list[str]:
    lines = [f"{'layout':<8} " + " ".join(f"{k:>24}" for k in (*METRICS, "cpu s per run"))]
    stats = {}
    for layout in layouts:
        mine = [r for r in rows if r["layout"] == layout]
        cells = []
        for key in (*METRICS, "cpu_seconds"):
            values = [r[key] for r in mine if r[key] is not None]
            mean = statistics.fmean(values) if values else float("nan")
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            stats[layout, key] = (mean, sd, len(values))
            cells.append(f"{mean:>14.3f} ± {sd:<7.3f}")
        lines.append(f"{layout:<8} " + " ".join(cells))
    first = layouts[0]
    for layout in layouts[1:]:
        diffs = []
        for key in METRICS:
            (m0, s0, n0), (m1, s1, n1) = stats[first, key], stats[layout, key]
            se = ((s0 ** 2) / max(n0, 1) + (s1 ** 2) / max(n1, 1)) ** 0.5
            diffs.append(f"{key} {m1 - m0:+.3f} (±{2 * se:.3f} is 2 standard errors)")
        lines.append(f"{layout} - {first}: " + "; ".join(diffs))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", default=",".join(("concat", "bias", "film")),
                        help="comma-separated, the first is the baseline (concat: format_version 1's)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--resize", help="e.g. 28,28 (the confirmation set); default: the 8x8 digits as they are")
    parser.add_argument("--epochs", type=int, help="gen train --epochs (default: gen's own)")
    parser.add_argument("--train-args", default="", help="more `gen train images` options, e.g. '--width 16'")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the sampling timings (and of "
                        "each run, without --jobs)")
    parser.add_argument("--jobs", type=int, default=1, help="training runs at once, one thread each")
    parser.add_argument("--sample-batch", type=int, default=4096)
    parser.add_argument("--sample-repeats", type=int, default=7)
    parser.add_argument("--sampling-only", action="store_true")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--smoke", action="store_true", help="tiny runs, one seed: checks every path")
    args = parser.parse_args()
    layouts = args.layouts.split(",")
    unknown = set(layouts) - set(CONDITIONINGS)
    if unknown:
        parser.error(f"unknown layouts {sorted(unknown)}; choose from {', '.join(CONDITIONINGS)}")
    torch.set_num_threads(args.threads)
    extra = args.train_args.split()
    if args.resize:
        extra += ["--resize", args.resize]
    if args.epochs:
        extra += ["--epochs", str(args.epochs)]
    if args.smoke:
        args.seeds, args.sample_batch, args.sample_repeats = "0", 256, 1
        extra += ["--epochs", "2", "--limit", "300", "--width", "8", "--checkpoint-every", "0"]
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"conditioning layouts {', '.join(layouts)}; data builtin:digits{' at ' + args.resize if args.resize else ' 8x8'}; "
          f"seeds {seeds}; gen train images {' '.join(extra) or '(defaults)'}; torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs; " + (f"{args.jobs} runs at once, 1 thread each" if args.jobs > 1 else
                                       f"{args.threads} threads") + f"; sampling timed on {args.threads} threads",
          flush=True)
    rows = []
    if not args.sampling_only:
        runs = [(layout, seed) for seed in seeds for layout in layouts]  # seeds outside: each seed's runs meet similar load
        threads = 1 if args.jobs > 1 else args.threads
        with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            for row in pool.map(train, *zip(*runs), [extra] * len(runs), [Path(tmp)] * len(runs),
                                [threads] * len(runs)):
                rows.append(row)
                print(f"{row['layout']:<7} seed {row['seed']}: " + ", ".join(
                    f"{k} {row[k]:.3f}" if isinstance(row[k], float) else f"{k} {row[k]}"
                    for k in ("epochs", *METRICS, "seconds", "cpu_seconds")), flush=True)
        print("\nmean ± standard deviation over seeds:")
        print("\n".join(summarise(rows, layouts)))
    torch.set_num_threads(args.threads)
    shapes = [(1, 8, 8), (1, 28, 28)] if not args.smoke else [(1, 8, 8)]
    speed = {}
    # the default digits decoder, and bench/train_speed.py's (the README's CPU sampling figure)
    for shape, width in ((s, 32 if s[1] == 8 else 16) for s in shapes):
        key = f"{shape[1]}x{shape[2]} width {width}"
        speed[key] = sampling(layouts, shape, width, args.sample_batch, args.sample_repeats)
        for layout, s in speed[key].items():
            paired = ", ".join(f"{p:.2f}" for p in s["paired_speedups"])
            print(f"sampling {key}, batch {args.sample_batch:,}, {s['precision']}: {layout:<7} "
                  f"{s['samples_per_s']:>10,.0f}/s, {s['flops_per_item'] / 1e6:.2f} MFLOP per item; "
                  f"{s['speedup_vs_first']:.2f}x {layouts[0]} (paired: {paired}); per CPU-second "
                  f"{s['samples_per_cpu_s']:,.0f}, {s['cpu_speedup_vs_first']:.2f}x {layouts[0]}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"layouts": layouts, "seeds": seeds, "train_args": extra, "runs": rows,
                                         "sampling": speed, "torch": torch.__version__}, indent=2))


if __name__ == "__main__":
    main()
