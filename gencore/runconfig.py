"""config.json as types: `RunConfig` and its `ModelSpec`, read (and checked) by one `from_json`
and written by one `to_json`. docs/format.md documents every key. No torch here.

Plugins receive the `data` object as a plain dict (their `spec`), and may still read a run's
config by key (`run.config["data"]`): `RunConfig` answers `[key]` and `.get` with the JSON value.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from gencore.errors import GenError
from gencore.storage import FORMAT_VERSION, READABLE_FORMAT_VERSIONS, READABLE_HINT

MAX_MODEL_SIZE = 1 << 16  # any one size in a model spec (channels, widths, latent dimensions)
ITEM_KINDS = ("grid2d", "seq1d", "vector")
LIKELIHOODS = ("bernoulli", "gaussian", "categorical")
EDITED = "the file is corrupt or was edited by hand"


def _size(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_MODEL_SIZE


@dataclass
class ModelSpec:
    """The constructor arguments of a run's network. Keys an arch does not use stay None and are
    left out of the JSON (the denoiser has no latent; the autoencoders have no `widths`; a
    format_version 1 autoencoder has no `conditioning`, and concatenates the condition)."""

    arch: str
    item_kind: str = "grid2d"
    item_shape: list[int | None] | None = None
    likelihood: str | None = None
    cond_dim: int | None = None
    latent_dim: int | None = None
    width: int | None = None
    hidden: int | None = None
    channels: int | None = None
    widths: list[int] | None = None
    blocks: int | None = None
    conditioning: str | None = None  # how the condition enters the networks (gencore.models.CONDITIONINGS)
    colour: str | None = None  # a one-channel denoiser's rule for colour photos (gencore.archs.denoiser)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ModelSpec":
        """Check a spec read from a file; raises ValueError naming what makes it unbuildable."""
        from gencore.archs import ARCHS
        from gencore.models import CONDITIONINGS

        if data.get("arch") not in ARCHS:
            raise ValueError(f"unknown arch {data.get('arch')!r}")
        for key in ("latent_dim", "width", "hidden", "cond_dim", "channels", "blocks"):
            if key in data and not _size(data[key], 0 if key == "cond_dim" else 1):
                raise ValueError(f"{key} is {data[key]!r}")
        for key, allowed in (("item_kind", ITEM_KINDS), ("likelihood", LIKELIHOODS), ("conditioning", CONDITIONINGS)):
            if key in data and data[key] not in allowed:
                raise ValueError(f"{key} is {data[key]!r}")
        for key in ("item_shape", "widths"):
            values = data.get(key, [])
            if not isinstance(values, list) or not all(v is None or _size(v, 1) for v in values):
                raise ValueError(f"{key} is {values!r}")
        problem = ARCHS[data["arch"]].spec_problem(data)
        if problem:
            raise ValueError(problem)
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass
class Split:
    seed: int = 0
    val_indices: list[int] = field(default_factory=list)
    val_fraction: float | None = None


@dataclass
class RunConfig:
    """Everything needed to rebuild a run's model and its data (docs/format.md)."""

    domain: str
    arch: str
    model: ModelSpec
    data: dict[str, Any]  # the domain's data spec, handed to the plugin as `spec`
    condition_type: str = "none"  # none | one-hot | multi-hot
    class_names: list[str] = field(default_factory=list)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    split: Split = field(default_factory=Split)
    train: dict[str, Any] = field(default_factory=dict)  # TrainSettings.to_json()
    init: str | None = None
    command: list[str] = field(default_factory=list)
    seed: int = 0
    torch_version: str = ""
    python_version: str = ""
    device: str = ""
    world_size: int = 1
    created: str = ""
    gencore_version: str = ""
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # keys of other writers (e.g. "bundle")

    @property
    def cond_dim(self) -> int:
        return self.model.cond_dim or 0

    @property
    def multi_label(self) -> bool:
        return self.condition_type == "multi-hot"

    @classmethod
    def from_json(cls, data: Any, path: Path) -> "RunConfig":
        """A config read from `path` (the run folder), or one clear error about what is wrong."""
        where = str(path / "config.json")
        if not isinstance(data, dict):
            raise GenError(f"run config is a JSON {type(data).__name__}, not an object", where=where, hint=EDITED)
        version = data.get("format_version")
        if version not in READABLE_FORMAT_VERSIONS or isinstance(version, bool):
            raise GenError(f"run format_version {version!r} is not supported", where=where, hint=READABLE_HINT)
        for key, kind in (("domain", str), ("arch", str), ("model", dict), ("data", dict)):
            if not isinstance(data.get(key), kind):
                raise GenError(f"run config lacks a valid {key!r}", where=where, hint=EDITED)
        try:
            model = ModelSpec.from_json(data["model"])
            split = data.get("split") or {}
            split = Split(int(split.get("seed", 0)), [int(i) for i in split.get("val_indices", [])],
                          split.get("val_fraction"))
        except (ValueError, TypeError, AttributeError) as exc:
            raise GenError(f"run config has an invalid model or split: {exc}", where=where, hint=EDITED) from None
        known = {f.name for f in fields(cls)} | {"condition"}
        return cls(
            domain=data["domain"], arch=data["arch"], model=model, data=data["data"],
            condition_type=(data.get("condition") or {}).get("type", "none"),
            class_names=list(data.get("class_names") or []), fingerprint=data.get("fingerprint") or {},
            split=split, train=data.get("train") or {}, init=data.get("init"), command=data.get("command") or [],
            seed=data.get("seed", 0), torch_version=data.get("torch_version", ""),
            python_version=data.get("python_version", ""), device=data.get("device", ""),
            world_size=data.get("world_size", 1), created=data.get("created", ""),
            gencore_version=data.get("gencore_version", ""), format_version=version,
            extra={k: v for k, v in data.items() if k not in known},
        )

    def to_json(self) -> dict[str, Any]:
        split = {"seed": self.split.seed, "val_indices": self.split.val_indices}
        if self.split.val_fraction is not None:
            split = {"seed": self.split.seed, "val_fraction": self.split.val_fraction,
                     "val_indices": self.split.val_indices}
        return {
            "format_version": self.format_version, "gencore_version": self.gencore_version,
            "domain": self.domain, "arch": self.arch, "model": self.model.to_json(),
            "condition": {"type": self.condition_type, "dim": self.cond_dim},
            "class_names": self.class_names, "data": self.data, "fingerprint": self.fingerprint,
            "split": split, "train": self.train, "init": self.init, "command": self.command, "seed": self.seed,
            "torch_version": self.torch_version, "python_version": self.python_version, "device": self.device,
            "world_size": self.world_size, "created": self.created, **self.extra,
        }

    # Read access by key, as plugins and scripts did when the config was a dict.
    def __getitem__(self, key: str) -> Any:
        return self.to_json()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_json().get(key, default)
