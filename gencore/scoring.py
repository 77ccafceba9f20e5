"""`gen score`: one anomaly score per input, higher meaning more anomalous.

- `recon`: the reconstruction's negative log-likelihood (nats) at the posterior mean;
- `elbo`: the negative ELBO, averaged over posterior samples (VAEs only);
- `mahalanobis`: the encoder alone (encoder.safetensors): the squared Mahalanobis distance of the
  posterior mean from the training codes;
- `kl`: the encoder alone (VAEs only): the KL divergence of the posterior from the N(0, I) prior;
- `complexity`: the negative ELBO (recon for deterministic archs) less the part that the input's
  compressed length explains (Serrà et al. 2020; see scoring_corrected.py);
- `ratio`: the negative ELBO less the part that a background model of local statistics explains
  (a likelihood ratio in the manner of Ren et al. 2019, its exponent fitted; see scoring_corrected.py);
- `posterior` (conditional runs): -log of the largest class posterior p(c | x), from the
  per-class ELBOs: high when no class explains the input clearly better than the others;
- `knn`: the distance from the input's posterior mean to the nearest training code (per class
  for conditional runs; see scoring_latent.py);
- `A+knn` (`elbo+knn`, `recon+knn`, `complexity+knn`, `ratio+knn`): the sum of score A and the knn
  distance, each standardised by its mean and spread on the run's held-out normal items: a
  likelihood score and a distance in code space miss different anomalies.

For a conditional run without `--class`, an input's score is the minimum over the classes: an
input is normal if it fits some class.
"""
from __future__ import annotations

import numpy as np
import torch

from gencore.errors import GenError
from gencore.models import likelihoods

SINGLE = ("recon", "elbo", "mahalanobis", "kl", "complexity", "ratio", "posterior", "knn")
COMBINED = ("elbo+knn", "recon+knn", "complexity+knn", "ratio+knn")
METHODS = SINGLE + COMBINED
ENCODER_ONLY = ("mahalanobis", "kl")
CORRECTED = ("complexity", "ratio", "posterior")
ELBO_SAMPLES = 8
BACKGROUND_ITEMS = 2000  # the background model has 5 weights per channel: a few thousand items fit it


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
    the run can give it, else the negative ELBO for VAEs and the reconstruction error otherwise.
    An encoder-only export (no decoder.safetensors) scores with the encoder alone."""
    if not (run.path / "decoder.safetensors").is_file():
        return "kl" if run.stochastic else "mahalanobis"
    chosen = run.domain.default_score_method
    if chosen and (run.stochastic or chosen not in ("elbo", "kl")) and (chosen != "posterior" or run.conditional):
        return chosen
    return "elbo" if run.stochastic else "recon"


def base_method(run) -> str:
    """The likelihood score the corrected methods start from."""
    return "elbo" if run.stochastic else "recon"


def _check(run, method: str, cls: str | None) -> None:
    if method not in METHODS:
        raise GenError(f"unknown method {method!r}", where="--method", hint=f"use one of {', '.join(METHODS)}")
    if method.split("+")[0] in ("elbo", "kl") and not run.stochastic:
        raise GenError(f"the {method} score needs a VAE; this run is {run.config['arch']}", where="--method",
                       hint="use recon or mahalanobis")
    if method == "posterior" and (not run.conditional or len(run.class_names) < 2 or cls is not None):
        raise GenError("the posterior score compares the classes of a conditional run with two or more classes",
                       where="--method", hint="use it without --class on a conditional run, or use complexity")


def per_class(run, items: torch.Tensor, method: str, cls: str | None = None, seed: int = 0,
              batch: int = 512) -> np.ndarray:
    """Scores (N, K) of every item against each candidate class (K = 1 without classes, or with `cls`)."""
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
        columns = []
        for cand in candidates:
            c = None if cand is None else cand.to(run.device).expand(x.shape[0], -1)
            columns.append(_score_given(run, method, x, c, generator).float())
        out.append(torch.stack(columns, dim=1).cpu())
    return torch.cat(out).numpy().astype(np.float64)


def score_many(run, items: torch.Tensor, methods: list[str], cls: str | None = None, seed: int = 0,
               batch: int = 512) -> dict[str, np.ndarray]:
    """Several methods at once, sharing the per-class likelihoods they all start from."""
    for method in methods:
        _check(run, method, cls)
    out: dict[str, np.ndarray] = {}
    base = base_method(run)
    matrix = None
    wanted = set(methods) | {part for m in methods if m in COMBINED for part in m.split("+")}
    if any(m in CORRECTED or m == base for m in wanted):
        matrix = per_class(run, items, base, cls, seed, batch)  # (N, K)
        out[base] = matrix.min(axis=1)
    combined_parts = sorted({part for m in wanted if m in COMBINED for part in m.split("+")})
    if combined_parts:  # every part's spread on the held-out items, in one pass
        _combined(run, {part: np.zeros(0) for part in combined_parts}, cls, seed)
    for method in sorted(wanted, key=lambda m: (m in COMBINED, m)):  # the parts before their sums
        if method in out:
            continue
        if method in COMBINED:
            out[method] = _combined(run, {part: out[part] for part in method.split("+")}, cls, seed)
        elif method == "knn":
            out[method] = _neighbours(run).distances(items, _class_index(run, cls))
        elif method == "posterior":  # -log max_c p(c | x) = min_c E_c + log sum_c exp(-E_c)
            out[method] = matrix.min(axis=1) + np.logaddexp.reduce(-matrix, axis=1)
        elif method in ("complexity", "ratio"):
            out[method] = _corrected(run, items, out[base], cls, seed, method)
        else:
            out[method] = per_class(run, items, method, cls, seed, batch).min(axis=1)
    return {m: out[m] for m in methods}


def score(run, items: torch.Tensor, method: str | None, cls: str | None = None, seed: int = 0,
          batch: int = 512) -> np.ndarray:
    method = method or default_method(run)
    return score_many(run, items, [method], cls, seed, batch)[method]


def _training_data(run, why: str):
    """The run's corpus, reloaded once per opened run, or one clear error naming the score."""
    from gencore.training.data import reload

    if "_training_data" not in run.__dict__:
        try:
            run.__dict__["_training_data"] = reload(run.config, run.domain)
        except GenError as exc:
            raise GenError(f"the {why} needs the run's training data, which cannot be reloaded ({exc.line()})",
                           where="--method", hint="restore the training data, or use elbo") from None
    return run.__dict__["_training_data"]


