"""Per-item negative log-likelihoods (in nats) and means for the three decoder likelihoods.

Decoder outputs are parameters laid out like the item: logits for Bernoulli, means for Gaussian
(with a learned per-channel log sigma), and logits over the channel axis for categorical items,
whose channels are the one-hot categories.
"""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

LIKELIHOODS = ("bernoulli", "gaussian", "categorical")


def nll(params: torch.Tensor, target: torch.Tensor, likelihood: str,
        log_sigma: torch.Tensor | None = None, class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Negative log-likelihood per item, (B,). `class_weights` reweights categorical positions."""
    if likelihood == "bernoulli":
        per_elem = F.binary_cross_entropy_with_logits(params, target, reduction="none")
    elif likelihood == "gaussian":
        shape = (1, -1) + (1,) * (params.dim() - 2)
        log_s = log_sigma.clamp(min=-6.0).view(shape) if params.dim() > 2 else log_sigma.clamp(min=-6.0)
        per_elem = 0.5 * ((target - params) * torch.exp(-log_s)) ** 2 + log_s + 0.5 * math.log(2 * math.pi)
    elif likelihood == "categorical":
        index = target.argmax(dim=1)  # (B, *S): targets arrive one-hot on the channel axis
        per_elem = F.cross_entropy(params, index, weight=class_weights, reduction="none")
    else:
        raise ValueError(f"unknown likelihood {likelihood!r}")
    return per_elem.flatten(1).sum(dim=1)


def mean(params: torch.Tensor, likelihood: str) -> torch.Tensor:
    """The likelihood's mean: pixel probabilities, Gaussian means, or category probabilities."""
    if likelihood == "bernoulli":
        return torch.sigmoid(params)
    if likelihood == "gaussian":
        return params
    return torch.softmax(params, dim=1)
