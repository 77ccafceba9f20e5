"""The workload bench/train_speed.py times: REFERENCE.md §1's class-conditional conv VAE on
28x28 digits, the plain eager loop it is measured against, gen's Trainer with each epoch timed,
and profiles of a step or a call."""
from __future__ import annotations

import math
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from gencore.models.autoencoder import AutoEncoder, model_spec
from gencore.plugin import LoadedData
from gencore.storage import read_jsonl
from gencore.training.settings import TrainSettings
from gencore.training.autoencoder_objective import choose_val_indices, evaluate
from gencore.training.trainer import Trainer

PLAIN_BATCH, PLAIN_LR, PLAIN_EPOCHS = 128, 1e-3, 10
# On a CPU the two loops take turns of about this many items (a second or so): short enough that
# both meet the same load, long enough that neither pays for the other evicting its caches.
TURN_ITEMS = 2048
LATENT, CLASSES = 16, 10


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# -- data and model -------------------------------------------------------------------------------
def digits_28(train_items: int, val_items: int, seed: int):
    """scikit-learn's digits at 28x28 through the images domain, binarised at 0.5 (as binarised
    MNIST: with soft targets the Bernoulli NLL sits on the targets' entropy and hardly moves
    after an epoch); `val_items` held out as they are. The rest fill `train_items` with jittered
    copies (`jittered_tiles`): no two training items are the same image, so a loop cannot
    memorise repeats of 1,497 digits, and the 10-epoch target does not hinge on when a loop
    starts to overfit them."""
    from gencore_images import plugin as images

    data = images.load("builtin:digits", {"resize": "28,28"})
    n = data.items.shape[0]
    val = torch.tensor(choose_val_indices(n, val_items / n, seed))
    train = torch.ones(n, dtype=torch.bool)
    train[val] = False
    tx, tc = jittered_tiles(data.items[train], data.conditions[train], train_items, seed)
    data.items = (data.items > 0.5).float()
    return tx, tc, data.items[val], data.conditions[val], data


JITTER_SHIFT, JITTER_DEGREES, JITTER_SCALE = 0.1, 8.0, 0.08


def jittered_tiles(items: torch.Tensor, conditions: torch.Tensor, n: int, seed: int):
    """`n` items cycling through `items` (B, 1, H, W) with gray levels in [0, 1], each copy under
    its own random affine map (a shift of up to 10% of the side, a rotation of up to 8 degrees, a
    scale of up to 8% either way; bilinear), binarised at 0.5. Copies that came out equal to an
    earlier item are drawn again, so no two are the same image. Seeded."""
    g = torch.Generator().manual_seed(seed)
    index = torch.arange(n) % items.shape[0]
    out = torch.empty(n, *items.shape[1:])
    redraw = torch.arange(n)
    for _ in range(20):
        out[redraw] = _warp(items[index[redraw]], g)
        flat = out.flatten(1)
        _, group = torch.unique(flat, dim=0, return_inverse=True)
        first = torch.full((int(group.max()) + 1,), n).scatter_reduce(0, group, torch.arange(n), "amin")
        redraw = torch.nonzero(first[group] != torch.arange(n)).flatten()  # (R,) later copies of an image
        if redraw.numel() == 0:
            return out, conditions[index]
    raise RuntimeError(f"{redraw.numel()} jittered copies stay equal to others")


