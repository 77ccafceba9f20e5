"""The Python API: `load_run(path)`, then `.sample`, `.encode`, `.decode`, `.reconstruct`,
`.interpolate`. The CLI is a thin layer over this module.

Weights load lazily and separately: sampling reads only decoder.safetensors, encoding only
encoder.safetensors.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch

from gencore.devices import resolve_device
from gencore.errors import GenError
from gencore.models.autoencoder import Decoder, Encoder
from gencore.registry import get_domain
from gencore.runconfig import RunConfig
from gencore.runs import CONFIG, read_config, resolve_run
from gencore.storage import load_tensors, read_json

SAMPLE_CHUNK = 4096
MAX_SAMPLES = 10_000_000  # per command: the per-sample labels and conditions alone fill memory past this


def _fits_in_memory(values: int, what: str) -> None:
    """Refuse work whose float32 tensors would take more than half of this machine's memory."""
    import os

    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    need = 4 * values
    if need > memory / 2:
        raise GenError(f"{what} would need about {need / 2**30:,.1f} GiB of memory, more than half of this "
                       f"machine's {memory / 2**30:,.0f} GiB", where="--n",
                       hint="ask for fewer samples; gen sample --format npy streams large jobs to disk")


def load_run(path: str | Path | None = None, *, device: str | None = "auto",
             domain: str | None = None) -> "Run":
    """Open a run folder (or `latest`). `domain` refuses runs of any other domain."""
    folder = resolve_run(None if path is None else str(path))
    config = read_config(read_json(folder / CONFIG, "run config"), folder)
    if domain is not None and config.domain != domain:
        raise GenError(f"this run belongs to the {config.domain!r} domain, not {domain!r}",
                       where=str(folder), hint=f"pick a run trained with `gen train {domain}`")
    return Run(folder, config, resolve_device(device))


