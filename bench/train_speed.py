"""Training and sampling speed of gen against plain PyTorch, in one process, on the same data and
model: REFERENCE.md §1's workload, a class-conditional conv VAE on 28x28 digits.

    python bench/train_speed.py               # on the device --device auto picks; medians of 3
    python bench/train_speed.py --smoke       # every path once, on tiny sizes, in seconds
    python bench/train_speed.py --sweep       # then gen at other batches, compile modes, learning rates

It prints, for the plain eager loop (a DataLoader with 2 workers, batch 128, fp32, Adam 1e-3, the
plain ELBO: REFERENCE.md §1's "what most hand-written training loops do"; --workers 0 for none) and
for gen's Trainer at its defaults (KL warm-up and free bits, which keep the latent from collapsing;
the automatic fast path: batch and learning-rate rule, bf16 autocast where it pays, channels_last,
fused Adam, device-resident data, torch.compile on CUDA):
  - training samples/s and their ratio;
  - the time each takes to reach the plain loop's 10-epoch validation negative ELBO;
  - decoder-only sampling samples/s, plain and gen's bulk path;
  - the share of the device's peak arithmetic each reaches (FLOPs counted by torch's
    FlopCounterMode; peak estimated in `device_peak`).
The training data are jittered copies of the held-in digits (a random shift, rotation and scale
each, binarised; no two alike): a corpus of repeated tiles let the plain loop overfit within its
10 epochs, which made the time-to-target ratio depend on when it peaked.
Times are training wall time; the per-epoch validation both loops run is timed apart and left
out; gen's per-epoch checkpoints are counted. Compile warm-up is reported on its own line.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from gencore import console
from gencore.models.autoencoder import AutoEncoder
from gencore.sampling import BulkDecoder
from gencore.training import fastpath
from gencore.training import autoencoder_objective as trainer_module
from gencore.training.autoencoder_objective import evaluate
from gencore.training.trainer import Trainer
from speed_workload import (CLASSES, LATENT, PLAIN_BATCH, PLAIN_EPOCHS, PLAIN_LR, digits_28, gen_run, gen_settings,
                            make_trainer, median_rate, plain_loop, profile_call, spec_for, sync, time_to,
                            timed_evaluate, what_ran)


# -- the sweep: gen's step at other batches, compile modes and learning rates ---------------------
def step_rate(trainer: Trainer, seconds: float = 2.0) -> float:
    """Training samples/s of gen's step as its epoch loop runs it (results read back every
    read_every steps), after warm-up steps (CUDA graphs record on their first calls)."""
    n, batch = trainer.split.train_x.shape[0], trainer.local_batch
    trainer.counters["sums"] = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "items": 0}
    starts = list(range(0, n - batch + 1, batch))
    for i in range(5):
        trainer._step(*trainer._batch(starts[i % len(starts)], batch))
        trainer.pending_steps = 0
        trainer.pending.zero_()
    sync(trainer.device)
    started, steps = time.perf_counter(), 0
    while True:
        trainer._step(*trainer._batch(starts[steps % len(starts)], batch))
        steps += 1
        trainer.step += 1
        if trainer.pending_steps >= trainer.read_every:
            trainer._read_pending()
        if steps % 10 == 0:
            sync(trainer.device)
            if time.perf_counter() - started > seconds:
                break
    trainer._read_pending()
    sync(trainer.device)
    return steps * batch / (time.perf_counter() - started)


def sweep(spec, tx, tc, vx, vc, domain, device, args, target: float, budget_s: float) -> list[dict]:
    """Throughput at each batch:compile-mode of --sweep-steps, then time to `target` for each
    batch:lr of --sweep-tt, in that order until `budget_s` is spent. Compile time is apart."""
    started, rows, main_mode = time.perf_counter(), [], fastpath.CUDA_COMPILE_MODE
    for entry in filter(None, args.sweep_steps.split(",")):
        batch, mode = entry.split(":")
        batch, mode = int(batch), (None if mode == "default" else mode)
        if time.perf_counter() - started > budget_s:
            return rows
        fastpath.CUDA_COMPILE_MODE = mode
        usable = tx.shape[0] // batch * batch  # one batch shape: one compile
        settings = gen_settings(spec, usable, device, 0, 1, args, batch=batch)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            trainer = make_trainer(Trainer, Path(tmp), spec, tx[:usable], tc[:usable], vx, vc, domain, device,
                                   settings)
            build = time.perf_counter() - t0
            rate = step_rate(trainer)
        rows.append({"kind": "throughput", "batch": batch, "mode": mode or "default", "samples_per_s": rate,
                     "compile_s": trainer.compile_seconds, "build_s": build})
        print(f"sweep: batch {batch:>6,} compile mode {mode or 'default':<16} {rate:>12,.0f} samples/s "
              f"(compile {trainer.compile_seconds or 0:.1f} s)", flush=True)
    fastpath.CUDA_COMPILE_MODE = main_mode
    for entry in filter(None, args.sweep_tt.split(",")):
        if time.perf_counter() - started > budget_s:
            break
        batch, lr = entry.split(":")
        trainer, settings = gen_run(spec, tx, tc, vx, vc, domain, device, 0, args.gen_epochs, iter(()), args,
                                    batch=int(batch), lr=float(lr))
        reached = time_to(trainer.history, target)
        rows.append({"kind": "time_to_target", "batch": int(batch), "lr": float(lr), "seconds": reached,
                     "rate": median_rate(trainer.history), "curve": [h["val"] for h in trainer.history]})
        print(f"sweep: batch {batch:>6} lr {lr:<7} " + (f"reached {target:.2f} in {reached:.1f} s" if reached is not None
              else f"best {min(h['val'] for h in trainer.history):.2f}, not reached")
              + f" ({median_rate(trainer.history):,.0f} samples/s; compile {trainer.compile_seconds or 0:.1f} s)",
              flush=True)
    return rows


# -- sampling -------------------------------------------------------------------------------------
def timed(fns: list, device, repeats: int) -> list[float]:
    """Median seconds of each function, called in turn `repeats` times after one warm-up call."""
    times = [[] for _ in fns]
    for r in range(repeats + 1):
        for fn, spent in zip(fns, times):
            sync(device)
            started = time.perf_counter()
            fn()
            sync(device)
            if r:
                spent.append(time.perf_counter() - started)
    return [statistics.median(t) for t in times]


def sampling(spec, device, batch: int, repeats: int, compile: bool, profile: bool = False) -> dict:
    decoder = AutoEncoder(spec).decoder.to(device).eval()
    z = torch.randn(batch, LATENT, generator=torch.Generator().manual_seed(0)).to(device)
    c = torch.eye(CLASSES)[torch.arange(batch) % CLASSES].to(device)

    @torch.inference_mode()
    def plain():
        return torch.sigmoid(decoder(z, c))

    def drain(bulk):
        return lambda: [chunk for chunk in bulk.chunks(z, c, pixels=True)]

    bulk = BulkDecoder(copy.deepcopy(decoder), device, "auto", chunk=batch)
    fns = [plain, drain(bulk)]
    out = {"gen_precision": "bf16" if bulk.bf16 else "fp32"}
    if compile:
        compiled = BulkDecoder(copy.deepcopy(decoder), device, "auto", compile=True, chunk=batch)
        started = time.perf_counter()
        drain(compiled)()
        sync(device)
        out["compile_seconds"] = time.perf_counter() - started
        fns.append(drain(compiled))
        nchw = BulkDecoder(copy.deepcopy(decoder), device, "auto", compile=True, chunk=batch, channels_last=False)
        drain(nchw)()
        fns.append(drain(nchw))
    rates = [batch / t for t in timed(fns, device, repeats)]
    out.update(zip(("plain", "gen", "gen_compiled", "gen_compiled_nchw"), rates), calls=repeats)
    if profile:
        print(profile_call(fns[-1], device, f"gen's sampling of {batch:,} items to uint8"), flush=True)
    return out


# -- the hardware limit ---------------------------------------------------------------------------
def flops_per_sample(spec, device) -> tuple[float, float]:
    """(training FLOPs per sample: forward and backward; decoder forward FLOPs per sample)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = AutoEncoder(spec).to(device)
    x = torch.rand(8, 1, 28, 28, device=device)
    c = torch.eye(CLASSES, device=device)[torch.arange(8) % CLASSES]
    with FlopCounterMode(display=False) as counter:
        model.losses(x, x, c)["loss"].backward()
    train = counter.get_total_flops() / 8
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.decoder(torch.randn(8, LATENT, device=device), c)
    return train, counter.get_total_flops() / 8


