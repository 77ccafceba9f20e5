"""Preparing a corpus the same way every time: load through the domain, drop classes, take the
seeded subset, drop conditions. Training, resuming, `gen eval` and `gen score` all go through
`prepare`, and the fingerprint proves they saw the same items."""
from __future__ import annotations

import hashlib
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

import torch

from gencore.errors import GenError
from gencore.distributed import Dist
from gencore.plugin import Domain, LoadedData, provides
from gencore.sharded import ShardedItems

if TYPE_CHECKING:
    from gencore.runconfig import RunConfig


CACHE_MODES = ("auto", "on", "off")


def fingerprint(data: LoadedData) -> dict[str, Any]:
    digest = hashlib.sha256()
    if isinstance(data.items, ShardedItems):  # the cache's checksums, not a pass over every item
        digest.update(data.items.fingerprint_bytes())
    else:
        digest.update(data.items.numpy().tobytes())
    for image in data.images or []:  # whole images, for archs that train on crops of them
        digest.update(str(tuple(image.shape)).encode())
        digest.update(image.numpy().tobytes())
    if data.conditions is not None:
        digest.update(data.conditions.numpy().tobytes())
    digest.update("\n".join(data.class_names).encode())
    count = len(data.images) if data.images is not None else int(data.items.shape[0])
    return {"sources": data.sources[:50], "n_sources": len(data.sources), "count": count,
            "sha256": digest.hexdigest()}


BASE_FIELDS = {f.name for f in fields(LoadedData)}


def _per_item_extras(data: LoadedData) -> dict[str, object]:
    """Fields a domain's LoadedData subclass adds that hold one entry per item (an array or
    tensor of length N, e.g. the levels' `level_ids`): `select` subsets them with the items."""
    n = data.items.shape[0]
    return {f.name: value for f in fields(data) if f.name not in BASE_FIELDS
            and getattr(value := getattr(data, f.name), "shape", None) is not None and len(value.shape)
            and value.shape[0] == n}


def select(data: LoadedData, keep: torch.Tensor) -> LoadedData:
    """A copy holding the items at `keep` (a bool mask or index tensor), with their conditions,
    labels and per-item extras; `data` itself is left as it was."""
    extras = {name: value[keep] if hasattr(value, "index_select") else value[keep.numpy()]
              for name, value in _per_item_extras(data).items()}
    return replace(
        data, items=data.items[keep],
        conditions=None if data.conditions is None else data.conditions[keep],
        anomaly_labels=None if data.anomaly_labels is None else data.anomaly_labels[keep], **extras,
    )


def subset(data: LoadedData, limit: int | None, seed: int) -> LoadedData:
    if not limit or limit >= data.items.shape[0]:
        return data
    keep = torch.randperm(data.items.shape[0], generator=torch.Generator().manual_seed(seed))[:limit].sort().values
    return select(data, keep)


def drop_classes(data: LoadedData, names: list[str], where: str) -> LoadedData:
    """Remove every item of the named classes, and the classes themselves (single-label data)."""
    if not names:
        return data
    if data.conditions is None:
        raise GenError("the data is unlabelled, so there is no class to drop", where="--drop-class",
                       hint=f"{where} has no class folders or labels")
    if data.multi_label:
        raise GenError("--drop-class needs single-label data", where="--drop-class")
    from gencore.plugin import resolve_class_index

    dropped = sorted({resolve_class_index(name, data.class_names) for name in names})
    kept = [i for i in range(len(data.class_names)) if i not in dropped]
    if len(kept) < 1:
        raise GenError("every class would be dropped", where="--drop-class")
    data = select(data, data.conditions[:, dropped].sum(dim=1) == 0)
    return replace(data, conditions=data.conditions[:, kept], class_names=[data.class_names[i] for i in kept])


def load(domain: Domain, source: str | None, options: dict[str, Any], cache: str = "off",
         dist: Dist = Dist()) -> LoadedData:
    """The domain's data: from the decoded-data cache (gencore/datacache.py) when `cache` is "on",
    or "auto" and the data is large; else `domain.load`. A domain that cannot stream its files
    is cached whole after one `load` (gencore/datacache_generic.py)."""
    if cache not in CACHE_MODES:
        raise GenError(f"unknown cache mode {cache!r}", where="--cache", hint="use auto, on or off")
    stream = domain.stream(source, options) if cache != "off" and provides(domain, "stream") else None
    if stream is None and cache != "off":
        from gencore import datacache_generic

        least = datacache_generic.AUTO_MIN_SOURCE_BYTES if cache == "auto" else 0
        cached = datacache_generic.load(domain, source, options, dist.local_rank, least)
        return domain.load(source, options) if cached is None else cached
    if stream is None:
        return domain.load(source, options)
    from gencore import datacache

    if cache == "auto" and not datacache.worth_caching(stream):
        return domain.load(source, options)
    return datacache.load(domain.name, stream, dist.local_rank)


def materialized(data: LoadedData) -> LoadedData:
    """`data` with its items in memory as a float32 tensor (for code that needs the whole tensor)."""
    if not isinstance(data.items, ShardedItems):
        return data
    return replace(data, items=data.items.to())


def bounded(data: LoadedData, cap: int, seed: int) -> LoadedData:
    """A seeded subset of at most `cap` items, in memory: what end-of-run metrics measure against."""
    return materialized(subset(data, cap, seed))


def prepare(domain: Domain, source: str | None, options: dict[str, Any], *, limit: int | None, seed: int,
            condition: bool = True, drop: list[str] | None = None, cache: str = "off",
            dist: Dist = Dist()) -> LoadedData:
    data = load(domain, source, options, cache, dist)
    if data.images is not None:  # whole images for a fully convolutional arch; crops come later
        return data
    data = drop_classes(data, drop or [], source or domain.default_data)
    data = subset(data, limit, seed)
    if data.items.shape[0] < 2:
        raise GenError(f"need at least 2 items, found {data.items.shape[0]}", where=source or domain.default_data)
    return data if condition else replace(data, conditions=None)


def reload(config: "RunConfig", domain: Domain, dist: Dist = Dist(), lazy: bool = False) -> LoadedData:
    """The run's training corpus, prepared exactly as at training time, or a clear error. A run
    trained from the decoded-data cache reads it again; `lazy` keeps its items in the cache's
    shards (training), else they are read into memory (commands that need the whole tensor)."""
    train, source = config.train, config.data["source"]
    data = prepare(domain, None if source == domain.default_data else source, config.data["options"],
                   limit=train.get("limit"), seed=train["seed"], condition=train.get("condition", True),
                   drop=train.get("drop_classes"), cache="on" if config.data.get("cached") else "off", dist=dist)
    if fingerprint(data)["sha256"] != config.fingerprint.get("sha256"):
        raise GenError("the training data changed since this run was trained", where=source,
                       hint="restore the data, or pass --data to use other data")
    return data if lazy else materialized(data)


def heldout(config: "RunConfig", data: LoadedData) -> LoadedData:
    """The run's stored validation split of its (reloaded) corpus."""
    return select(data, torch.tensor(config.split.val_indices, dtype=torch.long))
