"""`gen score`: one anomaly score per input, higher meaning more anomalous.

- `recon`: the reconstruction's negative log-likelihood (nats) at the posterior mean;
- `elbo`: the negative ELBO, averaged over posterior samples (VAEs only);
- `mahalanobis`: the encoder alone (encoder.safetensors): the squared Mahalanobis distance of the
  posterior mean from the training codes;
- `kl`: the encoder alone (VAEs only): the KL divergence of the posterior from the N(0, I) prior.

For a conditional run without `--class`, an input's score is the minimum over the classes: an
input is normal if it fits some class.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from gencore.errors import GenError
from gencore.models import likelihoods

METHODS = ("recon", "elbo", "mahalanobis", "kl")
ENCODER_ONLY = ("mahalanobis", "kl")
ELBO_SAMPLES = 8


@torch.no_grad()
def _score_given(run, method: str, x: torch.Tensor, c: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
    mu, logvar = run.encoder(x, c)
    if method == "mahalanobis":
        return run.encoder.mahalanobis(mu)
    kl = None if logvar is None else 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)
    if method == "kl":
        return kl
    decoder = run.decoder
    log_sigma = getattr(decoder, "log_sigma", None)
    if method == "recon":
        return likelihoods.nll(decoder(mu, c), x, decoder.likelihood, log_sigma)
    recon = torch.zeros_like(kl)
    for _ in range(ELBO_SAMPLES):
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator).to(mu.device)
        recon += likelihoods.nll(decoder(z, c), x, decoder.likelihood, log_sigma)
    return recon / ELBO_SAMPLES + kl


def default_method(run) -> str:
    """The score `gen score` uses with no --method: the domain's choice where it makes one and
    the run can give it, else the negative ELBO for VAEs and the reconstruction error otherwise."""
    chosen = run.domain.default_score_method
    if chosen and (run.stochastic or chosen not in ("elbo", "kl")):
        return chosen
    return "elbo" if run.stochastic else "recon"


def score(run, items: torch.Tensor, method: str | None, cls: str | None = None, seed: int = 0,
          batch: int = 512) -> np.ndarray:
    method = method or default_method(run)
    if method not in METHODS:
        raise GenError(f"unknown method {method!r}", where="--method", hint=f"use one of {', '.join(METHODS)}")
    if method in ("elbo", "kl") and not run.stochastic:
        raise GenError(f"the {method} score needs a VAE; this run is {run.config['arch']}", where="--method",
                       hint="use recon or mahalanobis")
    generator = torch.Generator().manual_seed(seed)
    if run.conditional:
        candidates = [run.condition(cls)] if cls is not None else [
            torch.eye(len(run.class_names))[i] for i in range(len(run.class_names))]
    else:
        if cls is not None:
            run.condition(cls)  # the clear error
        candidates = [None]
    out = []
    for start in range(0, items.shape[0], batch):
        x = items[start:start + batch].to(run.device)
        best = torch.full((x.shape[0],), math.inf, device=run.device)
        for cand in candidates:
            c = None if cand is None else cand.to(run.device).expand(x.shape[0], -1)
            best = torch.minimum(best, _score_given(run, method, x, c, generator).float())
        out.append(best.cpu())
    return torch.cat(out).numpy().astype(np.float64)


def validation_threshold(run, method: str, quantile: float, cls: str | None = None, seed: int = 0) -> float:
    """The `quantile` of the scores of the run's held-out validation items (normal data by
    construction): a threshold chosen without looking at the inputs."""
    from gencore.training.data import heldout, reload

    if not 0 < quantile < 1:
        raise GenError(f"must be between 0 and 1, got {quantile}", where="--val-quantile")
    held = heldout(run.config, reload(run.config, run.domain))
    return float(np.quantile(score(run, held.items, method, cls, seed), quantile))


def precision_at_k(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """The share of true anomalies among the k highest scores, k the number of true anomalies."""
    k = int(np.sum(labels))
    if k == 0:
        return None
    return float(np.asarray(labels)[np.argsort(-scores, kind="stable")[:k]].mean())


def threshold_for(scores: np.ndarray, contamination: float) -> float:
    """The score above which the top `contamination` share of `scores` lies."""
    if not 0 < contamination < 1:
        raise GenError(f"must be between 0 and 1, got {contamination}", where="--contamination")
    return float(np.quantile(scores, 1 - contamination))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    if len(np.unique(labels)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))