def device_peak(device, bf16: bool, override_tflops: float | None) -> tuple[float | None, str]:
    """Peak FLOP/s and how it was estimated. GPUs: REFERENCE.md §1's ~800 TFLOP/s bf16 for
    H100/H200 (about 60 fp32). CPUs: cores x clock x 32 fp32 FLOP per cycle (two 256-bit FMA
    pipes; Zen 4 runs AVX-512 on them), doubled for bf16 on CPUs with AVX-512 BF16."""
    if override_tflops:
        return override_tflops * 1e12, "given by --peak-tflops"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        if any(k in name for k in ("H100", "H200")):
            return (800e12 if bf16 else 60e12), f"{name}: {'800 bf16' if bf16 else '60 fp32'} TFLOP/s"
        return None, f"{name}: unknown peak (pass --peak-tflops)"
    mhz = 0.0
    flags = ""
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("cpu MHz") and not mhz:
                mhz = float(line.split(":")[1])
            if line.startswith("flags") and not flags:
                flags = line
    cores = len(os.sched_getaffinity(0))
    per_cycle = 32 * (2 if bf16 and "avx512_bf16" in flags else 1)
    return cores * mhz * 1e6 * per_cycle, f"{cores} cores x {mhz / 1000:.2f} GHz x {per_cycle} FLOP/cycle"


