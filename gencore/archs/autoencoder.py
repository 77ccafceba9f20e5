"""The autoencoder family: ae, vae, beta-vae, cae and dae over one encoder/decoder pair. A run
samples with its decoder alone and encodes with its encoder alone."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from gencore.archs.base import Arch
from gencore.models import ARCHS as NAMES
from gencore.models import STOCHASTIC

MAX_ITEM_VALUES = 1 << 26


class AutoEncoderArch(Arch):
    name = "autoencoder"
    names = NAMES

    def model_spec(self, settings, data) -> dict[str, Any]:
        from gencore.models.autoencoder import model_spec

        cond_dim = 0 if data.conditions is None else int(data.conditions.shape[1])
        layout = {"conditioning": settings.conditioning} if settings.conditioning else {}  # else the default
        return model_spec(settings.arch, data.item_kind, data.item_shape, data.likelihood, cond_dim,
                          settings.latent_dim, settings.width, settings.hidden, **layout)

    def build(self, spec: dict[str, Any]):
        from gencore.models.autoencoder import AutoEncoder

        return AutoEncoder(spec)

    def spec_problem(self, spec: dict[str, Any]) -> str | None:
        latent, shape = spec.get("latent_dim"), spec.get("item_shape")
        if not isinstance(latent, int) or latent < 1 or not shape or None in shape:
            return "latent_dim or item_shape missing"
        if math.prod(shape) > MAX_ITEM_VALUES:
            return f"item_shape {shape} is too large"
        return None

    def stochastic(self, arch: str) -> bool:
        return arch in STOCHASTIC

    def objective(self, domain, data, spec, config, settings, device, dist):
        from gencore.training.autoencoder_objective import AutoEncoderObjective

        return AutoEncoderObjective(domain, data, spec, config, settings, device, dist)

    def describe(self, data, spec: dict[str, Any], settings) -> str:
        n_params = sum(p.numel() for p in self.build(spec).parameters())
        classes = f"{len(data.class_names)} classes" if spec["cond_dim"] else "unconditional"
        return (f"{data.items.shape[0]} items of shape {tuple(data.item_shape)}, {classes}; {settings.arch}, "
                f"latent {spec['latent_dim']}, {n_params:,} parameters")

    def finish(self, run_dir: Path, domain, data, config: dict[str, Any], model, settings) -> dict[str, Any]:
        from gencore.training.finish import finish_autoencoder

        return finish_autoencoder(run_dir, domain, data, config, model, settings)


AUTOENCODER = AutoEncoderArch()
