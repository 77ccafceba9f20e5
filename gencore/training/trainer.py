"""The training loop: seeded split, resumable epochs, KL warm-up with free bits, early stopping,
checkpoints, and metrics.jsonl. Everything domain-specific arrives through the plugin."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gencore import console
from gencore.models.autoencoder import AutoEncoder
from gencore.plugin import Domain, LoadedData
from gencore.storage import append_line, save_tensors
from gencore.training import checkpoint
from gencore.training.settings import TrainSettings, lr_at

ACTIVE_UNIT_THRESHOLD = 0.01  # REFERENCE.md §4: posterior-mean variance across the data


class TrainingDiverged(RuntimeError):
    pass


@dataclass
class Split:
    train_x: torch.Tensor
    train_c: torch.Tensor | None
    val_x: torch.Tensor
    val_c: torch.Tensor | None


def split_data(data: LoadedData, val_indices: list[int], device: torch.device) -> Split:
    n = data.items.shape[0]
    is_val = torch.zeros(n, dtype=torch.bool)
    is_val[torch.tensor(val_indices, dtype=torch.long)] = True
    conds = data.conditions
    # Small corpora live on the device whole: no DataLoader, no per-batch host copies.
    return Split(
        data.items[~is_val].to(device), None if conds is None else conds[~is_val].to(device),
        data.items[is_val].to(device), None if conds is None else conds[is_val].to(device),
    )


def choose_val_indices(n: int, fraction: float, seed: int) -> list[int]:
    n_val = max(1, round(n * fraction)) if n >= 10 else 1
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return sorted(perm[:n_val].tolist())


@torch.no_grad()
def evaluate(model: AutoEncoder, x: torch.Tensor, c: torch.Tensor | None, beta: float, free_bits: float,
             batch_size: int = 1024) -> dict[str, float]:
    """Validation: reconstruction and KL in nats per item, the negative ELBO, active units, and
    `val_loss`: the training objective at full beta (free bits included), used for early stopping."""
    model.eval()
    recon = 0.0
    kl_per_dim = torch.zeros(model.spec["latent_dim"], device=x.device)
    mus = []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size]
        cb = None if c is None else c[start:start + batch_size]
        out = model.losses(xb, xb, cb)
        recon += out["recon"].item() * xb.shape[0]
        kl_per_dim += out["kl_per_dim"].float() * xb.shape[0]
        mus.append(model.encode(xb, cb)[0].float())
    n = x.shape[0]
    mu = torch.cat(mus)
    active = int((mu.var(dim=0, unbiased=False) > ACTIVE_UNIT_THRESHOLD).sum()) if n > 1 else 0
    model.train()
    recon, kl_per_dim = recon / n, kl_per_dim / n
    kl = float(kl_per_dim.sum())
    kl_term = float(kl_per_dim.clamp(min=free_bits).sum()) if free_bits else kl
    return {"val_recon": recon, "val_kl": kl, "val_loss": recon + beta * kl_term,
            "val_neg_elbo": recon + kl if model.stochastic else None, "active_units": active}


def train(run_dir: Path, domain: Domain, data: LoadedData, spec: dict[str, Any], config: dict[str, Any],
          settings: TrainSettings, device: torch.device, init_state: dict | None = None,
          resume_from: Path | None = None) -> AutoEncoder:
    """Train to the end (or early stop) and return the best model. Writes checkpoints,
    model.safetensors at every new best, and one metrics.jsonl row per epoch."""
    torch.manual_seed(settings.seed)
    split = split_data(data, config["split"]["val_indices"], device)
    model = AutoEncoder(spec).to(device)
    if init_state is not None:
        model.load_state_dict(init_state)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    class_weights = (torch.tensor(data.class_weights, dtype=torch.float32, device=device)
                     if data.class_weights else None)
    n_train = split.train_x.shape[0]
    steps_per_epoch = math.ceil(n_train / settings.batch_size)
    total_steps = settings.epochs * steps_per_epoch
    warmup_steps = settings.kl_warmup * steps_per_epoch if model.stochastic else 0

    counters = {"epoch": 0, "batch": 0, "best_val": math.inf, "best_epoch": -1, "bad_epochs": 0,
                "skipped_nonfinite": 0}
    step = 0
    if resume_from is not None:
        counters.update({k: v for k, v in checkpoint.load(resume_from, domain.name, model, optimizer).items()
                         if k in counters})
        step = counters.pop("step", None) or int(resume_from.name.split("-")[1])
        console.info(f"resuming from {resume_from} (epoch {counters['epoch'] + 1}, step {step})")

    def save_checkpoint() -> None:
        checkpoint.save(run_dir, domain.name, step, model, optimizer, counters, settings.keep_checkpoints)

    progress = console.TrainProgress(total_steps, step, settings.batch_size)
    metrics_path = run_dir / "metrics.jsonl"
    consecutive_bad = 0
    stopped_early = False
    try:
        while counters["epoch"] < settings.epochs:
            epoch = counters["epoch"]
            epoch_start = time.perf_counter()
            # The order of an epoch is a function of (seed, epoch): a resumed run skips the batches
            # already done and sees exactly the same data after them.
            order = torch.randperm(n_train, generator=torch.Generator().manual_seed(settings.seed * 100_003 + epoch))
            order = order.to(device)
            sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0}
            seen = 0
            for b in range(counters["batch"], steps_per_epoch):
                idx = order[b * settings.batch_size:(b + 1) * settings.batch_size]
                x = split.train_x[idx]
                c = None if split.train_c is None else split.train_c[idx]
                x_in = x
                if settings.arch == "dae":
                    x_in = domain.corrupt(x, torch.Generator().manual_seed(settings.seed * 7_919 + step),
                                          spec=config["data"])
                lr = lr_at(step, total_steps, settings.lr)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                beta = settings.beta * min(1.0, (step + 1) / warmup_steps) if warmup_steps else settings.beta
                out = model.losses(x_in, x, c, beta=beta if model.stochastic else 0.0,
                                   free_bits=settings.free_bits if model.stochastic else 0.0,
                                   contractive=settings.contractive if settings.arch == "cae" else 0.0,
                                   class_weights=class_weights)
                if not torch.isfinite(out["loss"]):
                    counters["skipped_nonfinite"] += 1
                    consecutive_bad += 1
                    optimizer.zero_grad(set_to_none=True)
                    if consecutive_bad >= 20:
                        raise TrainingDiverged(f"the loss was not finite for {consecutive_bad} steps in a row "
                                               f"at step {step}; try a lower --lr")
                else:
                    consecutive_bad = 0
                    optimizer.zero_grad(set_to_none=True)
                    out["loss"].backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 100.0)
                    optimizer.step()
                    for key in sums:
                        sums[key] += out[key].item() * x.shape[0]
                    seen += x.shape[0]
                step += 1
                counters["batch"] = b + 1
                progress.advance(step, f"epoch {epoch + 1}/{settings.epochs}")
                if settings.checkpoint_every and step % settings.checkpoint_every == 0:
                    save_checkpoint()

            val = evaluate(model, split.val_x, split.val_c, settings.beta if model.stochastic else 0.0,
                           settings.free_bits if model.stochastic else 0.0)
            counters["epoch"], counters["batch"] = epoch + 1, 0
            improved = val["val_loss"] < counters["best_val"] - 1e-6
            if improved:
                counters["best_val"], counters["best_epoch"], counters["bad_epochs"] = val["val_loss"], epoch + 1, 0
                save_tensors(run_dir / "model.safetensors", model.state_dict(), "model", domain.name)
            elif epoch + 1 > settings.kl_warmup:  # the objective keeps changing during warm-up
                counters["bad_epochs"] += 1
            row = {"event": "epoch", "epoch": epoch + 1, "step": step,
                   "train_loss": sums["loss"] / max(1, seen), "train_recon": sums["recon"] / max(1, seen),
                   "train_kl": sums["kl"] / max(1, seen), **val, "beta": beta if model.stochastic else None,
                   "lr": lr, "samples_per_s": seen / max(1e-9, time.perf_counter() - epoch_start),
                   "best": improved}
            append_line(metrics_path, _json_line(row))
            au = f"  au {val['active_units']}/{spec['latent_dim']}"
            progress.epoch_done(f"epoch {epoch + 1}/{settings.epochs}",
                                f"train {row['train_loss']:.2f}  val {val['val_loss']:.2f}"
                                f" (recon {val['val_recon']:.2f} kl {val['val_kl']:.2f}){au}")
            save_checkpoint()
            if counters["bad_epochs"] >= settings.patience:
                stopped_early = True
                console.info(f"early stop: no better validation loss for {settings.patience} epochs; "
                             f"keeping epoch {counters['best_epoch']}")
                break
    except KeyboardInterrupt:
        progress.close()
        save_checkpoint()
        console.info(f"interrupted at step {step}; checkpoint saved. Continue with: "
                     f"gen train {domain.name} --resume {run_dir}")
        raise
    finally:
        progress.close()

    best = _load_best(run_dir, domain.name, spec, device)
    best.stopped_early = stopped_early
    best.best_epoch = counters["best_epoch"]
    return best


def _load_best(run_dir: Path, domain: str, spec: dict[str, Any], device: torch.device) -> AutoEncoder:
    from gencore.storage import load_tensors

    model = AutoEncoder(spec).to(device)
    model.load_state_dict(load_tensors(run_dir / "model.safetensors", "model", domain))
    return model.eval()


def _json_line(row: dict[str, Any]) -> str:
    import json

    return json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()})