# -- the report -----------------------------------------------------------------------------------
def cpu_name() -> str:
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--repeats", type=int, default=3, help="paired plain/gen runs; medians are reported")
    parser.add_argument("--train-items", type=int, help="training items per epoch (default 12,000 on CPU, 60,000 on CUDA)")
    parser.add_argument("--val-items", type=int, default=300)
    parser.add_argument("--width", type=int, default=16, help="gen's conv width (16: ~10 MFLOP forward per item)")
    parser.add_argument("--gen-epochs", type=int, help="gen's epoch budget, which its LR schedule spans (default 15 "
                        "on CPU; on CUDA gen's own rule: 34 epochs at batch 1024)")
    parser.add_argument("--gen-batch", type=int, help="gen's batch (default: its automatic rule)")
    parser.add_argument("--gen-lr", type=float, help="gen's peak learning rate (default: its rule)")
    parser.add_argument("--precision", default="auto", help="gen's --precision")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="gen's --compile")
    parser.add_argument("--workers", type=int, default=2, help="plain DataLoader workers (2, as in REFERENCE.md §1)")
    parser.add_argument("--sample-batch", type=int, help="sampling batch (default 65,536 on CUDA, 4,096 on CPU)")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak, if the estimate does not know it")
    parser.add_argument("--profile", action="store_true", help="profile gen's step after the last repeat")
    parser.add_argument("--compile-mode", help="torch.compile mode of gen's CUDA step (default: gen's, "
                        f"{fastpath.CUDA_COMPILE_MODE}; or default, reduce-overhead: CUDA graphs)")
    parser.add_argument("--sweep", action="store_true", help="after the comparison, gen's throughput at other batches "
                        "and compile modes, and its time to the target at other batches and learning rates")
    parser.add_argument("--sweep-steps", default="16384:reduce-overhead,8192:reduce-overhead,4096:reduce-overhead",
                        help="batch:compile-mode pairs for throughput")
    parser.add_argument("--sweep-tt", default="1024:3e-3,2048:3e-3", help="batch:lr pairs for time to target")
    parser.add_argument("--sweep-seconds", type=float, default=150, help="no new sweep entry after this long")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: checks every path in seconds")
    args = parser.parse_args()
    from gencore.devices import resolve_device

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    if args.compile_mode:
        fastpath.CUDA_COMPILE_MODE = None if args.compile_mode == "default" else args.compile_mode
    if args.gen_epochs is None and not cuda:
        args.gen_epochs = 15
    if cuda:
        torch.backends.cudnn.benchmark = True
    console.settings.quiet = True
    plain_epochs_n = PLAIN_EPOCHS
    if args.smoke:
        args.train_items, args.val_items, args.repeats, plain_epochs_n = 256, 32, 1, 2
        args.gen_epochs, args.sample_batch, args.profile = 2, 256, True
        args.sweep, args.sweep_steps, args.sweep_tt = True, "64:default", "64:2e-3"
    train_items = args.train_items or (60_000 if cuda else 12_000)
    workers = 0 if args.smoke else args.workers
    sample_batch = args.sample_batch or (65_536 if cuda else 4_096)
    spec = spec_for(args.width)
    tx, tc, vx, vc, _ = digits_28(train_items, args.val_items, 0)
    from gencore_images import plugin as domain

    trainer_module.evaluate = timed_evaluate
    plain_hist, gen_hist, targets, compile_s, settings, plan, ran = [], [], [], [], None, None, []
    for rep in range(args.repeats):
        plain = []
        partner = plain_loop(spec, tx, tc, vx, vc, device, workers, rep, plain_epochs_n, plain, per_step=not cuda)
        trainer, settings = gen_run(spec, tx, tc, vx, vc, domain, device, rep, args.gen_epochs, partner, args,
                                    profile=args.profile and rep == args.repeats - 1)
        for _ in partner:  # the plain epochs that outlast gen's budget
            pass
        target = plain[-1]["val"]
        plan = trainer.plan
        ran.append(what_ran(trainer.step_fn))
        plain_hist.append(plain)
        gen_hist.append(trainer.history)
        targets.append(target)
        if trainer.compile_seconds is not None:
            compile_s.append(trainer.compile_seconds)
        reached = time_to(trainer.history, target)
        at = next((i + 1 for i, h in enumerate(trainer.history) if h["val"] <= target), None)
        curve = " ".join(f"{h['val']:.1f}" for h in trainer.history)
        plain_curve = " ".join(f"{h['val']:.1f}" for h in plain)
        print(f"repeat {rep + 1}: plain {median_rate(plain):,.0f}/s to {target:.2f} nats in {time_to(plain, target):.1f} s; "
              f"gen {median_rate(trainer.history):,.0f}/s, "
              + (f"reached it in {reached:.1f} s (epoch {at})" if reached is not None
                 else f"best {min(h['val'] for h in trainer.history):.2f} in {len(trainer.history)} epochs")
              + f"; gen's step ran as: {ran[-1]}"
              + f"\n  validation -ELBO by epoch: plain {plain_curve}\n                             gen   {curve}",
              flush=True)
    if trainer.profile:
        print(trainer.profile)
    sweep_rows = (sweep(spec, tx, tc, vx, vc, domain, device, args, statistics.median(targets), args.sweep_seconds)
                  if args.sweep else [])
    trainer_module.evaluate = evaluate
    samp = sampling(spec, device, sample_batch, 1 if args.smoke else 5, compile=cuda and args.compile is not False,
                    profile=args.profile)

    plain_rate = statistics.median(median_rate(h) for h in plain_hist)
    gen_rate = statistics.median(median_rate(h) for h in gen_hist)
    # each repeat's two loops met the same load, so their ratio varies less than either rate
    paired = [median_rate(g) / median_rate(p) for g, p in zip(gen_hist, plain_hist)]
    plain_tt = statistics.median(time_to(h, t) for h, t in zip(plain_hist, targets))
    reached = [time_to(h, t) for h, t in zip(gen_hist, targets)]
    gen_tt = statistics.median(r if r is not None else math.inf for r in reached)
    train_flops, decode_flops = flops_per_sample(spec, device)
    peak32, how32 = device_peak(device, False, args.peak_tflops)
    peak_gen, how_gen = device_peak(device, plan.bf16, args.peak_tflops)
    peak_samp, _ = device_peak(device, samp["gen_precision"] == "bf16", args.peak_tflops)

    def share(rate, flops, peak):
        return f"{100 * rate * flops / peak:.2f}% of peak" if peak else "peak unknown"

    hw = torch.cuda.get_device_name(device) if cuda else f"{cpu_name()}, {len(os.sched_getaffinity(0))} cores"
    print(f"\n{hw}; torch {torch.__version__}, {torch.get_num_threads()} threads; {train_items:,} training items "
          f"(digits 28x28, jittered copies: no two alike), {args.val_items} held out; gen width {args.width}: {train_flops / 1e6:.1f} MFLOP per "
          f"training item, {decode_flops / 1e6:.1f} MFLOP per decoded item; medians of {args.repeats}")
    print(f"plain: DataLoader with {workers} workers, batch {PLAIN_BATCH}, lr {PLAIN_LR:g}, fp32; "
          f"gen: batch {settings.batch_size}, lr {settings.lr:.3g}, {plan.describe()}"
          + (f"; compile warm-up {statistics.median(compile_s):.1f} s (not counted)" if compile_s else ""))
    print(f"training samples/s: plain {plain_rate:,.0f} ({share(plain_rate, train_flops, peak32)}), "
          f"gen {gen_rate:,.0f} ({share(gen_rate, train_flops, peak_gen)}); ratio {gen_rate / plain_rate:.2f}x"
          + (f" (paired by repeat: {', '.join(f'{r:.2f}' for r in paired)}; median {statistics.median(paired):.2f}x)"
             if len(paired) > 1 else ""))
    gen_tt_text = f"{gen_tt:.1f} s, {plain_tt / gen_tt:.2f}x faster" if math.isfinite(gen_tt) else "not reached"
    print(f"time to the plain loop's {plain_epochs_n}-epoch validation -ELBO ({statistics.median(targets):.2f} nats): "
          f"plain {plain_tt:.1f} s, gen {gen_tt_text} ({sum(r is not None for r in reached)}/{len(reached)} reached)")
    print(f"decoder-only sampling at batch {sample_batch:,}: plain fp32 {samp['plain']:,.0f}/s, gen "
          f"{samp['gen_precision']} {samp['gen']:,.0f}/s ({share(samp['gen'], decode_flops, peak_samp)})"
          + (f", gen compiled {samp['gen_compiled']:,.0f}/s (compile {samp['compile_seconds']:.1f} s), "
             f"compiled NCHW {samp['gen_compiled_nchw']:,.0f}/s" if "gen_compiled" in samp else ""))
    print(f"peak estimate: {how32} fp32" + (f"; {how_gen} for gen" if how_gen != how32 else ""))
    fastest = "gen_compiled" if "gen_compiled" in samp else "gen"
    print(f"training step ran as: {ran[-1]}" + (f" (repeats: {'; '.join(ran)})" if len(set(ran)) > 1 else
                                                f" (all {len(ran)} repeats)"))
    print(f"training median: {gen_rate:,.0f} samples/s (gen, batch {settings.batch_size}; plain {plain_rate:,.0f})")
    print("time to target median: " + (f"{plain_tt / gen_tt:.2f}x sooner ({gen_tt:.1f} s against {plain_tt:.1f} s)"
                                        if math.isfinite(gen_tt) else "not reached"))
    rate = samp[fastest]
    print(f"sampling median: {f'{rate / 1e6:.2f}M' if rate >= 1e5 else f'{rate:,.0f}'} samples/s "
          f"({fastest.replace('_', ' ')}, "
          f"{samp['gen_precision']}, uint8 out, batch {sample_batch:,}, median of {samp['calls']} calls)")
    if args.json:
        args.json.write_text(json.dumps({
            "hardware": hw, "torch": torch.__version__, "train_items": train_items, "repeats": args.repeats,
            "plain_workers": workers, "gen_batch": settings.batch_size, "gen_lr": settings.lr, "gen_plan": plan.describe(),
            "plain_samples_per_s": plain_rate, "gen_samples_per_s": gen_rate, "ratio": gen_rate / plain_rate, "paired_ratios": paired,
            "target_neg_elbo": statistics.median(targets), "plain_time_to_target_s": plain_tt,
            "gen_time_to_target_s": gen_tt if math.isfinite(gen_tt) else None,
            "compile_seconds": statistics.median(compile_s) if compile_s else None,
            "train_flops_per_item": train_flops, "decode_flops_per_item": decode_flops, "sampling": samp,
            "peak": {"fp32": peak32, "gen": peak_gen, "how": how_gen},
            "plain_epochs": plain_hist, "gen_epochs": gen_hist, "sweep": sweep_rows, "gen_step_ran_as": ran,
        }, indent=2))


if __name__ == "__main__":
    main()