class Run:
    def __init__(self, path: Path, config: RunConfig, device: torch.device):
        self.path, self.config, self.device = Path(path), config, device
        self._decoder: Decoder | None = None
        self._encoder: Encoder | None = None
        self._steering = None  # gencore.steering.Steering, read with the decoder
        self.sampler = None  # gencore.steering.SamplerSettings: `gen sample --attr/--prior`

    # -- facts -------------------------------------------------------------------------------
    @property
    def domain_name(self) -> str:
        return self.config.domain

    @property
    def domain(self):
        from gencore.registry import domain_names

        if self.domain_name not in domain_names():
            raise GenError(f"this run belongs to the {self.domain_name!r} domain, which is not installed "
                           f"(installed: {', '.join(domain_names())})", where=str(self.path),
                           hint="install the plugin that provides it; `gen plugins` lists what is installed")
        return get_domain(self.domain_name)

    @property
    def class_names(self) -> list[str]:
        return list(self.config.class_names)

    @property
    def conditional(self) -> bool:
        return self.config.cond_dim > 0

    @property
    def multi_label(self) -> bool:
        return self.config.multi_label

    @property
    def latent_dim(self) -> int:
        return self.config.model.latent_dim

    @property
    def stochastic(self) -> bool:
        return self.arch.stochastic(self.config.arch)

    # -- weights -----------------------------------------------------------------------------
    def _load(self, module: torch.nn.Module, filename: str, kind: str) -> torch.nn.Module:
        state = load_tensors(self.path / filename, kind, self.domain_name)
        if kind == "decoder":  # attribute directions and the mixture prior travel with the decoder
            from gencore.steering import split_state

            state, self._steering = split_state(state)
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise GenError(f"weights do not fit the model in config.json ({str(exc).splitlines()[0]})",
                           where=str(self.path / filename), hint="the run folder mixes files of different runs") from exc
        return module.to(self.device).eval()

    @property
    def arch(self):
        """The run's arch strategy (gencore.archs): what it can sample, encode and export."""
        from gencore.archs import get_arch

        return get_arch(self.config.arch)

    def _refuse_without_latent(self, what: str) -> None:
        self.arch.refuse_latent(what, str(self.path))

    @property
    def decoder(self) -> Decoder:
        self._refuse_without_latent("sample from")
        if self._decoder is None:
            self._decoder = self._load(Decoder(self.config.model.to_json()), "decoder.safetensors", "decoder")
        return self._decoder

    @property
    def steering(self):
        """The attribute directions and mixture prior stored in decoder.safetensors (possibly empty)."""
        _ = self.decoder
        return self._steering

    @property
    def default_prior(self) -> str:
        """`gen sample`'s prior without --prior: the domain's (Domain.sampling_defaults) where this
        run carries what it needs (a fitted mixture for gmm), else the arch's own normal."""
        prior = getattr(self.domain, "sampling_defaults", {}).get("prior", "normal")
        return "normal" if prior == "gmm" and self.steering.gmm_weights is None else prior

    def sample_latent(self, n: int, generator: torch.Generator, temperature: float = 1.0,
                      cond: torch.Tensor | None = None) -> torch.Tensor:
        """(n, d) latents from the prior, moved by `self.sampler` (`--attr`, `--prior`) when set;
        without it, exactly `decoder.sample_latent`."""
        if self.sampler is None:
            return self.decoder.sample_latent(n, generator, temperature)
        eps = torch.randn(n, self.latent_dim, generator=generator)
        return self.latent_from_noise(eps, generator, temperature, cond)

    def latent_from_noise(self, eps: torch.Tensor, generator: torch.Generator, temperature: float,
                          cond: torch.Tensor | None) -> torch.Tensor:
        """Standard-normal noise (n, d) -> latents under `self.sampler` (for domains that draw
        their own noise, e.g. stitched music windows)."""
        decoder = self.decoder
        if self.sampler is None:
            eps = eps.to(decoder.prior_mean.device)
            return decoder.prior_mean + temperature * eps @ decoder.prior_chol.T
        from gencore.steering import sample_latent

        return sample_latent(self, eps, generator, temperature, cond, self.sampler)

    @property
    def encoder(self) -> Encoder:
        self._refuse_without_latent("encode into")
        if self._encoder is None:
            self._encoder = self._load(Encoder(self.config.model.to_json()), "encoder.safetensors", "encoder")
        return self._encoder

    def model(self):
        """The whole model, as the run's arch builds it (an AutoEncoder, a Denoiser, ...). A run
        without model.safetensors (the shipped runs keep the wheel small) is put together from its
        encoder and decoder, which hold the same weights."""
        model = self.arch.build(self.config.model.to_json())
        if (self.path / "model.safetensors").is_file() or not hasattr(model, "encoder"):
            return self._load(model, "model.safetensors", "model")
        model.encoder, model.decoder = self.encoder, self.decoder
        return model.to(self.device).eval()

    # -- conditions --------------------------------------------------------------------------
    def condition(self, cls: str | None) -> torch.Tensor | None:
        """One `--class` value -> a (K,) condition vector, or None for unconditional runs."""
        if not self.conditional:
            if cls is not None:
                raise GenError("this run is unconditional and takes no class", where="--class",
                               hint="drop --class, or train on labelled data")
            return None
        if cls is None:
            raise GenError("this run is conditional and needs a class", where="--class",
                           hint=f"pass --class with one of: {', '.join(self.class_names[:12])}")
        vector = self.domain.parse_class(str(cls), self.class_names, self.multi_label)
        return torch.tensor(vector, dtype=torch.float32)

    def class_plan(self, classes: Sequence[str] | str | None, n: int) -> tuple[list[str | None], torch.Tensor | None]:
        """Per-sample class labels and conditions: `n` of each class asked for, or, with no class
        on a conditional run, `n` samples spread evenly over all classes."""
        if isinstance(classes, str):
            classes = [classes]
        total = n * max(1, len(classes or []))
        if total > MAX_SAMPLES:
            raise GenError(f"{total:,} samples are more than the {MAX_SAMPLES:,} one command makes", where="--n",
                           hint="split the job over several commands with different --seed values")
        if not self.conditional:
            if classes:
                self.condition(classes[0])  # raises the clear error
            return [None] * n, None
        if not classes:
            names = [self.class_names[i % len(self.class_names)] for i in range(n)]
        else:
            names = [c for c in classes for _ in range(n)]
        unique = list(dict.fromkeys(names))  # parse each class once, even for millions of samples
        vectors = torch.stack([self.condition(c) for c in unique])
        index = {c: i for i, c in enumerate(unique)}
        return names, vectors[torch.tensor([index[c] for c in names], dtype=torch.long)]

    # -- generation --------------------------------------------------------------------------
    @torch.inference_mode()
    def decode(self, z: torch.Tensor, cond: torch.Tensor | None = None, precision: str = "fp32") -> torch.Tensor:
        """Latents (n, d) -> likelihood means (n, *item_shape), on the CPU. `precision` "auto"
        decodes in bf16 on GPUs (gencore.sampling); the default fp32 is exact on every device."""
        from gencore.sampling import BulkDecoder

        out = [chunk.cpu() for chunk in BulkDecoder(self.decoder, self.device, precision).chunks(z, cond)]
        return torch.cat(out) if out else torch.empty(0, *self.config.model.item_shape)

    def sample(self, n: int = 16, cls: Sequence[str] | str | None = None, seed: int = 0,
               temperature: float = 1.0) -> torch.Tensor:
        """`n` samples (of each class in `cls`), as likelihood means (N, *item_shape)."""
        return self.sample_with_labels(n, cls, seed, temperature)[0]

    def sample_with_labels(self, n: int, cls=None, seed: int = 0, temperature: float = 1.0,
                           options: dict | None = None, precision: str = "fp32"):
        """Samples, their class labels and conditions. Domain `options` (from `gen sample`) go
        to the domain's own `generate` hook, which may replace plain decoder sampling."""
        self._refuse_without_latent("sample from")
        if n < 1:
            raise GenError(f"must be at least 1, got {n}", param="n")
        if not (temperature > 0 and math.isfinite(temperature)):
            raise GenError(f"must be positive and finite, got {temperature}", param="temperature")
        names, cond = self.class_plan(cls, n)
        _fits_in_memory(len(names) * math.prod(self.config.model.item_shape), f"{len(names):,} samples")
        if options is not None:
            items = self.domain.generate(self, names, cond, options, seed, temperature)
            if items is not None:
                return items, names, cond
        generator = torch.Generator().manual_seed(seed)
        z = self.sample_latent(len(names), generator, temperature, cond)
        return self.decode(z, cond, precision), names, cond

    # -- encoding ----------------------------------------------------------------------------
    @torch.inference_mode()
    def encode(self, items: torch.Tensor, cond: torch.Tensor | None = None):
        """Items (n, *item_shape) -> posterior means (n, d) and log-variances (None for ae/cae/dae)."""
        mus, logvars = [], []
        for start in range(0, items.shape[0], SAMPLE_CHUNK):
            xc = items[start:start + SAMPLE_CHUNK].to(self.device)
            cc = None if cond is None else cond[start:start + SAMPLE_CHUNK].to(self.device)
            mu, logvar = self.encoder(xc, cc)
            mus.append(mu.float().cpu())
            logvars.append(None if logvar is None else logvar.float().cpu())
        return torch.cat(mus), (None if logvars[0] is None else torch.cat(logvars))

    def reconstruct(self, items: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        mu, _ = self.encode(items, cond)
        return self.decode(mu, cond)

    def interpolate(self, z_a: torch.Tensor, z_b: torch.Tensor, c_a: torch.Tensor | None,
                    c_b: torch.Tensor | None, steps: int) -> torch.Tensor:
        """Decode `steps` points from (z_a, c_a) to (z_b, c_b): slerp for VAEs, whose latents
        live on a Gaussian shell, straight lines for deterministic codes."""
        if steps < 2:
            raise GenError(f"must be at least 2, got {steps}", param="steps")
        t = torch.linspace(0, 1, steps)
        path = slerp(z_a, z_b, t) if self.stochastic else torch.lerp(z_a[None], z_b[None], t[:, None])
        cond = None if c_a is None else torch.lerp(c_a[None], c_b[None], t[:, None])
        return self.decode(path, cond)


def _export(self, out, format: str = "onnx", **options):
    """Export the decoder: format "onnx" (a file; see gencore.export) or "safetensors" (a
    decoder-only run folder). Returns the path written."""
    from gencore import export

    out = Path(out)
    if format == "onnx":
        export.export_onnx(self, out, **options)
    elif format == "safetensors":
        export.export_bundle(self, out)
    else:
        raise GenError(f"unknown export format {format!r}", where="--format", hint="use onnx or safetensors")
    return out


Run.export = _export


def _score(self, items: torch.Tensor, method: str | None = None, cls: str | None = None, seed: int = 0):
    """One anomaly score per item, higher = more unusual, by any of `gencore.scoring.METHODS`
    ("recon", "elbo", "ratio+knn", ...); None: as `gen score` chooses. For a conditional run the
    minimum over classes unless `cls` is given."""
    from gencore import scoring

    return scoring.score(self, items, method, cls, seed)


Run.score = _score


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for VAE latents), (steps, d)."""
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega.abs() < 1e-4:
        return torch.lerp(a[None], b[None], t[:, None])
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so)[:, None] * a + (torch.sin(t * omega) / so)[:, None] * b
