"""`gen attributes`: fit attribute directions and the mixture prior on a run's training codes,
measure how the decoded samples respond to each direction, and store what ships with the decoder.

The response of an attribute is the mean, over `n` samples, of the attribute measured on what
`gen sample --attr NAME=SHIFT` decodes, at the shifts of gencore.steering.SHIFTS, all from the same
noise. An attribute ships when that response rises with the shift (Spearman >= MIN_SPEARMAN).
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gencore import console
from gencore.errors import GenError
from gencore.steering import MIN_SPEARMAN, SHIFTS, SamplerSettings, Steering, fit_directions, fit_gmm
from gencore.storage import save_tensors

MAX_CODES = 20_000  # training items encoded (a seeded subset of larger corpora)
MIN_EFFECT = 0.1  # and moves, from shift -2 to +2, by at least this share of its training spread


@dataclass
class Response:
    name: str
    means: list[float]  # the attribute's mean at each of SHIFTS
    spearman: float
    effect: float = float("nan")  # (mean at +2 - mean at -2) / training standard deviation

    @property
    def ships(self) -> bool:
        return bool(np.isfinite(self.spearman) and self.spearman >= MIN_SPEARMAN and self.effect >= MIN_EFFECT)


def spearman(x: list[float], y: list[float]) -> float:
    from scipy.stats import spearmanr

    if not np.all(np.isfinite(y)) or np.ptp(y) == 0:
        return float("nan")
    return round(float(spearmanr(x, y).statistic), 9)  # 0.8999999999999998 is 0.9


def training_codes(run, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The run's training items (its held-out split left out), their encoder means and conditions."""
    from gencore.training.data import reload, select, subset

    data = reload(run.config, run.domain)
    held = set(run.config.split.val_indices)
    keep = torch.tensor([i for i in range(data.items.shape[0]) if i not in held], dtype=torch.long)
    data = subset(select(data, keep), MAX_CODES, seed)
    cond = data.conditions if run.conditional else None
    codes, _ = run.encode(data.items, cond)
    return data.items, codes, cond


def measure_response(run, name: str, n: int, seed: int, spread: float = float("nan"),
                     prior: str | None = None) -> Response:
    """Under `prior`, by default the one `gen sample` uses without --prior (run.default_prior)."""
    prior = prior or run.default_prior
    means = []
    for shift in SHIFTS:
        run.sampler = SamplerSettings({name: shift}, prior)
        items, _, _ = run.sample_with_labels(n, None, seed, 1.0, options={})
        values = run.domain.attributes(items, run.config.data)[name]
        means.append(float(np.nanmean(values)) if np.isfinite(values).any() else float("nan"))
    run.sampler = None
    effect = (means[-1] - means[0]) / spread if spread > 0 else float("nan")
    return Response(name, means, spearman(list(SHIFTS), means), effect)


def fit_all(run, seed: int) -> tuple[Steering, dict[str, float], list[str]]:
    """Every attribute's directions and the mixture, the attributes' spread (standard deviation
    over the training reconstructions) and the attributes that do not vary there."""
    _, codes, cond = training_codes(run, seed)
    # Measured on the decoder's reconstructions, not on the items: a small decoder renders only
    # part of each item's attributes (on 8x8 digits, ink of items and of their reconstructions
    # correlate at 0.14), and directions fitted on the items' own values then pointed backwards.
    values = run.domain.attributes(run.decode(codes, cond), run.config.data)
    if not values:
        raise GenError(f"the {run.domain_name} domain declares no attributes", where=str(run.path),
                       hint="attributes come from the domain plugin's `attributes` hook")
    directions, per_class, flat = fit_directions(codes, values, cond)
    weights, means, chols = fit_gmm(codes, cond, run.multi_label, seed)
    spreads = {name: float(np.nanstd(values[name])) for name in directions}
    return Steering(directions, per_class, {}, weights, means, chols), spreads, flat


def fit(run, n: int, seed: int) -> tuple[Steering, list[Response], list[str]]:
    """Directions, mixture and measured responses; the steering holds only attributes that ship.
    Also returns the attributes that do not vary on the training reconstructions."""
    every, spreads, flat = fit_all(run, seed)
    run._steering = every
    responses = [measure_response(run, name, n, seed, spreads[name])
                 for name in console.track(every.names, len(every.names), "measuring responses")]
    shipped = {r.name for r in responses if r.ships}
    steering = Steering({k: v for k, v in every.directions.items() if k in shipped},
                        {k: v for k, v in every.class_directions.items() if k in shipped},
                        {r.name: torch.tensor(r.means) for r in responses if r.ships},
                        every.gmm_weights, every.gmm_means, every.gmm_chols)
    run._steering = steering
    return steering, responses, flat


def is_pretrained(run, asked: str | None) -> bool:
    """Runs that ship with gen (gencore.runs.is_pretrained) or that cannot be written."""
    from gencore.runs import PRETRAINED, is_pretrained as shipped

    if (asked and asked.startswith(PRETRAINED)) or shipped(run.path):
        return True
    return not os.access(run.path, os.W_OK) or not os.access(run.path / "decoder.safetensors", os.W_OK)


def copy_run(run, out: Path) -> Path:
    """A copy of the run folder (checkpoints left out), staged and renamed into place."""
    from gencore.storage import write_folder

    return write_folder(out, lambda staging: shutil.copytree(run.path, staging,
                                                             ignore=shutil.ignore_patterns("checkpoints", ".*")))


def store(run, folder: Path, steering: Steering) -> None:
    """decoder.safetensors of `folder`, rewritten atomically with the steering arrays beside the decoder."""
    state = {**run.decoder.state_dict(), **steering.to_state()}
    save_tensors(folder / "decoder.safetensors", state, "decoder", run.domain_name)
