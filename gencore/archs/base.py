"""The arch contract. One `Arch` object serves every run of its arch names; the trainer, the
pipeline, the API and the exporters call it instead of testing `config["arch"]`."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from gencore.plugin import Domain, LoadedData
    from gencore.training.settings import TrainSettings


class Arch:
    name: str = ""
    names: tuple[str, ...] = ()  # the --arch values this strategy serves
    has_latent = True  # a decoder to sample from and an encoder to encode with
    bundle_kind = "decoder-only"  # what `gen export --format safetensors` writes (config.json "bundle")

    # -- what it builds --------------------------------------------------------------------------
    def model_spec(self, settings: "TrainSettings", data: "LoadedData") -> dict[str, Any]:
        """The constructor arguments stored in config.json["model"]."""
        raise NotImplementedError

    def build(self, spec: dict[str, Any]) -> "torch.nn.Module":
        raise NotImplementedError

    def spec_problem(self, spec: dict[str, Any]) -> str | None:
        """What makes a (tampered) model spec of this arch unbuildable, or None."""
        return None

    def stochastic(self, arch: str) -> bool:
        return False

    def item_facts(self, data: "LoadedData") -> dict[str, Any]:
        """The item shape and likelihood recorded in config.json["data"]."""
        return {"item_shape": list(data.item_shape), "likelihood": data.likelihood}

    # -- how it trains ---------------------------------------------------------------------------
    def check_data(self, domain: "Domain", data: "LoadedData") -> None:
        """Refuse data this arch cannot train on, with one clear error."""

    def resolve(self, settings: "TrainSettings", data: "LoadedData", val_count: int, device_type: str,
                world: int) -> "TrainSettings":
        """The settings with what was left to the data filled in (epochs, batch, ...), sized from
        the items an epoch covers."""
        return settings.resolved(data.items.shape[0] - val_count, device_type, world)

    def val_indices(self, data: "LoadedData", settings: "TrainSettings") -> list[int]:
        from gencore.training.autoencoder_objective import choose_val_indices

        return choose_val_indices(data.items.shape[0], settings.val_fraction, settings.seed)

    def objective(self, domain: "Domain", data: "LoadedData", spec: dict[str, Any], config: dict[str, Any],
                  settings: "TrainSettings", device: "torch.device", dist: Any):
        """The training behaviour the one Trainer runs (gencore.training.objective.Objective)."""
        raise NotImplementedError

    def describe(self, data: "LoadedData", spec: dict[str, Any], settings: "TrainSettings") -> str:
        """One line about the data and model, printed when training starts."""
        raise NotImplementedError

    def finish(self, run_dir: Path, domain: "Domain", data: "LoadedData", config: dict[str, Any],
               model: "torch.nn.Module", settings: "TrainSettings") -> dict[str, Any]:
        """Write the trained run's files (weights, previews); return the final metrics."""
        raise NotImplementedError

    def next_step(self, run_dir: Path) -> str:
        return f"gen sample -r {run_dir} --n 16"

    # -- what a run can do -----------------------------------------------------------------------
    def refuse_latent(self, what: str, where: str) -> None:
        """Raise a clear error when a run of this arch has no latent space for `what`."""

    def export_onnx(self, run, out, opset: int, postprocess: str, threshold: float | None):
        from gencore.export import export_decoder_onnx

        return export_decoder_onnx(run, out, opset, postprocess, threshold)

    def bundle_weights(self, run) -> dict[str, dict]:
        return {"decoder": run.decoder.state_dict()}

    def bundle_use(self, target: Path) -> str:
        return f"gen sample -r {target}"
