"""Designer controls: attribute directions in the latent space, and an ex-post prior.

A domain measures attributes on items (`Domain.attributes`). From the encoder means of the
training items, each attribute gets a direction: the difference between the mean code of the
top and of the bottom quartile (as MusicVAE did; the attribute measured on each item's
reconstruction, quartiles taken within each condition), whitened by the codes' covariance, and
scaled to one standard deviation of the codes along it. Single-label runs keep one direction per class (of that class's items) beside the
global one; multi-label runs one per class bit beside the global one, and sample with the global.

The ex-post prior is one Gaussian mixture per class fitted on the training codes (Ghosh et al.
2020; Pythae's GMM sampler). Everything is stored as arrays in decoder.safetensors under the
`steering.` prefix, so the decoder-only path and the ONNX graph (gencore.export) use it.

`latent_from_noise` is the one sampler: gen and the ONNX graph both run it, from standard-normal
`noise` (B, d) and, for the mixture, one uniform draw per sample picking its component.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import torch

from gencore.errors import GenError

PREFIX = "steering."
SHIFTS = (-2.0, -1.0, 0.0, 1.0, 2.0)
MIN_SPEARMAN = 0.9  # an attribute ships when its response to the shift is this monotone
MIN_CLASS_ITEMS = 16  # fewer items of a class: its attribute directions fall back to the global one
GMM_COMPONENTS = 10
GMM_MAX_ITEMS = 20_000
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class Steering:
    """What decoder.safetensors holds beside the decoder: per attribute a global direction (d,),
    per-class directions (K, d) or None, and the response measured at SHIFTS; the mixture prior
    as stacked arrays, per class (K, M, ...) or one for all (1, M, ...)."""

    directions: dict[str, torch.Tensor] = field(default_factory=dict)
    class_directions: dict[str, torch.Tensor] = field(default_factory=dict)
    responses: dict[str, torch.Tensor] = field(default_factory=dict)
    gmm_weights: torch.Tensor | None = None  # (G, M)
    gmm_means: torch.Tensor | None = None  # (G, M, d)
    gmm_chols: torch.Tensor | None = None  # (G, M, d, d)

    @property
    def names(self) -> list[str]:
        return sorted(self.directions)

    def to_state(self) -> dict[str, torch.Tensor]:
        state = {}
        for name, vector in self.directions.items():
            state[f"{PREFIX}attr.{name}.global"] = vector
            if name in self.class_directions:
                state[f"{PREFIX}attr.{name}.classes"] = self.class_directions[name]
            if name in self.responses:
                state[f"{PREFIX}attr.{name}.response"] = self.responses[name]
        if self.gmm_weights is not None:
            state[f"{PREFIX}gmm.weights"] = self.gmm_weights
            state[f"{PREFIX}gmm.means"] = self.gmm_means
            state[f"{PREFIX}gmm.chols"] = self.gmm_chols
        return {k: v.float().contiguous() for k, v in state.items()}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> "Steering":
        out = cls()
        for key, value in state.items():
            parts = key[len(PREFIX):].split(".")
            if parts[0] == "attr" and len(parts) == 3:
                target = {"global": out.directions, "classes": out.class_directions,
                          "response": out.responses}.get(parts[2])
                if target is not None:
                    target[parts[1]] = value.float()
            elif parts[0] == "gmm" and len(parts) == 2:
                setattr(out, f"gmm_{parts[1]}", value.float())
        return out


def split_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], Steering]:
    """decoder.safetensors -> (the decoder's own state, the steering arrays)."""
    own = {k: v for k, v in state.items() if not k.startswith(PREFIX)}
    return own, Steering.from_state({k: v for k, v in state.items() if k.startswith(PREFIX)})


# -- fitting --------------------------------------------------------------------------------------
def fit_directions(codes: torch.Tensor, values: dict[str, np.ndarray], conditions: torch.Tensor | None
                   ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[str]]:
    """Codes (N, d) and attributes name -> (N,) -> global directions, per-class directions (K, d),
    and the attributes that do not vary on the data (no direction)."""
    groups = np.zeros(len(codes), dtype=np.int64) if conditions is None else \
        np.unique(conditions.numpy() > 0.5, axis=0, return_inverse=True)[1].reshape(-1)
    globals_, per_class, flat = {}, {}, []
    for name, value in values.items():
        value = np.asarray(value, dtype=np.float64)
        vector = _direction(codes, value, groups)
        if vector is None:
            flat.append(name)
            continue
        globals_[name] = vector
        if conditions is not None:
            rows = []
            for k in range(conditions.shape[1]):
                members = (conditions[:, k] > 0.5).numpy()
                own = _direction(codes[torch.from_numpy(members)], value[members], groups[members]) \
                    if members.sum() >= MIN_CLASS_ITEMS else None
                rows.append(vector if own is None else own)
            per_class[name] = torch.stack(rows)
    return globals_, per_class, flat


def _direction(codes: torch.Tensor, value: np.ndarray, groups: np.ndarray) -> torch.Tensor | None:
    """Mean code of the top quartile minus that of the bottom one, taken within each group of
    items sharing a condition and averaged by size (across conditions the codes of a conditional
    model hold what the condition does not), whitened, and scaled to one standard deviation of the
    codes along it; None when the attribute does not vary."""
    finite = np.isfinite(value)
    codes, value, groups = codes[torch.from_numpy(finite)].double(), value[finite], groups[finite]
    total, weight = torch.zeros(codes.shape[1], dtype=torch.float64), 0
    for g in np.unique(groups):
        members = groups == g
        diff = _quartile_difference(codes[torch.from_numpy(members)], value[members])
        if diff is not None:
            total, weight = total + members.sum() * diff, weight + members.sum()
    if not weight:
        return None
    # Whitened by the codes' within-condition covariance (Fisher's discriminant): the raw mean
    # difference is dominated by the codes' main axis ("more of everything"), and on a levels run
    # every attribute got the same direction up to sign (cosine 0.99).
    centred = codes.clone()
    for g in np.unique(groups):
        members = torch.from_numpy(groups == g)
        centred[members] -= centred[members].mean(0)
    covariance = centred.T @ centred / max(1, len(centred) - 1)
    diff = torch.linalg.solve(covariance + 1e-6 * torch.eye(len(diff := total / weight), dtype=torch.float64), diff)
    norm = diff.norm()
    if not norm > 1e-12:
        return None
    unit = diff / norm
    spread = (codes @ unit).std()
    return (unit * spread).float()  # (d,)


def _quartile_difference(codes: torch.Tensor, value: np.ndarray) -> torch.Tensor | None:
    if len(value) < 8:
        return None
    low, high = np.quantile(value, [0.25, 0.75])
    bottom, top = value <= low, value >= high
    if low == high:  # many ties (e.g. most windows have no enemy): split at the tied value
        bottom, top = value <= low, value > low
        if not top.any():
            bottom, top = value < low, value >= low
    if not top.any() or not bottom.any():
        return None
    return codes[torch.from_numpy(top)].mean(0) - codes[torch.from_numpy(bottom)].mean(0)


def fit_gmm(codes: torch.Tensor, conditions: torch.Tensor | None, multi_label: bool, seed: int
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One Gaussian mixture per class (one for all on unconditional and multi-label runs), fitted
    on training codes with a seeded sklearn GaussianMixture: weights (G, M), means (G, M, d) and
    Cholesky factors of the covariances (G, M, d, d)."""
    from sklearn.mixture import GaussianMixture

    x = codes.double().numpy()
    groups = [np.ones(len(x), dtype=bool)] if conditions is None or multi_label else \
        [(conditions[:, k] > 0.5).numpy() for k in range(conditions.shape[1])]
    rng = np.random.default_rng(seed)
    weights, means, chols = [], [], []
    for members in groups:
        part = x[members] if members.any() else x
        if len(part) > GMM_MAX_ITEMS:
            part = part[rng.choice(len(part), GMM_MAX_ITEMS, replace=False)]
        m = max(1, min(GMM_COMPONENTS, len(part) // 10))
        gmm = GaussianMixture(m, covariance_type="full", reg_covar=1e-4, random_state=seed).fit(part)
        w, mu, cov = gmm.weights_, gmm.means_, gmm.covariances_
        pad = GMM_COMPONENTS - m  # every class gets GMM_COMPONENTS slots; padding weighs nothing
        weights.append(np.concatenate([w, np.zeros(pad)]))
        means.append(np.concatenate([mu, np.repeat(mu[:1], pad, axis=0)]))
        chols.append(np.concatenate([np.linalg.cholesky(cov), np.repeat(np.linalg.cholesky(cov[:1]), pad, axis=0)]))
    as_t = lambda a: torch.tensor(np.stack(a), dtype=torch.float32)  # noqa: E731
    return as_t(weights), as_t(means), as_t(chols)


# -- sampling -------------------------------------------------------------------------------------
def parse_shifts(texts: list[str] | None, steering: Steering | None) -> dict[str, float]:
    """`--attr NAME=SHIFT` values -> name -> shift (in standard deviations along the direction)."""
    shifts: dict[str, float] = {}
    known = steering.names if steering is not None else []
    for text in texts or []:
        name, sep, value = text.partition("=")
        name = name.strip()
        try:
            shift = float(value)
        except ValueError:
            shift = float("nan")
        if not sep or not np.isfinite(shift):
            raise GenError(f"expected NAME=SHIFT, got {text!r}", where="--attr",
                           hint="e.g. --attr enemies=+2 (shifts in standard deviations)")
        if name not in known:
            listed = ", ".join(known) if known else "none: run `gen attributes -r RUN -o COPY` first"
            raise GenError(f"unknown attribute {name!r}; this run knows: {listed}", where="--attr",
                           hint="`gen attributes -r RUN` lists them with their measured response")
        if abs(shift) > 10:
            raise GenError(f"shift must be from -10 to 10 standard deviations, got {shift}", where="--attr",
                           hint="e.g. --attr enemies=+2")
        shifts[name] = shifts.get(name, 0.0) + shift
    return shifts


def stacked_directions(steering: Steering, names: list[str], per_class: bool) -> torch.Tensor:
    """(A, K, d) per-class directions, or (A, 1, d) global ones, in the order of `names`."""
    if per_class:
        return torch.stack([steering.class_directions[n] for n in names])
    return torch.stack([steering.directions[n][None] for n in names])


def latent_from_noise(prior_mean: torch.Tensor, prior_chol: torch.Tensor, noise: torch.Tensor,
                      temperature: float | torch.Tensor = 1.0, condition: torch.Tensor | None = None,
                      shifts: torch.Tensor | None = None, directions: torch.Tensor | None = None,
                      uniform: torch.Tensor | None = None, gmm: tuple[torch.Tensor, ...] | None = None,
                      per_class_gmm: bool = False) -> torch.Tensor:
    """noise (B, d) standard normal -> latents (B, d). The normal prior: prior_mean + T noise L^T.
    With `gmm` (weights (G, M), means (G, M, d), chols (G, M, d, d)) and `uniform` (B,) in [0, 1):
    the component whose cumulative weight first exceeds the draw, mean_c + T L_c noise. `shifts`
    (B, A) move along `directions` (A, K, d): the sample's class direction (K > 1) or the global."""
    if gmm is None:
        z = prior_mean + temperature * noise @ prior_chol.T
    else:
        weights, means, chols = gmm
        group = condition.argmax(dim=1) if per_class_gmm else torch.zeros(noise.shape[0], dtype=torch.long)
        cumulative = torch.cumsum(weights, dim=1)[group]  # (B, M)
        component = (uniform[:, None] >= cumulative[:, :-1]).sum(dim=1)  # (B,)
        mean = means[group, component]  # (B, d)
        chol = chols[group, component]  # (B, d, d)
        z = mean + temperature * (chol @ noise[:, :, None])[:, :, 0]
    if shifts is not None:
        if directions.shape[1] > 1:  # per class: the class's own direction of each attribute
            per_sample = torch.einsum("bk,akd->bad", condition, directions)  # (B, A, d)
        else:
            per_sample = directions[:, 0][None].expand(noise.shape[0], -1, -1)
        z = z + (shifts[:, :, None] * per_sample).sum(dim=1)
    return z


@dataclass
class SamplerSettings:
    """What `gen sample --attr/--prior` asks of a run's sampler."""

    shifts: dict[str, float] = field(default_factory=dict)
    prior: str = "normal"


def sample_latent(run, eps: torch.Tensor, generator: torch.Generator, temperature: float,
                  cond: torch.Tensor | None, settings: SamplerSettings) -> torch.Tensor:
    """Latents for noise `eps` (B, d) drawn by the caller, under `settings`. The normal prior
    without shifts is exactly `Decoder.sample_latent` (the same numbers for the same seed)."""
    decoder, steering = run.decoder, run.steering
    gmm = uniform = None
    if settings.prior == "gmm":
        if steering is None or steering.gmm_weights is None:
            raise GenError("this run has no mixture prior", where="--prior",
                           hint="fit one with `gen attributes -r RUN -o COPY` (or use --prior normal)")
        uniform = torch.rand(eps.shape[0], generator=generator)
        gmm = (steering.gmm_weights, steering.gmm_means, steering.gmm_chols)
    shifts = directions = None
    if settings.shifts:
        names = list(settings.shifts)
        shifts = torch.tensor([[settings.shifts[n] for n in names]], dtype=torch.float32).expand(eps.shape[0], -1)
        directions = stacked_directions(steering, names, per_class=uses_class_directions(run, steering))
    device = decoder.prior_mean.device
    cond_cpu = None if cond is None else cond.float().cpu()
    z = latent_from_noise(decoder.prior_mean.cpu(), decoder.prior_chol.cpu(), eps.cpu(), temperature, cond_cpu,
                          shifts, directions, uniform, gmm, per_class_gmm=gmm_per_class(run))
    return z.to(device)


def uses_class_directions(run, steering: Steering) -> bool:
    return run.conditional and not run.multi_label and bool(steering.class_directions)


def gmm_per_class(run) -> bool:
    return run.conditional and not run.multi_label
