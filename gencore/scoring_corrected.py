"""The parts of the corrected anomaly scores that are not the model: how complex an input is, and a
background model of low-level statistics.

Likelihood scores confuse simplicity with normality: a plain input gets a high likelihood whatever
its class (Nalisnick et al. 2019). Two corrections take the simple part out:

- **input complexity** (Serrà et al. 2020): the lossless compressed length of the input quantised
  to 8 bits (PNG for images, zlib for the rest), in nats. `gen score --method complexity`
  subtracts from the negative ELBO the part that complexity explains on the run's own held-out
  normal items (a least-squares line), since the model's likelihood and the 8-bit code are not in
  the same units for every domain.
- **a background model** (the likelihood ratio of Ren et al. 2019): a small local model, fitted on
  the run's training items, that knows only local correlations: each value from its causal
  neighbours (the 4 above and to the left in an image, the 4 preceding steps of a series), by
  logistic regression for pixels in [0, 1] and least squares otherwise; a full-covariance
  Gaussian for feature vectors. Its negative log-likelihood is the code length of an adaptive
  compressor that knows the training data's local statistics. `--method ratio` subtracts from the
  negative ELBO the line of it fitted on the held-out normals, as for complexity: the ELBO less
  b times the background NLL, a likelihood ratio with the background raised to a fitted power b.
  The plain ratio (b = 1) over-corrects: on 8x8 digits b comes out near 0.5, and with b = 1 a
  held-out 9 scored as more normal than the seen 1s (ROC AUC 0.48).
"""
from __future__ import annotations

import io
import math
import zlib

import numpy as np
import torch
from torch.nn import functional as F

from gencore.errors import GenError

CONTEXT = 4  # causal neighbours per value in the background model
STANDARDISED_RANGE = 4.0  # standardised values (gaussian likelihood) quantise over +-4 sd


def quantised(items: torch.Tensor, likelihood: str) -> np.ndarray:
    """Items as uint8: [0, 1] intensities times 255, standardised values over +-4 sd, category indices."""
    if likelihood == "bernoulli":
        scaled = items.clamp(0, 1) * 255
    elif likelihood == "gaussian":
        scaled = (items.clamp(-STANDARDISED_RANGE, STANDARDISED_RANGE) + STANDARDISED_RANGE) * (255 / 8)
    else:
        return items.argmax(dim=1).clamp(max=255).to(torch.uint8).numpy()
    return scaled.round().to(torch.uint8).numpy()


def compressed_nats(items: torch.Tensor, likelihood: str) -> np.ndarray:
    """Lossless compressed length of each item (N,) in nats: PNG for 2-D grids, zlib otherwise."""
    from PIL import Image

    codes = quantised(items.cpu(), likelihood)
    out = np.empty(len(codes))
    for i, code in enumerate(codes):
        if code.ndim == 3:  # (C, H, W): channels stacked vertically as one grey image
            buf = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(code.reshape(-1, code.shape[-1]))).save(buf, format="PNG",
                                                                                       compress_level=9)
            size = len(buf.getvalue())
        else:
            size = len(zlib.compress(np.ascontiguousarray(code).tobytes(), 9))
        out[i] = size * 8 * math.log(2)
    return out


def complexity_line(base: np.ndarray, lengths: np.ndarray) -> tuple[float, float]:
    """Intercept and slope of the least-squares line of `base` scores on compressed lengths."""
    if len(base) < 3 or np.ptp(lengths) == 0:
        return float(np.mean(base)), 0.0
    slope, intercept = np.polyfit(lengths, base, 1)
    return float(intercept), float(slope)


def _neighbours(x: torch.Tensor) -> torch.Tensor:
    """Causal neighbours of every value: (B, C, *S, CONTEXT), zero outside the item."""
    if x.dim() == 4:  # (B, C, H, W): up-left, up, up-right, left
        h, w = x.shape[-2:]
        p = F.pad(x, (1, 1, 1, 0))
        parts = [p[..., :h, :w], p[..., :h, 1:w + 1], p[..., :h, 2:w + 2], p[..., 1:h + 1, :w]]
    else:  # (B, C, L): the CONTEXT preceding steps
        n = x.shape[-1]
        p = F.pad(x, (CONTEXT, 0))
        parts = [p[..., CONTEXT - k:CONTEXT - k + n] for k in range(1, CONTEXT + 1)]
    return torch.stack(parts, dim=-1)


