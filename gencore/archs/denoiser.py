"""The `denoiser` arch: a fully convolutional U-Net (gencore/models/denoiser.py) that maps a noisy
image of any size to a clean one. It trains on random patches of whole images through the one
Trainer (gencore/training/denoise.py), and has no latent space: a run denoises (`gen denoise`)
and exports whole, but does not sample or encode. This is the one module that names the arch."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from gencore.archs.base import Arch
from gencore.errors import GenError

NAME = "denoiser"
SHIPPED_RUN = "pretrained:denoiser"  # what `gen denoise` uses by default (assets/PROVENANCE.md)
SHIPPED_FOLDER = "denoiser"  # under assets/
# How a one-channel denoiser treats a colour photo (gencore/denoising.py): "blend" (the default)
# or "opponent", for a model fine-tuned on opponent planes (scripts/finetune_denoiser_colour.py).
COLOUR_RULES = ("blend", "opponent")


def denoiser_spec(channels: int, widths: tuple[int, ...] = (32, 64, 128), blocks: int = 2) -> dict[str, Any]:
    return {"arch": NAME, "item_kind": "grid2d", "channels": channels, "widths": list(widths), "blocks": blocks}


class DenoiserArch(Arch):
    name = NAME
    names = (NAME,)
    has_latent = False
    bundle_kind = "model"

    def model_spec(self, settings, data) -> dict[str, Any]:
        width = settings.width
        return denoiser_spec(data.images[0].shape[0], widths=(width, 2 * width, 4 * width))

    def build(self, spec: dict[str, Any]):
        from gencore.models.denoiser import Denoiser

        return Denoiser(spec)

    def spec_problem(self, spec: dict[str, Any]) -> str | None:
        if not spec.get("widths") or not isinstance(spec.get("channels"), int):
            return "channels or widths missing"
        if spec.get("colour", "blend") not in COLOUR_RULES:
            return f"colour is {spec.get('colour')!r}"
        return None

    def item_facts(self, data) -> dict[str, Any]:
        return {"item_shape": [data.images[0].shape[0], None, None], "likelihood": "gaussian"}  # any size

    def check_data(self, domain, data) -> None:
        if data.images is None:
            raise GenError("--arch denoiser trains on random crops of whole images", where="--arch denoiser",
                           hint=f"add a patch size, e.g. gen train {domain.name} --arch denoiser --patch 64")

    def resolve(self, settings, data, val_count: int, device_type: str, world: int):
        from gencore.training.denoise import patch_count

        # An epoch covers the images' area once in patches; the batch stays the base batch on
        # every device (a patch is a large item), so CPU and GPU runs train alike.
        return settings.resolved(patch_count(data), None, world)

    def val_indices(self, data, settings) -> list[int]:
        return []  # validation uses fixed patches drawn from the images (gencore/training/denoise.py)

    def objective(self, domain, data, spec, config, settings, device, dist):
        from gencore.training.denoise import DenoiserObjective

        return DenoiserObjective(domain, data, spec, config, settings, device, dist)

    def describe(self, data, spec: dict[str, Any], settings) -> str:
        n_params = sum(p.numel() for p in self.build(spec).parameters())
        return (f"{len(data.images)} images, {data.meta['patch']}-pixel patches, noise {data.meta.get('noise')}; "
                f"denoiser, {n_params:,} parameters")

    def finish(self, run_dir: Path, domain, data, config: dict[str, Any], model, settings) -> dict[str, Any]:
        from gencore.training.finish import finish_denoiser

        return finish_denoiser(run_dir, domain, data, config, model, settings)

    def next_step(self, run_dir: Path) -> str:
        return f"gen denoise IN -r {run_dir}"

    def refuse_latent(self, what: str, where: str) -> None:
        raise GenError(f"a denoiser run has no latent space to {what}", where=where,
                       hint="use it with `gen denoise IN -r RUN`")

    def export_onnx(self, run, out, opset: int, postprocess: str, threshold: float | None):
        from gencore.export import export_whole_onnx

        if postprocess != "none":
            raise GenError("a denoiser export has no post-processing", where="--postprocess")
        return export_whole_onnx(run, out, opset, NAME)

    def bundle_weights(self, run) -> dict[str, dict]:
        return {"model": run.model().state_dict()}  # the whole network: it has no decoder of its own

    def bundle_use(self, target: Path) -> str:
        return f"gen denoise IN -r {target}"


DENOISER = DenoiserArch()
