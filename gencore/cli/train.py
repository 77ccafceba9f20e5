"""`gen train DOMAIN`: train a model on a built-in corpus or your own data."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from gencore import console
from gencore.cli import app, common, global_option
from gencore.errors import GenError
from gencore.archs import ARCH_NAMES


@app.command(context_settings=common.EXTRA_ARGS, cls=common.DomainHelpCommand)
@common.handle_errors
def train(
    ctx: typer.Context,
    domain: str = typer.Argument(..., help="The domain to train, e.g. `gen train images`; `gen plugins` lists them."),
    data: str = typer.Option(None, "--data", help="Training data: a folder, a file, or builtin:NAME; default: the domain's built-in corpus. e.g. --data ./my_digits"),
    arch: str = typer.Option("vae", "--arch", help=f"Model: {', '.join(ARCH_NAMES)}. e.g. --arch beta-vae"),
    epochs: int = typer.Option(None, "--epochs", help="Epochs; default: sized from the data (about 2,000 steps, or the domain's own rule: midi keeps within a compute budget), with early stopping. e.g. --epochs 50"),
    batch_size: int = typer.Option(None, "--batch-size", help="Items per optimiser step; default: 64, or for large data about 1/32 of it (up to 256 on a CPU, 4096 on CUDA). e.g. --batch-size 256"),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate (warm-up, then cosine decay); default 2e-3 at any batch (higher rates stalled the latent in our measurements). e.g. --lr 1e-3"),
    latent: int = typer.Option(None, "--latent", help="Latent dimensions; default 16, or the domain's own. e.g. --latent 2 for a plottable latent space"),
    width: int = typer.Option(None, "--width", help="Channels of the first conv level; doubles per level up to 256; default 32, or the domain's own. e.g. --width 64"),
    beta: float = typer.Option(None, "--beta", help="KL weight; default 1 (vae) or 4 (beta-vae). e.g. --beta 2"),
    kl_warmup: int = typer.Option(None, "--kl-warmup", help="Epochs of linear KL warm-up; default a fifth of the epochs. e.g. --kl-warmup 0"),
    conditioning: str = typer.Option(None, "--conditioning", help="How the class enters the networks: film (per-class scale and shift), bias (shift only) or concat (class planes, format 1's layout); default film, or the domain's own (midi: concat for polyphony, film for melodies). e.g. --conditioning concat"),
    free_bits: float = typer.Option(1.0, "--free-bits", help="Nats per latent dimension free of KL pressure, so the latent does not collapse. e.g. --free-bits 0"),
    contractive: float = typer.Option(0.05, "--contractive", help="Jacobian penalty weight for --arch cae. e.g. --contractive 0.1"),
    patience: int = typer.Option(20, "--patience", help="Early stopping: epochs without a better validation loss. e.g. --patience 5"),
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="Share of items held out for validation (stored in the run). e.g. --val-fraction 0.2"),
    limit: int = typer.Option(None, "--limit", help="Train on a seeded subset of this many items. e.g. --limit 500"),
    drop_class: list[str] = typer.Option(None, "--drop-class", help="Leave this class out of training (repeatable), e.g. to score it as the anomaly later. e.g. --drop-class 9"),
    no_condition: bool = typer.Option(False, "--no-condition", help="Ignore labels and train an unconditional model. e.g. --no-condition"),
    checkpoint_every: int = typer.Option(1000, "--checkpoint-every", help="Checkpoint every N steps (and every epoch). e.g. --checkpoint-every 200"),
    keep_checkpoints: int = typer.Option(3, "--keep-checkpoints", help="How many checkpoints to keep. e.g. --keep-checkpoints 5"),
    seed: int = typer.Option(None, "--seed", help=common.SEED_HELP),
    device: str = typer.Option(None, "--device", help=common.DEVICE_HELP),
    out: Path = typer.Option(None, "--out", "-o", help="The run folder to create; default runs/DOMAIN-ARCH-TIME. e.g. -o runs/digits"),
    resume: str = typer.Option(None, "--resume", help="Continue a stopped run from its last checkpoint: a run folder, `latest`, or `auto` (the -o run if it has a checkpoint, else start it; for torchrun --max-restarts). e.g. --resume latest"),
    init: str = typer.Option(None, "--init", help="Fine-tune: start from another run's weights (same domain and model). e.g. --init runs/digits"),
    max_minutes: float = typer.Option(None, "--max-minutes", help="Stop at the first epoch end after this many minutes. e.g. --max-minutes 20"),
    precision: str = typer.Option(None, "--precision", help="Training arithmetic: auto (bf16 autocast on GPUs, and on CPUs with native bf16 for items of 16x16 or more), fp32 or bf16; default auto, or the domain's own. e.g. --precision fp32"),
    compile: bool = typer.Option(None, "--compile/--no-compile", help="torch.compile the training step (falls back to eager if compiling fails); default: on for CUDA, off elsewhere. e.g. --no-compile"),
    cache: str = typer.Option("auto", "--cache", help="Decode a data folder once into $GENCORE_CACHE and read batches from the memory-mapped cache: auto (image folders of over 256 MiB as float32, other folders of over 32 MiB on disk), on or off; `gen cache ls` lists the caches. e.g. --cache on"),
    nproc: int = typer.Option(None, "--nproc", help="Train with N processes on this machine through torchrun (DDP; the global batch is split over them). e.g. --nproc 2"),
) -> None:
    """Train a model of one domain. Domain options (below) follow the domain name.

    e.g. gen train images --arch vae --epochs 30
    """
    from gencore.registry import check_domain_name, get_domain
    from gencore.runs import check_writable
    from gencore.training.settings import TrainSettings

    check_domain_name(domain)
    settings = TrainSettings(
        arch=arch, epochs=epochs, batch_size=batch_size, lr=lr, latent_dim=TrainSettings.latent_dim if latent is None else latent,
        width=TrainSettings.width if width is None else width, beta=beta,
        kl_warmup=kl_warmup, free_bits=free_bits, contractive=contractive, patience=patience,
        val_fraction=val_fraction, seed=global_option(ctx, "seed", seed, 0), checkpoint_every=checkpoint_every,
        keep_checkpoints=keep_checkpoints, limit=limit, condition=not no_condition,
        drop_classes=drop_class or None, max_minutes=max_minutes, precision=precision or TrainSettings.precision, compile=compile,
        conditioning=conditioning).validate()
    plugin = get_domain(domain)
    given = {"epochs": epochs, "latent_dim": latent, "width": width, "conditioning": conditioning,
             "precision": precision}  # a domain's own defaults fill the rest
    settings = replace(settings, **{k: v for k, v in plugin.training_defaults.items() if given.get(k) is None}).validate()
    options = common.parse_domain_options(plugin, "train", ctx.args, common.command_flags(ctx))
    check_writable(out, "-o")
    if nproc is not None:
        common.positive(nproc, "--nproc")
        raise typer.Exit(launch_torchrun(nproc, (ctx.find_root().obj or {}).get("threads")))
    if cache not in ("auto", "on", "off"):
        raise GenError(f"unknown cache mode {cache!r}", where="--cache", hint="use auto, on or off, e.g. --cache on")
    run_dir = _run(ctx, plugin, data, options, settings, epochs, device, out, resume, init, cache)
    from gencore.archs import get_arch

    console.info(f"run complete: {run_dir}  (next: {get_arch(arch).next_step(run_dir)})")


def _run(ctx: typer.Context, plugin, data: str | None, options: dict, settings, epochs: int | None,
         device: str | None, out: Path | None, resume: str | None, init: str | None, cache: str = "auto") -> Path:
    """Start or resume the run, in this process or as one rank under torchrun; its folder."""
    from gencore import distributed
    from gencore.devices import resolve_device
    from gencore.training import pipeline

    dist = distributed.from_env()
    if not dist.main:
        console.settings.quiet = True  # rank 0 alone talks
    torch_device = distributed.init(dist, resolve_device(global_option(ctx, "device", device, "auto")))
    if resume == "auto":
        if out is None:
            raise GenError("--resume auto needs the run folder", where="--resume", hint="add -o RUN_DIR")
        from gencore.training.checkpoint import list_checkpoints

        resume = str(out) if list_checkpoints(out) else None
        if resume is None and dist.main and pipeline.clear_unstarted(out):
            console.info(f"{out}: the run stopped before its first checkpoint; starting it again")
    if resume is not None:
        from gencore.runs import check_writable, resolve_run

        resumed = resolve_run(resume, complete_only=False)
        check_writable(resumed, "--resume")
        run_dir = pipeline.resume(resumed, plugin, epochs, torch_device, dist)
    else:
        run_dir = pipeline.start(plugin, data, options, settings, out, torch_device, init, dist, cache)
    distributed.shutdown(dist)
    return run_dir


def launch_torchrun(nproc: int, threads: int | None = None) -> int:
    """Re-run this very command under torchrun's elastic launcher (torch.distributed.run) with
    `nproc` processes on this machine, minus --nproc; they share `threads` CPU threads. Returns
    its exit code."""
    import os
    import subprocess
    import sys

    args, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            args.append(arg)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "gencore", *args]
    console.info(f"launching {nproc} processes: torchrun --standalone --nproc-per-node={nproc} -m gencore {' '.join(args)}")
    env = dict(os.environ)
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # one machine: keep gloo on the loopback
    env["OMP_NUM_THREADS"] = str(max(1, (threads or os.cpu_count() or 1) // nproc))
    try:
        return subprocess.run(command, env=env).returncode
    except KeyboardInterrupt:
        return 130
