"""How the autoencoder family (ae, vae, beta-vae, cae, dae) trains: a seeded held-out split kept
on the device, shuffled shards of it per epoch, KL warm-up with free bits, and validation in nats
per item with active units."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

import torch

from gencore import console
from gencore.models import STOCHASTIC
from gencore.models.autoencoder import AutoEncoder
from gencore.plugin import Domain, LoadedData
from gencore.sharded import ShardedItems
from gencore.training import fastpath
from gencore.training.objective import Objective
from gencore.training.settings import TrainSettings

ACTIVE_UNIT_THRESHOLD = 0.01  # docs/metrics.md: posterior-mean variance across the data
DEVICE_DATA_SHARE = 0.5  # of a GPU's free memory, at most, for a corpus kept on it whole
# Validation and code statistics read at most this many item values per batch (up to 1,024
# items): activations grow with the item, and 1,024 64x64 RGB images at width 8 took ~0.7 GB.
EVAL_BATCH_VALUES = 2**21


def eval_batch(item_shape) -> int:
    """Items per no-grad batch for items of `item_shape`: 1,024, fewer for large items."""
    values = 1
    for n in item_shape:
        values *= int(n)
    return max(16, min(1024, EVAL_BATCH_VALUES // max(1, values)))


@dataclass
class Split:
    train_x: torch.Tensor
    train_c: torch.Tensor | None
    val_x: torch.Tensor
    val_c: torch.Tensor | None


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    """Whether a corpus of `nbytes` may live on `device` whole: on a GPU, at most
    DEVICE_DATA_SHARE of its free memory, the rest left for the model and activations."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_DATA_SHARE * free


def split_data(data: LoadedData, val_indices: list[int], device: torch.device) -> Split:
    n = data.items.shape[0]
    is_val = torch.zeros(n, dtype=torch.bool)
    is_val[torch.tensor(val_indices, dtype=torch.long)] = True
    conds = data.conditions
    if isinstance(data.items, ShardedItems):
        return _split_sharded(data.items, conds, is_val, device)
    nbytes = data.items.nbytes + (0 if conds is None else conds.nbytes)
    # A corpus that fits lives on the device whole: no DataLoader, no per-batch host copies.
    # One that does not stays in host memory, and each batch is gathered there and copied over.
    resident = fits_on_device(nbytes, device)
    home = device if resident else torch.device("cpu")
    if not resident:
        console.info(f"the corpus ({nbytes / 2**30:.1f} GiB) does not fit in {device}'s free memory: "
                     f"streaming each batch from host memory")
    return Split(
        data.items[~is_val].to(home), None if conds is None else conds[~is_val].to(home),
        data.items[is_val].to(home), None if conds is None else conds[is_val].to(home),
    )


def _split_sharded(items: ShardedItems, conds: torch.Tensor | None, is_val: torch.Tensor,
                   device: torch.device) -> Split:
    """Items in the decoded-data cache stay there, each batch read and converted on its own;
    on a GPU with room for the whole corpus, it is read once and kept there."""
    def part(rows: torch.Tensor):
        return items[rows], None if conds is None else conds[rows].to(device)

    (train_x, train_c), (val_x, val_c) = part(~is_val), part(is_val)
    if device.type == "cuda" and fits_on_device(items.nbytes, device):
        train_x, val_x = train_x.to(device), val_x.to(device)
    return Split(train_x, train_c, val_x, val_c)


def choose_val_indices(n: int, fraction: float, seed: int) -> list[int]:
    n_val = max(1, round(n * fraction)) if n >= 10 else 1
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return sorted(perm[:n_val].tolist())


@torch.no_grad()
def evaluate(model: AutoEncoder, x: torch.Tensor, c: torch.Tensor | None, beta: float, free_bits: float,
             batch_size: int | None = None) -> dict[str, float]:
    """Validation: reconstruction and KL in nats per item, the negative ELBO, active units, and
    `val_loss`: the training objective at full beta (free bits included), used for early stopping."""
    model.eval()
    device = next(model.parameters()).device
    batch_size = batch_size or eval_batch(x.shape[1:])
    recon = 0.0
    kl_per_dim = torch.zeros(model.spec["latent_dim"], device=device)
    mus = []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size].to(device, non_blocking=True)
        cb = None if c is None else c[start:start + batch_size].to(device, non_blocking=True)
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


