"""The autoencoder family: ae, vae, beta-vae, cae and dae over one encoder/decoder pair.

The constructor arguments form a JSON-able `spec` stored in the run's config.json, so that a run
rebuilds its model, or its decoder alone, from config plus safetensors. A spec without
`conditioning` is format_version 1's, whose networks concatenate the condition.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from gencore.models import ARCHS, CONDITIONINGS, STOCHASTIC, likelihoods
from gencore.models.networks import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder

# Chosen by bench/conditioning_layout.py on the 8x8 digits, seeds 0-2 (bench/results/): against
# "concat", validation -ELBO -0.37 nats and class control -0.5 points (both within noise), diversity
# +0.05; "bias" lost 0.9 points of class control. Confirmed on 28x28: -ELBO level, class control
# -2.1 points, diversity +0.10 (concat's latent mostly collapsed there).
DEFAULT_CONDITIONING = "film"
FORMAT_1_CONDITIONING = "concat"


def model_spec(arch: str, item_kind: str, item_shape: tuple[int, ...], likelihood: str, cond_dim: int,
               latent_dim: int = 16, width: int = 32, hidden: int = 256,
               conditioning: str = DEFAULT_CONDITIONING) -> dict[str, Any]:
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}")
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"unknown conditioning {conditioning!r}")
    return dict(arch=arch, item_kind=item_kind, item_shape=list(item_shape), likelihood=likelihood,
                cond_dim=cond_dim, latent_dim=latent_dim, width=width, hidden=hidden, conditioning=conditioning)


def conditioning_of(spec: dict[str, Any]) -> str:
    return spec.get("conditioning", FORMAT_1_CONDITIONING)


class Encoder(nn.Module):
    """(item, condition) -> posterior mean and log-variance (log-variance is None for ae/cae/dae)."""

    def __init__(self, spec: dict[str, Any]):
        super().__init__()
        self.stochastic = spec["arch"] in STOCHASTIC
        d = spec["latent_dim"] * (2 if self.stochastic else 1)
        shape = tuple(spec["item_shape"])
        if spec["item_kind"] == "vector":
            self.net = MLPEncoder(math.prod(shape), spec["cond_dim"], d, spec["hidden"], conditioning_of(spec))
        else:
            self.net = ConvEncoder(shape[0], shape[1:], spec["cond_dim"], d, spec["width"], spec["hidden"],
                                   conditioning_of(spec))
        # Where the training codes lie, so the encoder alone can score how unusual an input is
        # (Mahalanobis distance of the posterior mean); set when training finishes.
        self.register_buffer("code_mean", torch.zeros(spec["latent_dim"]))
        self.register_buffer("code_precision_chol", torch.eye(spec["latent_dim"]))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None):
        h = self.net(x, cond).float()  # (B, d) or (B, 2d); fp32 under autocast too, for the KL
        if self.stochastic:
            mu, logvar = h.chunk(2, dim=1)
            return mu, logvar.clamp(-12.0, 8.0)
        return h, None


    def mahalanobis(self, mu: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distance of posterior means (B, d) from the training codes, (B,)."""
        return ((mu - self.code_mean) @ self.code_precision_chol).pow(2).sum(dim=1)


class Decoder(nn.Module):
    """(latent, condition) -> likelihood parameters. Carries everything sampling needs: the latent
    prior (N(0, I) for VAEs; a Gaussian fitted to the training codes for deterministic arches)."""

    def __init__(self, spec: dict[str, Any]):
        super().__init__()
        self.likelihood = spec["likelihood"]
        self.item_shape = tuple(spec["item_shape"])
        d = spec["latent_dim"]
        if spec["item_kind"] == "vector":
            self.net = MLPDecoder(math.prod(self.item_shape), spec["cond_dim"], d, spec["hidden"],
                                  conditioning_of(spec))
        else:
            self.net = ConvDecoder(self.item_shape[0], self.item_shape[1:], spec["cond_dim"], d,
                                   spec["width"], spec["hidden"], conditioning_of(spec))
        if self.likelihood == "gaussian":
            self.log_sigma = nn.Parameter(torch.full((self.item_shape[0],), -1.0))
        self.register_buffer("prior_mean", torch.zeros(d))
        self.register_buffer("prior_chol", torch.eye(d))

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z, cond).view(-1, *self.item_shape)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return likelihoods.mean(params, self.likelihood)

    def sample_latent(self, n: int, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
        # Noise is drawn on the CPU from an explicit generator, so a seed gives the same samples
        # on every device.
        eps = torch.randn(n, self.prior_mean.numel(), generator=generator)
        eps = eps.to(self.prior_mean.device)
        return self.prior_mean + temperature * eps @ self.prior_chol.T  # (n, d)


class AutoEncoder(nn.Module):
    def __init__(self, spec: dict[str, Any]):
        super().__init__()
        self.spec = dict(spec)
        self.arch = spec["arch"]
        self.encoder = Encoder(spec)
        self.decoder = Decoder(spec)

    @property
    def stochastic(self) -> bool:
        return self.arch in STOCHASTIC

    def encode(self, x: torch.Tensor, cond: torch.Tensor | None = None):
        return self.encoder(x, cond)

    def forward(self, x_in: torch.Tensor, target: torch.Tensor, cond: torch.Tensor | None, **kwargs):
        """The training losses; a forward() so that DistributedDataParallel can hook it."""
        return self.losses(x_in, target, cond, **kwargs)

    def losses(self, x_in: torch.Tensor, target: torch.Tensor, cond: torch.Tensor | None, *,
               beta: float = 1.0, free_bits: float = 0.0, contractive: float = 0.0,
               class_weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Training loss and its parts. `recon` and `kl` are per-item means in nats; `loss` is
        what the optimiser minimises (warm-up beta, free bits, penalties and weights applied)."""
        if contractive:
            x_in = x_in.detach().requires_grad_(True)
        mu, logvar = self.encoder(x_in, cond)
        if self.stochastic:
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            kl_items = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)  # (B, d)
        else:
            z = mu
            kl_items = torch.zeros_like(mu)
        params = self.decoder(z, cond)
        log_sigma = getattr(self.decoder, "log_sigma", None)
        recon = likelihoods.nll(params, target, self.decoder.likelihood, log_sigma)  # (B,)
        if class_weights is not None:
            train_recon = likelihoods.nll(params, target, self.decoder.likelihood, log_sigma, class_weights)
        else:
            train_recon = recon
        kl_per_dim = kl_items.mean(dim=0)  # (d,)
        # Free bits (Kingma et al. 2016): no pressure on a dimension below `free_bits` nats, so
        # the optimiser cannot win by switching latent dimensions off.
        kl_term = torch.clamp(kl_per_dim, min=free_bits).sum() if free_bits else kl_per_dim.sum()
        loss = train_recon.mean() + beta * kl_term
        out = {"recon": recon.mean(), "kl": kl_items.sum(dim=1).mean(), "kl_per_dim": kl_per_dim}
        if contractive:
            # ||J||_F^2 of the encoder, estimated without bias by one random projection:
            # E_v ||J^T v||^2 = ||J||_F^2 for v ~ N(0, I). One backward pass instead of d.
            v = torch.randn_like(mu)
            (grad,) = torch.autograd.grad((mu * v).sum(), x_in, create_graph=True)
            penalty = grad.pow(2).flatten(1).sum(dim=1).mean()
            loss = loss + contractive * penalty
            out["jacobian"] = penalty
        out["loss"] = loss
        return out