def _warp(items: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Each item (B, 1, H, W) under its own random affine map, binarised."""
    n = items.shape[0]
    angle = (torch.rand(n, generator=g) * 2 - 1) * JITTER_DEGREES * math.pi / 180
    scale = 1 + (torch.rand(n, generator=g) * 2 - 1) * JITTER_SCALE
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * JITTER_SHIFT * 2  # the grid spans [-1, 1]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    out = torch.empty_like(items)
    for start in range(0, n, 4096):
        part = slice(start, start + 4096)
        grid = F.affine_grid(theta[part], list(items[part].shape), align_corners=False)
        out[part] = F.grid_sample(items[part], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return (out > 0.5).float()


def spec_for(width: int) -> dict:
    return model_spec("vae", "grid2d", (1, 28, 28), "bernoulli", CLASSES, latent_dim=LATENT, width=width)


# -- the plain loop -------------------------------------------------------------------------------
def plain_loop(spec, tx, tc, vx, vc, device, workers: int, seed: int, epochs: int, history: list[dict],
               per_step: bool):
    """What most hand-written loops do: a DataLoader, batch 128, fp32, Adam, BCE + KL. A generator
    that yields the items it trained on after each step (`per_step`, for CPUs) or each epoch, so
    the bench interleaves it with gen's and both meet the same load on a shared machine; on a GPU
    per-epoch turns leave its asynchronous launches alone. Each finished epoch is appended to
    `history`. Its randomness has its own generators."""
    from torch.utils.data import DataLoader, TensorDataset

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoEncoder(spec).to(device)
    noise = torch.Generator(device=device).manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=PLAIN_LR)
    loader = DataLoader(TensorDataset(tx, tc), batch_size=PLAIN_BATCH, shuffle=True, num_workers=workers,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                        generator=torch.Generator().manual_seed(seed))
    vx, vc = vx.to(device), vc.to(device)
    elapsed = 0.0
    for _ in range(epochs):
        model.train()
        sync(device)
        epoch_started, stepping = time.perf_counter(), 0.0
        batches = iter(loader)
        while True:
            started = time.perf_counter()  # the DataLoader's fetch counts
            batch = next(batches, None)
            if batch is None:
                break
            x, c = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
            mu, logvar = model.encoder(x, c)
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=noise, device=device)
            logits = model.decoder(z, c)
            recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / x.shape[0]
            opt.zero_grad()
            (recon + kl).backward()
            opt.step()
            if per_step:
                sync(device)
                stepping += time.perf_counter() - started
                yield x.shape[0]
        sync(device)
        seconds = stepping if per_step else time.perf_counter() - epoch_started
        elapsed += seconds
        val = evaluate(model, vx, vc, beta=1.0, free_bits=0.0)["val_neg_elbo"]
        history.append({"seconds": seconds, "elapsed": elapsed, "val": val, "items": tx.shape[0]})
        if not per_step:
            yield tx.shape[0]


# -- gen's trainer --------------------------------------------------------------------------------
class TimedTrainer(Trainer):
    """gen's Trainer, with each epoch's training time recorded (its validation, and the plain
    loop's turns taken inside it, left out). The `partner` (the plain loop) takes its turns:
    whenever gen is TURN_ITEMS ahead, until it has trained on as many items (`per_step`), or after
    each of gen's epochs."""

    partner, per_step = None, False
    gen_items = plain_items = 0

    def _epoch(self, progress) -> None:
        sync(self.device)
        started, self.val_seconds, self.partner_seconds = time.perf_counter(), 0.0, 0.0
        super()._epoch(progress)
        sync(self.device)
        seconds = time.perf_counter() - started - self.val_seconds - self.partner_seconds
        last = [r for r in read_jsonl(self.run_dir / "metrics.jsonl") if r.get("event") == "epoch"][-1]
        elapsed = (self.history[-1]["elapsed"] if self.history else 0.0) + seconds
        self.history.append({"seconds": seconds, "elapsed": elapsed, "val": last["val_neg_elbo"],
                             "items": self.split.train_x.shape[0]})
        if not self.per_step:
            next(self.partner, None)

    def _step(self, x, c):
        if self.per_step:
            self.gen_items += x.shape[0]
            if self.gen_items - self.plain_items < TURN_ITEMS:
                return super()._step(x, c)
            started = time.perf_counter()
            while self.plain_items < self.gen_items:
                done = next(self.partner, None)
                if done is None:
                    break
                self.plain_items += done
            self.partner_seconds += time.perf_counter() - started
        return super()._step(x, c)


def timed_evaluate(*args, **kwargs):
    trainer = TimedTrainer.current
    sync(trainer.device)
    started = time.perf_counter()
    out = evaluate(*args, **kwargs)
    trainer.val_seconds += time.perf_counter() - started
    return out


def profile_call(fn, device, title: str) -> str:
    """The top operators of one call of `fn`, and how busy the device was over its wall time."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    fn()
    sync(device)
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
        started = time.perf_counter()
        fn()
        sync(device)
        wall = time.perf_counter() - started
    events = prof.key_averages()
    table = events.table(sort_by="self_cuda_time_total" if cuda else "self_cpu_time_total", row_limit=12)
    line = f"profile: {title} in {wall * 1e3:.1f} ms"
    if cuda:
        # the device's own events only: operator rows repeat their kernels' time
        kernels = sum(e.self_device_time_total for e in events if e.device_type == DeviceType.CUDA) / 1e6
        line += f"; kernels busy {100 * kernels / wall:.0f}% of that time"
    return f"{table}\n{line}"


def profile_steps(trainer: Trainer, steps: int = 10) -> str:
    """Where gen's training step spends its time: the top operators, and how busy the device
    was over the steps' wall time (low: bound by the host, launches and syncs; high: by kernels)."""
    x, c = trainer._batch(0, trainer.local_batch)
    trainer.counters["sums"] = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "items": 0}

    def run():
        for _ in range(steps):
            trainer._step(x, c)
        trainer.pending_steps = 0

    run()
    return profile_call(run, trainer.device, f"{steps} steps of batch {x.shape[0]}")


def gen_settings(spec, n_train: int, device, seed: int, epochs: int | None, args, batch=None, lr=None) -> TrainSettings:
    return TrainSettings(arch="vae", epochs=epochs, batch_size=batch or args.gen_batch, lr=lr or args.gen_lr,
                         latent_dim=LATENT, width=spec["width"], patience=10**6, seed=seed, checkpoint_every=0,
                         keep_checkpoints=1, precision=args.precision,
                         compile=args.compile).resolved(n_train, device.type)


def make_trainer(cls, folder: Path, spec, tx, tc, vx, vc, domain, device, settings: TrainSettings):
    data = LoadedData(items=torch.cat([tx, vx]), conditions=torch.cat([tc, vc]), class_names=[str(i) for i in range(10)],
                      likelihood="bernoulli", item_kind="grid2d")
    val_indices = list(range(tx.shape[0], tx.shape[0] + vx.shape[0]))
    config = {"split": {"val_indices": val_indices}, "data": {}}
    if device.type == "cuda":
        torch._dynamo.reset()  # each trainer compiles afresh: no stale graphs, no cache limit reached
        torch._dynamo.utils.counters.clear()  # so `what_ran` counts this trainer's skips alone
    return cls(folder, domain, data, spec, config, settings, device)


def gen_run(spec, tx, tc, vx, vc, domain, device, seed: int, epochs: int | None, partner, args, profile: bool = False,
            batch=None, lr=None):
    settings = gen_settings(spec, tx.shape[0], device, seed, epochs, args, batch, lr)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(TimedTrainer, Path(tmp), spec, tx, tc, vx, vc, domain, device, settings)
        trainer.history, trainer.partner, trainer.per_step = [], partner, device.type != "cuda"
        TimedTrainer.current = trainer
        trainer.fit()
        trainer.per_step = False
        trainer.profile = profile_steps(trainer) if profile else None
    return trainer, settings


def what_ran(step_fn) -> str:
    """What gen's training step ran as, read from the step function after training (a compiler
    that failed in the warm-up has left it eager) and from inductor's count of CUDA-graph skips."""
    if not step_fn.compiled:
        return "eager"
    if step_fn.mode != "reduce-overhead":
        return f"torch.compile (mode {step_fn.mode or 'default'}), no CUDA graphs"
    skips = torch._dynamo.utils.counters["inductor"]["cudagraph_skips"]
    return "torch.compile with CUDA graphs" if not skips else \
        f"torch.compile, CUDA graphs skipped for {skips} graph(s), so those ran without"


# -- reading the epoch history ---------------------------------------------------------------------
def median_rate(history: list[dict]) -> float:
    epochs = history[1:] or history  # the first epoch pays for kernel selection and caches
    return statistics.median(h["items"] / h["seconds"] for h in epochs)


def time_to(history: list[dict], target: float) -> float | None:
    return next((h["elapsed"] for h in history if h["val"] <= target), None)


