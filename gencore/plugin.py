"""The domain plugin contract.

A domain is an object registered under the entry-point group ``gencore.plugins``. The core talks
to it only through this class, so a new domain never needs a core edit. This module imports
without torch: tensors appear only in type hints and in the methods that a command calls.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gencore.errors import GenError

if TYPE_CHECKING:
    import torch
    from PIL import Image

ItemKind = Literal["grid2d", "seq1d", "vector"]
Likelihood = Literal["bernoulli", "gaussian", "categorical"]


@dataclass(frozen=True)
class DomainOption:
    """One extra CLI option a domain declares, e.g. ``--resize 28,28``.

    `commands` says which commands accept it ("train", "sample", "reconstruct", ...).
    A bool option is a flag; `choices` restricts a str option.
    """

    name: str
    help: str
    type: type = str
    default: Any = None
    choices: tuple[str, ...] | None = None
    commands: tuple[str, ...] = ("train",)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass
class LoadedData:
    """What `Domain.load` returns: everything the engine needs to train."""

    items: "torch.Tensor"  # (N, *item_shape), float32, already normalised for the likelihood
    conditions: "torch.Tensor | None"  # (N, K) one-hot or multi-hot, or None when unlabelled
    class_names: list[str]
    likelihood: Likelihood
    item_kind: ItemKind
    multi_label: bool = False
    anomaly_labels: "torch.Tensor | None" = None  # (N,) ground truth, never used as a condition
    normalisation: dict[str, Any] = field(default_factory=dict)  # JSON-able statistics
    sources: list[str] = field(default_factory=list)  # files or builtin names, for the fingerprint
    meta: dict[str, Any] = field(default_factory=dict)  # JSON-able facts the domain needs to decode
    class_weights: list[float] | None = None  # categorical likelihood only: per-category loss weight
    # Whole items of varying size, each (C, H_i, W_i), for fully convolutional archs (denoiser)
    # that train on random crops; `items` is then empty, shaped (0, C, patch, patch).
    images: "list[torch.Tensor] | None" = None

    @property
    def item_shape(self) -> tuple[int, ...]:
        return tuple(self.items.shape[1:])


class Domain:
    """Base class of every domain. Subclasses set the attributes and override the methods."""

    name: str = ""
    description: str = ""
    item_kind: ItemKind = "grid2d"
    default_data: str = ""  # what `gen train DOMAIN` uses with no --data, e.g. "builtin:digits"
    options: tuple[DomainOption, ...] = ()
    # How to read each metric `metrics` returns when `gen eval` compares runs:
    # "max", "min", "target:X" (closest to X wins) or "info" (never marked).
    metric_goals: dict[str, str] = {}
    # `gen score` with no --threshold/--contamination/--val-quantile: flag inputs above this
    # quantile of the run's held-out validation scores (None: report scores without flags).
    default_val_quantile: float | None = None
    # `gen score` with no --method (None: elbo for VAEs, recon for deterministic arches).
    default_score_method: str | None = None
    # `gen train` settings the user did not give, by TrainSettings field name, e.g.
    # {"latent_dim": 4, "epochs": 60, "hidden": 64} (None of them: the engine's defaults).
    training_defaults: dict[str, Any] = {}
    # `gen sample` options the user did not give, e.g. {"prior": "gmm"}: a run fitted with a mixture
    # samples from it (a run without one keeps the arch's own prior).
    sampling_defaults: dict[str, Any] = {}
    # `gen sample --format npy` stores decoded items as "float32" likelihood means, or as "uint8"
    # 0-255 where they are intensities in [0, 1] (pixels).
    array_dtype: str = "float32"

    def data_training_defaults(self, data: LoadedData, settings: Any, n_train: int) -> dict[str, Any]:
        """`gen train` settings sized from the loaded corpus (`n_train` items train), by TrainSettings
        field name; each fills only a setting still left to the data (None: epochs, conditioning)."""
        return {}

    # -- data ---------------------------------------------------------------------------------
    def load(self, source: str | None, options: dict[str, Any]) -> LoadedData:
        """Load a training corpus. `source` is a path, "builtin:NAME", or None for the default."""
        raise NotImplementedError

    def stream(self, source: str | None, options: dict[str, Any]) -> Any:
        """Optional: a `gencore.datacache.Stream` for a source that the decoded-data cache may hold
        (a folder of files, each decoded into one item of a compact dtype), or None to always
        `load`. A stream must give the items `load` gives (up to the compact dtype's rounding)."""
        return None

    def source_files(self, source: str, options: dict[str, Any]) -> list[Path] | None:
        """Optional: the files a named source (e.g. "builtin:NAME") reads, so that the decoded-data
        cache can key it (gencore/datacache_generic.py); None for a local path, whose files the
        cache lists itself, and for a source that reads no files."""
        return None

    def load_files(
        self, paths: list[Path], spec: dict[str, Any], options: dict[str, Any]
    ) -> tuple["torch.Tensor", list[str | None]]:
        """Load user files the way the run's training data was prepared (`spec` is config["data"]).

        Returns the items (n, *item_shape) and, per file, a class name the file implies (for example
        its folder) or None.
        """
        raise GenError(f"the {self.name} domain cannot read input files")

    def read_native(self, data: bytes, where: str) -> tuple["torch.Tensor", Any]:
        """Optional (for `gen denoise`): decode one native file into (C, H, W) values plus the
        state needed to write the result back in the same format (mode, alpha, metadata)."""
        raise GenError(f"the {self.name} domain cannot denoise files")

    def encode_native(self, values: "torch.Tensor", state: Any) -> bytes:
        """Optional: encode values in the format `read_native` found."""
        raise GenError(f"the {self.name} domain cannot denoise files")

    # -- conditions ---------------------------------------------------------------------------
    def parse_class(self, text: str, class_names: list[str], multi_label: bool) -> list[float]:
        """Turn one `--class` value into a condition vector: an exact name first, then an index;
        multi-label domains accept `a+b`."""
        parts = text.split("+") if multi_label else [text]
        vector = [0.0] * len(class_names)
        for part in parts:
            vector[resolve_class_index(part, class_names)] = 1.0
        return vector

    # -- generation ---------------------------------------------------------------------------
    def generate(
        self, run: Any, classes: list[str | None], conditions: "torch.Tensor | None",
        options: dict[str, Any], seed: int, temperature: float,
    ) -> "torch.Tensor | None":
        """Optional: domain-specific sampling for `gen sample`, e.g. stitching windows into a full
        level or filtering for playability. `run` is the `gencore.api.Run` (use `run.decoder`,
        `run.decode`, `run.encode`); `classes`/`conditions` hold one entry per sample asked for.
        Return the decoded items, or None to let the core sample with the decoder alone."""
        return None

    # -- output -------------------------------------------------------------------------------
    def export(
        self, items: "torch.Tensor", out_dir: Path, stems: list[str], spec: dict[str, Any],
        options: dict[str, Any] | None = None,
    ) -> list[Path]:
        """Write decoded items (likelihood means) as native files named `stems[i]` + suffix.
        `options` are the command's domain options (declared for "sample", "reconstruct", ...)."""
        raise NotImplementedError

    def decoding_rules(self, spec: dict[str, Any], run: Any = None) -> dict[str, Any]:
        """JSON-able facts a consumer of an exported decoder needs to turn its outputs into content
        without gen (a tile legend, a pitch window, a value range). `run` is the opened run, for
        rules measured on the trained decoder (a calibrated threshold). Defaults to the data
        spec's `meta` and `normalisation`."""
        return {"meta": spec.get("meta", {}), "normalisation": spec.get("normalisation", {})}

    def preview(self, items: "torch.Tensor", spec: dict[str, Any], columns: int,
                options: dict[str, Any] | None = None) -> "Image.Image":
        """A picture of decoded items laid out in rows of `columns`, for grids and run previews."""
        raise NotImplementedError

    def annotate(self, items: "torch.Tensor", spec: dict[str, Any],
                 options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Optional (for `gen studio`): JSON-able facts about each decoded item that a viewer
        draws over its preview, e.g. a level checker's path and whether it finishes."""
        return [{} for _ in range(items.shape[0])]

    # -- training helpers ---------------------------------------------------------------------
    def corrupt(self, items: "torch.Tensor", generator: "torch.Generator",
                spec: dict[str, Any] | None = None) -> "torch.Tensor":
        """The corruption a denoising autoencoder learns to undo (`spec` is config["data"])."""
        raise NotImplementedError(f"the {self.name} domain defines no corruption")

    def metrics(
        self,
        samples: "torch.Tensor",
        sample_conditions: "torch.Tensor | None",
        reference: LoadedData,
        spec: dict[str, Any],
        seed: int,
    ) -> dict[str, float]:
        """Domain metrics of generated samples against real reference data (docs/metrics.md)."""
        return {}

    # -- designer controls (optional) ---------------------------------------------------------
    def attributes(self, items: "torch.Tensor", spec: dict[str, Any]) -> dict[str, Any]:
        """Optional (for `gen attributes` and `gen sample --attr`): attributes a person cares
        about, measured per item on training items or on what `gen sample` decodes (likelihood
        means, or the domain's own decoded output): name -> (N,) float numpy array, NaN where
        undefined. Names are lowercase words joined by `_`. `spec` is config["data"]."""
        return {}

    # -- anomaly scoring (optional) -----------------------------------------------------------
    def read_scored(self, inputs: list[str], spec: dict[str, Any],
                    labels: dict[str, int] | None) -> LoadedData | None:
        """For `gen score INPUTS`: read inputs that hold many items each (windows of a series, rows
        of a table), prepared like the run's data (`spec` is config["data"]). Return one name per
        item in `sources`, ground truth (from the inputs, or from `labels`, the --labels rows
        `name,0|1`) in `anomaly_labels`, and whatever `score_report` needs. None (the default):
        the core reads a corpus, or one item per file through `load_files`."""
        return None

    def score_report(self, run: Any, data: LoadedData, index: Any, scores: Any, threshold: float | None,
                     method: str, out: Path) -> dict[str, Any]:
        """After `gen score` scored `data.items[index]` (`scores`, higher is more anomalous): write
        domain views beside the scores file `out` (per-time-step scores, a plot) and return
        JSON-able entries for the summary. Called only for data from `read_scored`."""
        return {}


def provides(domain: Domain, hook: str) -> bool:
    """Whether `domain` implements the optional `hook` (overrides the base class's)."""
    return getattr(type(domain), hook, None) is not getattr(Domain, hook, None)


def resolve_class_index(text: str, class_names: list[str]) -> int:
    """Exact class name first, then a 0-based index; anything else is bad input."""
    if text in class_names:
        return class_names.index(text)
    if text.lstrip("-").isdigit():
        index = int(text)
        if 0 <= index < len(class_names):
            return index
    shown = ", ".join(class_names[:12]) + (", ..." if len(class_names) > 12 else "")
    raise GenError(
        f"unknown class {text!r}; this run has {len(class_names)} classes: {shown}",
        where="--class",
        hint=f"give a class name or an index from 0 to {len(class_names) - 1}",
    )
