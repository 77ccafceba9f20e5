"""The `images` domain: grayscale or RGB pictures as 2-D grids, (N, C, H, W) floats in [0, 1].

Importing this module is cheap: torch, Pillow, numpy and scikit-learn load inside the methods.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gencore.plugin import Domain, DomainOption, LoadedData

from .options import DEFAULT_NOISE, option, parse_channels, parse_likelihood, parse_noise, parse_resize

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = ["ImagesDomain", "plugin"]

MAX_SCALE = 64


class ImagesDomain(Domain):
    name = "images"
    description = "Pictures (PNG/JPEG folders, MNIST IDX files, built-in 8x8 digits) as 2-D grids"
    item_kind = "grid2d"
    default_data = "builtin:digits"
    array_dtype = "uint8"
    # Picked by leave-one-class-out over the 10 unseen-digit tasks at 8x8 (bench/anomaly_suite.py,
    # README): the likelihood alone ranks plain unseen digits (1s) as normal. ratio+knn won that
    # choice later but lost at 28x28 (mean 0.880 against 0.899), so the default stayed ratio.
    default_score_method = "ratio"
    metric_goals = {"class_control": "max", "judge_accuracy": "info", "diversity_ratio": "target:1",
                    "diversity_samples": "info", "diversity_real": "info", "nearest_real_distance": "info"}
    options = (
        DomainOption(
            "resize",
            "resize every image to H,W pixels (Lanczos); needed when the image sizes differ, "
            "e.g. --resize 28,28",
            commands=("train",),
        ),
        DomainOption(
            "channels",
            "colour channels: auto (1 if every image is grayscale, else 3), 1 or 3, e.g. --channels 3",
            default="auto", choices=("auto", "1", "3"), commands=("train",),
        ),
        DomainOption(
            "noise",
            "the corruption --arch dae learns to undo: gaussian:LO-HI or gaussian:S (sigma in 0-255 "
            "pixel units, drawn per image), saltpepper:P or mask:P (pixel fraction), "
            "e.g. --noise gaussian:5-50",
            default=DEFAULT_NOISE, commands=("train",),
        ),
        DomainOption(
            "patch",
            "train --arch denoiser on random PATCH x PATCH crops of whole images of any size, "
            "e.g. --patch 64",
            type=int, commands=("train",),
        ),
        DomainOption(
            "likelihood",
            "pixel likelihood: bernoulli (binary cross-entropy) or gaussian (squared error), "
            "e.g. --likelihood gaussian",
            default="bernoulli", choices=("bernoulli", "gaussian"), commands=("train",),
        ),
        DomainOption(
            "scale",
            "upscale each sample's PNG by a whole factor with nearest-neighbour pixels (grid.png is always "
            "at least 256 px wide), e.g. --scale 8",
            type=int, default=1, commands=("sample",),
        ),
    )

    # -- data ---------------------------------------------------------------------------------
    def load(self, source: str | None, options: dict[str, Any]) -> LoadedData:
        resize = parse_resize(option(options, "resize"))
        channels = parse_channels(option(options, "channels", "auto"))
        likelihood = parse_likelihood(option(options, "likelihood", "bernoulli"))
        noise = parse_noise(option(options, "noise", DEFAULT_NOISE))
        from .loaders import load_training

        patch = option(options, "patch")
        if patch is not None and not 8 <= patch <= 1024:
            from gencore.errors import GenError

            raise GenError(f"must be between 8 and 1024, got {patch}", where="--patch")
        return load_training(source, resize=resize, channels=channels, likelihood=likelihood,
                             noise=noise, patch=patch)

    def stream(self, source: str | None, options: dict[str, Any]):
        from .cache import folder_stream

        return folder_stream(source, resize=parse_resize(option(options, "resize")),
                             channels=parse_channels(option(options, "channels", "auto")),
                             likelihood=parse_likelihood(option(options, "likelihood", "bernoulli")),
                             noise=parse_noise(option(options, "noise", DEFAULT_NOISE)), patch=option(options, "patch"))

    def load_files(
        self, paths: list[Path], spec: dict[str, Any], options: dict[str, Any]
    ) -> tuple["torch.Tensor", list[str | None]]:
        from .loaders import load_user_files

        return load_user_files(paths, spec)

    def read_native(self, data: bytes, where: str):
        from .photo_io import read_photo

        return read_photo(data, where)

    def encode_native(self, values: "torch.Tensor", state: Any) -> bytes:
        from .photo_io import encode_photo

        return encode_photo(values, state)

    # -- output -------------------------------------------------------------------------------
    def export(
        self, items: "torch.Tensor", out_dir: Path, stems: list[str], spec: dict[str, Any],
        options: dict[str, Any] | None = None,
    ) -> list[Path]:
        from .render import export

        scale = option(options or {}, "scale", 1)
        if not 1 <= scale <= MAX_SCALE:
            from gencore.errors import GenError

            raise GenError(f"must be from 1 to {MAX_SCALE}, got {scale}", where="--scale", hint="e.g. --scale 8")
        return export(items, out_dir, stems, scale)

    def preview(self, items: "torch.Tensor", spec: dict[str, Any], columns: int,
                options: dict[str, Any] | None = None) -> "Image.Image":
        from .render import preview

        return preview(items, columns)

    # -- training helpers ---------------------------------------------------------------------
    def corrupt(self, items: "torch.Tensor", generator: "torch.Generator",
                spec: dict[str, Any] | None = None) -> "torch.Tensor":
        """Apply the run's --noise (spec["meta"]["noise"]; gaussian:5-50 when absent)."""
        from .noise import corrupt

        text = ((spec or {}).get("meta") or {}).get("noise") or DEFAULT_NOISE
        return corrupt(items, generator, parse_noise(text))

    def attributes(self, items: "torch.Tensor", spec: dict[str, Any]) -> dict[str, Any]:
        from .attributes import measure

        return measure(items)

    def metrics(
        self,
        samples: "torch.Tensor",
        sample_conditions: "torch.Tensor | None",
        reference: LoadedData,
        spec: dict[str, Any],
        seed: int,
    ) -> dict[str, float]:
        from .metrics import compute

        return compute(samples, sample_conditions, reference, seed)


plugin = ImagesDomain()