def _training_part(run, why: str):
    """The training items and their conditions, the validation split left out."""
    data = _training_data(run, why)
    train = torch.ones(data.items.shape[0], dtype=torch.bool)
    train[torch.tensor(run.config["split"]["val_indices"], dtype=torch.long)] = False
    return data.items[train], None if data.conditions is None else data.conditions[train]


def _validation_items(run, why: str) -> torch.Tensor:
    from gencore.training.data import heldout

    return heldout(run.config, _training_data(run, why)).items


def _class_index(run, cls: str | None) -> int | None:
    return None if cls is None or not run.conditional else int(run.condition(cls).argmax())


def _neighbours(run):
    from gencore.scoring_latent import LatentNeighbours

    if "_neighbours" not in run.__dict__:
        run.__dict__["_neighbours"] = LatentNeighbours(run, *_training_part(run, "knn score"))
    return run.__dict__["_neighbours"]


def _combined(run, parts: dict[str, np.ndarray], cls: str | None, seed: int) -> np.ndarray:
    """The sum of the parts' scores, each standardised by its mean and spread on the held-out items."""
    scales = run.__dict__.setdefault("_held_scales", {})
    missing = [part for part in parts if (part, cls) not in scales]
    if missing:
        held = _validation_items(run, f"{'+'.join(parts)} score")
        if held.shape[0] < 2:
            raise GenError(f"the {'+'.join(parts)} score standardises on the run's held-out items, and it has "
                           f"{held.shape[0]}", where="--method", hint="use one score alone, e.g. --method elbo")
        for part, on_held in score_many(run, held, missing, cls, seed).items():
            scales[(part, cls)] = (float(on_held.mean()), float(on_held.std()) or 1.0)
    return sum((scores - scales[(part, cls)][0]) / scales[(part, cls)][1] for part, scores in parts.items())


def _corrected(run, items: torch.Tensor, base: np.ndarray, cls: str | None, seed: int, method: str) -> np.ndarray:
    """`base` less the line of the base score on the input's complexity (compressed length for
    `complexity`, the background model's NLL for `ratio`), fitted on the run's held-out normals."""
    from gencore.scoring_corrected import complexity_line, compressed_nats

    if method == "complexity":
        def measure(x):
            return compressed_nats(x, run.decoder.likelihood)
    else:
        measure = _background(run).nll
    lines = run.__dict__.setdefault("_correction_lines", {})
    if (method, cls) not in lines:
        held_base = run.__dict__.setdefault("_held_base", {})
        if cls not in held_base:
            held = _validation_items(run, f"{method} score")
            held_base[cls] = (held, per_class(run, held, base_method(run), cls, seed).min(axis=1))
        held, held_scores = held_base[cls]
        lines[(method, cls)] = complexity_line(held_scores, measure(held))
    intercept, slope = lines[(method, cls)]
    return base - (intercept + slope * measure(items))


def _background(run):
    """The background model of the run's training items (the held-out split left out)."""
    from gencore.scoring_corrected import Background

    if "_background" not in run.__dict__:
        items, _ = _training_part(run, "ratio score's background model")
        if items.shape[0] > BACKGROUND_ITEMS:  # a seeded subset keeps memory bounded on large corpora
            items = items[torch.randperm(items.shape[0], generator=torch.Generator().manual_seed(0))[:BACKGROUND_ITEMS]]
        run.__dict__["_background"] = Background(items, run.decoder.likelihood)
    return run.__dict__["_background"]


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
