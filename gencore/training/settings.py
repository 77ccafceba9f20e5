"""Training hyper-parameters, their defaults, and the rules that size them from the data."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

TARGET_STEPS = 2000  # auto epochs aim for about this many optimiser steps
MIN_AUTO_EPOCHS, MAX_AUTO_EPOCHS = 10, 300
# Auto batch: about ITEMS_PER_STEP_SHARE of the training items per step, a power of two, at
# least BASE_BATCH and at most the device's cap (bench/train_speed.py: on a 2-core CPU, batch 256
# trains 1.5-1.7x faster per item than 128 and still reaches a given ELBO sooner; 512 converges
# too slowly per epoch). The learning rate stays BASE_LR: on the 28x28 digits VAE, Adam at
# 2.8e-3 or more (sqrt scaling from 64 at batch 128 and up) left the latent stalled for 12
# epochs at batch 256 and 512, while 2e-3 escaped the collapse in 3-5 epochs.
BASE_BATCH, BASE_LR = 64, 2e-3
ITEMS_PER_STEP_SHARE = 1 / 32
MAX_AUTO_BATCH = {"cuda": 4096, "cpu": 256}
MAX_LATENT, MAX_WIDTH = 4096, 1024  # beyond these a model would not fit in memory
PRECISIONS = ("auto", "fp32", "bf16")
# Least values of the sizes and counts (None means "sized from the data" and is always allowed).
MINIMUMS = {"epochs": 1, "batch_size": 1, "latent_dim": 1, "width": 1, "patience": 1, "limit": 2,
            "keep_checkpoints": 1, "checkpoint_every": 0, "kl_warmup": 0, "free_bits": 0, "contractive": 0}


@dataclass
class TrainSettings:
    arch: str = "vae"
    epochs: int | None = None  # None: sized from the data (see auto_epochs)
    batch_size: int | None = None  # None: sized from the data and device (auto_batch)
    lr: float | None = None  # None: BASE_LR
    latent_dim: int = 16
    width: int = 32
    hidden: int = 256
    beta: float | None = None  # None: 1 for vae, 4 for beta-vae
    kl_warmup: int | None = None  # epochs of linear KL warm-up; None: a fifth of the epochs
    free_bits: float = 1.0  # nats per latent dimension free of KL pressure
    contractive: float = 0.05  # weight of the Jacobian penalty, cae only
    patience: int = 20  # early stopping, in epochs without a better validation loss
    val_fraction: float = 0.1
    seed: int = 0
    checkpoint_every: int = 1000  # optimiser steps; a checkpoint also ends every epoch
    keep_checkpoints: int = 3
    limit: int | None = None  # train on a seeded subset of this many items
    condition: bool = True
    drop_classes: list[str] | None = None  # classes left out of training (anomaly demos)
    max_minutes: float | None = None  # stop at the first epoch end past this wall time
    precision: str = "auto"  # auto | fp32 | bf16 autocast (see training.fastpath)
    compile: bool | None = None  # torch.compile the step; None: on CUDA only
    # How the class enters the networks (gencore.models.CONDITIONINGS); None: the engine's default.
    # A domain can choose its own through Domain.training_defaults.
    conditioning: str | None = None

    def validate(self) -> "TrainSettings":
        """Refuse settings no run can train with, naming the parameter (GenError with `param`);
        `gencore.training.pipeline.start` calls this, so Python callers get the CLI's checks."""
        from gencore.archs import ARCH_NAMES
        from gencore.errors import GenError

        if self.arch not in ARCH_NAMES:
            raise GenError(f"unknown arch {self.arch!r}", param="arch", hint=f"use one of {', '.join(ARCH_NAMES)}")
        for name, least in MINIMUMS.items():
            value = getattr(self, name)
            if value is not None and not value >= least:
                raise GenError(f"must be at least {least}, got {value}", param=name)
        for name in ("lr", "beta", "max_minutes"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise GenError(f"must be positive, got {value}", param=name)
        for name in ("lr", "beta", "free_bits", "contractive", "max_minutes"):
            value = getattr(self, name)
            if value is not None and not value < float("inf"):
                raise GenError(f"must be finite, got {value}", param=name)
        for name, most in (("latent_dim", MAX_LATENT), ("width", MAX_WIDTH)):
            if getattr(self, name) > most:
                raise GenError(f"must be at most {most}, got {getattr(self, name)}", param=name,
                               hint="a model that large would not fit in memory")
        from gencore.models import CONDITIONINGS

        if self.conditioning is not None and self.conditioning not in CONDITIONINGS:
            raise GenError(f"unknown conditioning {self.conditioning!r}", param="conditioning",
                           hint=f"use one of {', '.join(CONDITIONINGS)}")
        if self.precision not in PRECISIONS:
            raise GenError(f"unknown precision {self.precision!r}", param="precision", hint="use auto, fp32 or bf16")
        if not 0 < self.val_fraction < 1:
            raise GenError(f"must be between 0 and 1, got {self.val_fraction}", param="val_fraction")
        return self

    def resolved(self, n_train: int, device_type: str | None = None, world: int = 1) -> "TrainSettings":
        """Fill in what was left to the data: epochs, batch (BASE_BATCH when no device type is
        given), learning rate, beta and KL warm-up."""
        out = TrainSettings(**asdict(self))
        if out.batch_size is None:
            out.batch_size = auto_batch(n_train, device_type, world)
        if out.lr is None:
            out.lr = BASE_LR
        if out.epochs is None:
            steps_per_epoch = max(1, math.ceil(n_train / out.batch_size))
            out.epochs = int(min(MAX_AUTO_EPOCHS, max(MIN_AUTO_EPOCHS, round(TARGET_STEPS / steps_per_epoch))))
        if out.beta is None:
            out.beta = 4.0 if out.arch == "beta-vae" else 1.0
        if out.kl_warmup is None:
            out.kl_warmup = max(1, out.epochs // 5)
        return out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrainSettings":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def auto_batch(n_train: int, device_type: str | None = None, world: int = 1) -> int:
    """Larger batches keep a GPU busy; small corpora keep the base batch, so an epoch still has
    many steps. e.g. 1,600 items -> 64 anywhere; 60,000 -> 1024 on CUDA, 256 on a CPU."""
    cap = MAX_AUTO_BATCH.get(device_type or "", BASE_BATCH)
    batch = BASE_BATCH
    while batch * 2 <= min(cap, n_train * ITEMS_PER_STEP_SHARE):
        batch *= 2
    return max(batch, world) // world * world if batch % world else batch


def lr_at(step: int, total_steps: int, base_lr: float, warmup_steps: int = 100) -> float:
    """Linear warm-up, then cosine decay to a tenth of the base rate. A pure function of the step,
    so a resumed run follows the same schedule."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return base_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