class AutoEncoderObjective(Objective):
    def __init__(self, domain: Domain, data: LoadedData, spec: dict[str, Any], config: dict[str, Any],
                 settings: TrainSettings, device: torch.device, dist):
        self.domain, self.spec, self.config, self.settings, self.device, self.dist = (
            domain, spec, config, settings, device, dist)
        self.data_spec = config["data"]
        self.split = split_data(data, config["split"]["val_indices"], device)
        self.stochastic = spec["arch"] in STOCHASTIC
        self.class_weights = (torch.tensor(data.class_weights, dtype=torch.float32, device=device)
                              if data.class_weights else None)
        from torch.utils.data import DistributedSampler

        n_train = self.split.train_x.shape[0]
        self.sampler = DistributedSampler(range(n_train), num_replicas=dist.world, rank=dist.rank,
                                          shuffle=True, seed=settings.seed)
        self.local_batch = settings.batch_size // dist.world
        self.steps_per_epoch = math.ceil(len(self.sampler) / self.local_batch)
        self.warmup_steps = settings.kl_warmup * self.steps_per_epoch if self.stochastic else 0

    def plan(self) -> fastpath.StepPlan:
        return fastpath.plan_step(self.settings, self.device, self.spec, self.dist.active)

    def batch(self, start: int, size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        x, c = self.split.train_x[start:start + size], self.split.train_c
        return x.to(self.device), None if c is None else c[start:start + size].to(self.device)

    def epoch_batches(self, epoch: int, first: int) -> Iterator[tuple]:
        split = self.split
        self.sampler.set_epoch(epoch)
        order = torch.tensor(list(iter(self.sampler)), dtype=torch.long, device=split.train_x.device)
        for b in range(first, self.steps_per_epoch):
            idx = order[b * self.local_batch:(b + 1) * self.local_batch]
            x = split.train_x[idx].to(self.device, non_blocking=True)
            yield x, None if split.train_c is None else split.train_c[idx].to(self.device, non_blocking=True)

    def warm_up_batches(self) -> list[tuple]:
        last = len(self.sampler) - (self.steps_per_epoch - 1) * self.local_batch  # the epoch's last batch
        return [self.batch(0, n) for n in {self.local_batch, last}]

    def beta(self, step: int) -> float:
        if not self.warmup_steps:
            return self.settings.beta
        return self.settings.beta * min(1.0, (step + 1) / self.warmup_steps)

    def loss_inputs(self, batch: tuple, step: int, compiled: bool) -> tuple[tuple, dict[str, Any]]:
        x, c = batch
        settings, x_in = self.settings, x
        if settings.arch == "dae":
            seed = settings.seed * 7_919 + step * self.dist.world + self.dist.rank
            x_in = self.domain.corrupt(x, torch.Generator().manual_seed(seed), spec=self.data_spec)
        beta = self.beta(step) if self.stochastic else 0.0
        if compiled:  # a tensor, so a changing beta does not recompile the graph
            beta = torch.full((), beta, device=self.device)
        return (x_in, x, c), {"beta": beta, "free_bits": settings.free_bits if self.stochastic else 0.0,
                              "contractive": settings.contractive if settings.arch == "cae" else 0.0,
                              "class_weights": self.class_weights}

    def validate(self, model: torch.nn.Module) -> dict[str, Any]:
        settings = self.settings
        return evaluate(model, self.split.val_x, self.split.val_c, settings.beta if self.stochastic else 0.0,
                        settings.free_bits if self.stochastic else 0.0)

    def counts_for_early_stop(self, epoch: int) -> bool:
        return epoch > self.settings.kl_warmup  # the objective keeps changing during warm-up

    def train_row(self, sums: dict[str, float], items: int, step: int) -> dict[str, Any]:
        return {"train_loss": sums["loss"] / items, "train_recon": sums["recon"] / items,
                "train_kl": sums["kl"] / items, "beta": self.beta(step) if self.stochastic else None}

    def summary(self, row: dict[str, Any]) -> str:
        return (f"train {row['train_loss']:.2f}  val {row['val_loss']:.2f} (recon {row['val_recon']:.2f} "
                f"kl {row['val_kl']:.2f})  au {row['active_units']}/{self.spec['latent_dim']}")
