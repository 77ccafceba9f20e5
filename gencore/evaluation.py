"""`gen eval`: one report per run on held-out data, comparable across runs.

Negative ELBO split into reconstruction and KL, the IWAE-k bound (Burda et al. 2016), active
units, reconstruction error, and the domain's own metrics of fresh samples (class control and
the like). Metrics that do not exist for an arch are None ("n/a").
"""
from __future__ import annotations

import math
from typing import Any

import torch

from gencore.models import likelihoods
from gencore.plugin import LoadedData
from gencore.training.autoencoder_objective import ACTIVE_UNIT_THRESHOLD

SAMPLES_PER_CLASS = 100
ELBO_SAMPLES = 10  # posterior samples for the reconstruction term of the ELBO

# Which way is better, for marking the winner in `gen eval -r A -r B`.
CORE_GOALS = {"neg_elbo": "min", "recon_nll": "min", "kl": "info", "iwae_nll": "min", "active_units": "max",
              "recon_mse": "min"}


@torch.no_grad()
def iwae_nll(model, x: torch.Tensor, c: torch.Tensor | None, k: int, generator: torch.Generator) -> torch.Tensor:
    """-log p(x) bounded by the importance-weighted ELBO with k posterior samples, per item (B,)."""
    mu, logvar = model.encode(x, c)
    std = torch.exp(0.5 * logvar)
    log_w = []
    for _ in range(k):
        eps = torch.randn(mu.shape, generator=generator).to(mu.device)
        z = mu + std * eps
        params = model.decoder(z, c)
        log_px = -likelihoods.nll(params, x, model.decoder.likelihood, getattr(model.decoder, "log_sigma", None))
        log_pz = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(dim=1)
        log_qz = -0.5 * (eps.pow(2) + logvar + math.log(2 * math.pi)).sum(dim=1)
        log_w.append(log_px + log_pz - log_qz)
    return -(torch.logsumexp(torch.stack(log_w), dim=0) - math.log(k))


@torch.no_grad()
def core_metrics(model, data: LoadedData, iwae_k: int, seed: int, batch: int = 256) -> dict[str, Any]:
    device = next(model.parameters()).device
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    n = data.items.shape[0]
    sums = {"recon_nll": 0.0, "kl": 0.0, "recon_mse": 0.0, "iwae_nll": 0.0}
    mus = []
    for start in range(0, n, batch):
        x = data.items[start:start + batch].to(device)
        c = None if data.conditions is None else data.conditions[start:start + batch].to(device)
        mu, logvar = model.encode(x, c)
        mus.append(mu.float().cpu())
        log_sigma = getattr(model.decoder, "log_sigma", None)
        params = model.decoder(mu, c)
        sums["recon_mse"] += float((model.decoder.mean(params) - x).pow(2).flatten(1).mean(dim=1).sum())
        if model.stochastic:  # E_q[-log p(x|z)] by Monte Carlo
            recon = sum(likelihoods.nll(model.decoder(mu + torch.exp(0.5 * logvar) * torch.randn(
                mu.shape, generator=generator).to(device), c), x, model.decoder.likelihood, log_sigma)
                for _ in range(ELBO_SAMPLES)) / ELBO_SAMPLES
        else:
            recon = likelihoods.nll(params, x, model.decoder.likelihood, log_sigma)
        sums["recon_nll"] += float(recon.sum())
        if model.stochastic:
            sums["kl"] += float((0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)).sum())
            if iwae_k:
                sums["iwae_nll"] += float(iwae_nll(model, x, c, iwae_k, generator).sum())
    mu = torch.cat(mus)
    variance = mu.var(dim=0, unbiased=False) if n > 1 else torch.zeros(mu.shape[1])
    out = {k: v / n for k, v in sums.items()}
    stochastic = model.stochastic
    return {
        "items": n,
        "neg_elbo": out["recon_nll"] + out["kl"] if stochastic else None,
        "recon_nll": out["recon_nll"],
        "kl": out["kl"] if stochastic else None,
        "iwae_nll": out["iwae_nll"] if stochastic and iwae_k else None,
        "iwae_k": iwae_k if stochastic and iwae_k else None,
        "active_units": int((variance > ACTIVE_UNIT_THRESHOLD).sum()),
        "recon_mse": out["recon_mse"],
    }


def evaluate(run, data: LoadedData, reference: LoadedData, iwae_k: int = 50, seed: int = 0) -> dict[str, Any]:
    """The whole report for one run: core metrics on `data`, domain metrics of fresh samples
    judged against `reference` (the real corpus)."""
    model = run.model()
    report = core_metrics(model, data, iwae_k, seed)
    classes = run.class_names or None
    per_class = SAMPLES_PER_CLASS if classes else SAMPLES_PER_CLASS * 5
    samples, _, conds = run.sample_with_labels(per_class, classes, seed=seed + 1)
    report.update(run.domain.metrics(samples, conds, reference, run.config.data, seed))
    return report


def goals(domain) -> dict[str, str]:
    return {**CORE_GOALS, **getattr(domain, "metric_goals", {})}


def better(values: list[Any], goal: str) -> list[bool]:
    """Which of the runs' values win under `goal` ("min", "max", "target:X"; "info" marks none)."""
    numbers = [v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None
               for v in values]
    if goal == "info" or sum(v is not None for v in numbers) < 2:
        return [False] * len(values)
    if goal.startswith("target:"):
        target = float(goal.split(":", 1)[1])
        keys = [abs(v - target) if v is not None else math.inf for v in numbers]
        best = min(keys)
    elif goal == "max":
        keys = [-v if v is not None else math.inf for v in numbers]
        best = min(keys)
    else:
        keys = [v if v is not None else math.inf for v in numbers]
        best = min(keys)
    if all(k == best for k in keys):
        return [False] * len(values)
    return [k == best for k in keys]