class Background:
    """The low-capacity background model of a run's items (see the module docstring)."""

    def __init__(self, train: torch.Tensor, likelihood: str):
        if likelihood == "categorical":
            raise GenError("the ratio score needs pixel or real-valued items; this run's are categorical",
                           where="--method", hint="use elbo, complexity or posterior")
        self.likelihood = likelihood
        self.vector = train.dim() == 2
        x = train.double()
        if self.vector:  # (N, D): a full-covariance Gaussian, ridge-regularised
            self.mean = x.mean(dim=0)
            cov = torch.cov(x.T).reshape(x.shape[1], x.shape[1]) + 1e-3 * torch.eye(x.shape[1], dtype=x.dtype)
            self.chol = torch.linalg.cholesky(cov)
            return
        feats = torch.cat([_neighbours(x), torch.ones(*x.shape, 1, dtype=x.dtype)], dim=-1)
        feats = feats.movedim(1, 0).reshape(x.shape[1], -1, CONTEXT + 1)  # (C, M, CONTEXT + 1)
        target = x.movedim(1, 0).reshape(x.shape[1], -1)  # (C, M)
        if likelihood == "bernoulli":
            self.weights = torch.stack([_logistic_fit(f, t) for f, t in zip(feats, target)])
        else:
            solved = torch.linalg.lstsq(feats, target.unsqueeze(-1)).solution  # (C, CONTEXT + 1, 1)
            self.weights = solved.squeeze(-1)
            resid = target - (feats @ solved).squeeze(-1)
            self.log_sigma = 0.5 * torch.log(resid.pow(2).mean(dim=1).clamp_min(1e-6))  # (C,)

    def nll(self, items: torch.Tensor, batch: int = 1024) -> np.ndarray:
        """Negative log-likelihood of each item under the background model, (N,) nats."""
        return np.concatenate([self._nll(items[i:i + batch]) for i in range(0, items.shape[0], batch)] or [np.empty(0)])

    @torch.no_grad()
    def _nll(self, items: torch.Tensor) -> np.ndarray:
        x = items.double().cpu()
        if self.vector:
            diff = torch.linalg.solve_triangular(self.chol, (x - self.mean).T, upper=False)  # (D, N)
            logdet = 2 * torch.log(torch.diagonal(self.chol)).sum()
            d = x.shape[1]
            return (0.5 * diff.pow(2).sum(dim=0) + 0.5 * logdet + 0.5 * d * math.log(2 * math.pi)).numpy()
        feats = torch.cat([_neighbours(x), torch.ones(*x.shape, 1, dtype=x.dtype)], dim=-1)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        pred = (feats * self.weights.view(*shape, CONTEXT + 1)).sum(dim=-1)  # (B, C, *S)
        if self.likelihood == "bernoulli":
            per = F.binary_cross_entropy_with_logits(pred, x.clamp(0, 1), reduction="none")
        else:
            log_s = self.log_sigma.view(shape)
            per = 0.5 * ((x - pred) * torch.exp(-log_s)) ** 2 + log_s + 0.5 * math.log(2 * math.pi)
        return per.flatten(1).sum(dim=1).numpy()


def _logistic_fit(feats: torch.Tensor, target: torch.Tensor, steps: int = 50) -> torch.Tensor:
    """Logistic regression with soft targets in [0, 1] by L-BFGS: weights (CONTEXT + 1,)."""
    weights = torch.zeros(feats.shape[1], dtype=feats.dtype, requires_grad=True)
    optimiser = torch.optim.LBFGS([weights], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = F.binary_cross_entropy_with_logits(feats @ weights, target.clamp(0, 1))
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(closure)
    return weights.detach()
