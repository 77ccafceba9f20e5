"""The studio's decoder at work: a grid of samples, a point of the latent map, a latent set by
sliders, and the path between two picks. Every call is seeded through an explicit generator."""
from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import torch

from gencore.errors import GenError

MAX_PER_CLASS = 64
MAX_TOTAL = 256
MAX_STEPS = 16
MAP_ITEMS = 1500  # items of the run's corpus encoded for the latent map
SLIDER_RANGE = 3.0  # prior standard deviations each way


def domain_options(domain, values: dict[str, Any] | None) -> dict[str, Any]:
    """The domain's sample options from JSON, parsed as `gen sample` parses its flags."""
    from gencore.cli.common import parse_domain_options

    args: list[str] = []
    declared = {o.name: o for o in domain.options if "sample" in o.commands}
    for name, value in (values or {}).items():
        option = declared.get(name)
        if option is None:
            raise GenError(f"the {domain.name} domain has no sample option {name!r}", where="options",
                           hint=f"its options: {', '.join(declared) or 'none'}")
        if value is None or value == "":
            continue
        if option.type is bool:
            args.append(option.flag if value in (True, "true", "1", 1) else "--no-" + option.flag[2:])
        else:
            args += [option.flag, str(value)]
    return parse_domain_options(domain, "sample", args)


def _stems(names: list[str | None], prefix: str) -> list[str]:
    from gencore.cli.common import safe_stem

    counts: dict[str | None, int] = {}
    stems = []
    for name in names:
        counts[name] = counts.get(name, -1) + 1
        stems.append(f"{safe_stem(name) if name is not None else 'sample'}-{prefix}-{counts[name]:02d}")
    return stems


def sample(run, classes: list[str] | None, n: int, temperature: float, seed: int, options: dict[str, Any]):
    """`gen sample` as the page asks for it: items, classes, conditions, latents and file stems."""
    if not 1 <= n <= MAX_PER_CLASS:
        raise GenError(f"must be from 1 to {MAX_PER_CLASS}, got {n}", where="n")
    if n * max(1, len(classes or [])) > MAX_TOTAL:
        raise GenError(f"at most {MAX_TOTAL} items per request", where="n", hint="ask for fewer classes or items")
    items, names, cond = run.sample_with_labels(n, classes or None, seed, temperature, options=options)
    z = run.decoder.sample_latent(len(names), torch.Generator().manual_seed(seed), temperature).cpu()
    if list(items.shape[1:]) != list(run.config["model"]["item_shape"]):
        z = None  # stitched from several windows: no one latent made it
    return items, names, cond, z, _stems(names, f"s{seed}")


def _condition(run, cls: str | None) -> torch.Tensor | None:
    """The class's condition vector; a conditional run with no class given takes its first."""
    if run.conditional and cls is None:
        cls = run.class_names[0]
    return run.condition(cls)


def decode_eps(run, eps: list[float], cls: str | None):
    """A latent given in prior standard deviations per dimension (the sliders)."""
    d = run.latent_dim
    if len(eps) != d or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in eps):
        raise GenError(f"needs {d} finite numbers, one per latent dimension", where="eps")
    decoder = run.decoder
    e = torch.tensor(eps, dtype=torch.float32).clamp(-10, 10)[None]
    z = decoder.prior_mean.cpu() + e @ decoder.prior_chol.cpu().T  # (1, d)
    cond = _condition(run, cls)
    return run.decode(z, None if cond is None else cond[None]), z, cond


def interpolate(run, a, b, steps: int):
    """The path between two items' latents: slerp for VAEs, lines otherwise, classes blended."""
    if not 2 <= steps <= MAX_STEPS:
        raise GenError(f"must be from 2 to {MAX_STEPS}, got {steps}", where="steps")
    for item in (a, b):
        if item.z is None:
            raise GenError("this item was stitched from several windows and has no one latent",
                           where=item.id, hint="pick items sampled at the run's own window size")
    values = run.interpolate(a.z, b.z, a.cond, b.cond, steps)
    t = torch.linspace(0, 1, steps)[:, None]
    z = torch.lerp(a.z[None], b.z[None], t)  # what the sliders show for a step (the decoded path may slerp)
    cond = None if a.cond is None else torch.lerp(a.cond[None], b.cond[None], t)
    return values, z, cond


class LatentMap:
    """The run's `gen latent` map, made once per run: the corpus encoded, PCA to 2-D (the latent
    itself when it is 2-D), and KL or code variance per dimension. PCA is linear, so a point on
    the map decodes: the posterior-mean average plus the point along the two components."""

    def __init__(self):
        self._maps: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, run_id: str, run) -> dict[str, Any]:
        with self._lock:
            if run_id not in self._maps:
                self._maps[run_id] = _latent_map(run)
            return self._maps[run_id]

    def decode(self, run_id: str, run, x: float, y: float, cls: str | None):
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (x, y)):
            raise GenError("needs finite x and y", where="point")
        found = self.get(run_id, run)
        z = torch.tensor(found["mean"], dtype=torch.float32) + x * torch.tensor(found["axes"][0]) + \
            y * torch.tensor(found["axes"][1])
        z = z[None]  # (1, d)
        cond = _condition(run, cls)
        return run.decode(z, None if cond is None else cond[None]), z, cond


def _latent_map(run) -> dict[str, Any]:
    from gencore.training.data import reload, subset
    from gencore.training.autoencoder_objective import ACTIVE_UNIT_THRESHOLD

    corpus = subset(reload(run.config, run.domain), MAP_ITEMS, 0)
    cond = corpus.conditions if run.conditional else None
    mu, logvar = run.encode(corpus.items, cond)
    codes = mu.numpy().astype(np.float64)
    mean = codes.mean(axis=0)
    d = codes.shape[1]
    if d <= 2:
        axes = np.eye(2, d)
        how = "the latent itself"
    else:
        _, s, vt = np.linalg.svd(codes - mean, full_matrices=False)
        axes = vt[:2]
        share = float((s[:2] ** 2).sum() / max((s ** 2).sum(), 1e-12))
        how = f"PCA, {share:.0%} of the variance"
    points = (codes - mean) @ axes.T
    labels = None
    if corpus.conditions is not None and not corpus.multi_label:
        labels = corpus.conditions.argmax(dim=1).tolist()
    variance = mu.var(dim=0, unbiased=False).numpy()
    if logvar is not None:
        per_dim = (0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)).mean(dim=0).numpy()
        measure = "KL (nats per item)"
    else:
        per_dim, measure = variance, "variance of the code"
    return {
        "embedding": how, "items": int(len(codes)), "points": np.round(points, 4).tolist(), "labels": labels,
        "class_names": corpus.class_names if labels is not None else [],
        "mean": mean.tolist(), "axes": axes.tolist(),
        "dimensions": [{"index": i, "value": float(v), "active": bool(variance[i] > ACTIVE_UNIT_THRESHOLD)}
                       for i, v in enumerate(per_dim)],
        "measure": measure, "slider_range": SLIDER_RANGE,
    }
