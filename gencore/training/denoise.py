"""How a fully convolutional denoiser trains inside the one Trainer: random patches of whole
images, noise from the domain's corruption, then clipped and rounded to 8 bits as users meet
noise. The model is told the noise level it faces (the realised standard deviation of each
patch's noise); validation reports PSNR on fixed noisy patches."""
from __future__ import annotations

import math
from typing import Any, Iterator

import torch
from torch import nn
from torch.nn import functional as F

from gencore.plugin import Domain, LoadedData
from gencore.training import fastpath
from gencore.training.objective import Objective
from gencore.training.settings import TrainSettings

VAL_PATCHES = 64


def psnr(clean: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """PSNR in dB on a [0, 1] range, per item (B,)."""
    mse = (clean - estimate.clamp(0, 1)).pow(2).flatten(1).mean(dim=1).clamp_min(1e-12)
    return 10 * torch.log10(1.0 / mse)


class PatchSampler:
    """Random crops with random flips and quarter turns, chosen in proportion to image area."""

    def __init__(self, images: list[torch.Tensor], patch: int, device: torch.device):
        self.images = [im.to(device) for im in images]
        areas = torch.tensor([im.shape[-1] * im.shape[-2] for im in images], dtype=torch.float64)
        self.weights = areas / areas.sum()
        self.patch = patch

    def __call__(self, n: int, g: torch.Generator) -> torch.Tensor:
        picks = torch.multinomial(self.weights, n, replacement=True, generator=g).tolist()
        out = []
        for k in picks:
            im = self.images[k]
            top = int(torch.randint(0, im.shape[-2] - self.patch + 1, (1,), generator=g))
            left = int(torch.randint(0, im.shape[-1] - self.patch + 1, (1,), generator=g))
            crop = im[:, top:top + self.patch, left:left + self.patch]
            turns, flip = int(torch.randint(0, 4, (1,), generator=g)), bool(torch.randint(0, 2, (1,), generator=g))
            crop = torch.rot90(crop, turns, dims=(1, 2))
            out.append(crop.flip(-1) if flip else crop)
        return torch.stack(out)  # (n, C, P, P)


def noisy_pair(domain: Domain, clean: torch.Tensor, g: torch.Generator, spec: dict[str, Any]):
    """Corrupt, clip, round to 8 bits; return the noisy input and its realised noise level (B,)."""
    noisy = (domain.corrupt(clean, g, spec=spec).clamp(0, 1) * 255).round() / 255
    sigma = (noisy - clean).flatten(1).std(dim=1)
    return noisy, sigma


def patch_count(data: LoadedData) -> int:
    """Patches that cover the corpus's area once: what an epoch draws."""
    return max(1, sum(im.shape[-1] * im.shape[-2] for im in data.images) // data.meta["patch"] ** 2)


def validation_patches(domain: Domain, data: LoadedData, config: dict[str, Any], seed: int, device: torch.device):
    """The fixed held-out patches: clean, noisy and their noise levels."""
    g = torch.Generator().manual_seed(seed + 1)
    clean = PatchSampler(data.images, data.meta["patch"], device)(VAL_PATCHES, g)
    noisy, sigma = noisy_pair(domain, clean, g, config["data"])
    return clean, noisy, sigma


class DenoiserLoss(nn.Module):
    """The training loss as a forward, so that DDP and torch.compile can wrap it; it holds no
    weights of its own, so checkpoints keep the denoiser's state-dict layout."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, noisy: torch.Tensor, clean: torch.Tensor, sigma: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": F.mse_loss(self.model(noisy, sigma).float(), clean)}


class DenoiserObjective(Objective):
    def __init__(self, domain: Domain, data: LoadedData, spec: dict[str, Any], config: dict[str, Any],
                 settings: TrainSettings, device: torch.device, dist):
        self.domain, self.settings, self.device, self.dist = domain, settings, device, dist
        self.data_spec = config["data"]
        self.sampler = PatchSampler(data.images, data.meta["patch"], device)
        self.val_clean, self.val_noisy, self.val_sigma = validation_patches(domain, data, config, settings.seed,
                                                                            device)
        self.local_batch = settings.batch_size // dist.world
        self.steps_per_epoch = max(1, math.ceil(patch_count(data) / settings.batch_size))

    def plan(self) -> fastpath.StepPlan:
        # bf16 autocast on GPUs; fp32 on CPUs keeps CI exact. No channels_last, plain Adam.
        precision = self.settings.precision
        bf16 = fastpath.resolve_bf16(precision, self.device, 0) if precision != "auto" else self.device.type == "cuda"
        return fastpath.StepPlan(device_type=self.device.type, bf16=bf16, channels_last=False, fused_adam=False,
                                 compile=bool(self.settings.compile))

    def loss_module(self, model: nn.Module) -> nn.Module:
        return DenoiserLoss(model)

    def _patches(self, epoch: int, b: int) -> tuple[torch.Tensor, ...]:
        # One generator per (seed, epoch, batch, rank): a resumed epoch draws the same patches.
        seed = ((self.settings.seed * 100_003 + epoch) * 1_000_003 + b) * 64 + self.dist.rank
        g = torch.Generator().manual_seed(seed)
        clean = self.sampler(self.local_batch, g)
        noisy, sigma = noisy_pair(self.domain, clean, g, self.data_spec)
        return noisy, clean, sigma

    def epoch_batches(self, epoch: int, first: int) -> Iterator[tuple]:
        for b in range(first, self.steps_per_epoch):
            yield self._patches(epoch, b)

    def warm_up_batches(self) -> list[tuple]:
        return [self._patches(0, 0)]

    def loss_inputs(self, batch: tuple, step: int, compiled: bool) -> tuple[tuple, dict[str, Any]]:
        return batch, {}

    @torch.no_grad()
    def validate(self, model: nn.Module) -> dict[str, Any]:
        model.eval()
        with self.plan().autocast():
            out = model(self.val_noisy, self.val_sigma).float()
        model.train()
        value = float(psnr(self.val_clean, out).mean())
        return {"val_psnr": value, "val_loss": -value}

    def counts_for_early_stop(self, epoch: int) -> bool:
        return False  # the patches change every epoch; training runs its epochs or --max-minutes

    def summary(self, row: dict[str, Any]) -> str:
        return f"train {row['train_loss']:.5f}  val PSNR {row['val_psnr']:.2f} dB"
