"""The decoded-data cache for domains without a `stream` hook (series, tables, MIDI): the domain's
own `load` runs once, and its items are stored in shards in the most compact dtype that gives
every value back exactly (uint8 for 0/1 piano rolls and small integers, float16, else float32),
with the conditions, anomaly labels and the rest of `LoadedData` beside them. Later runs map the
shards instead of decoding the files again. Keys, checks and rebuilds are gencore/datacache.py's.
Data with per-item fields of a domain's own (a `LoadedData` subclass) is not cached.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from gencore import console
from gencore.datacache import (CACHE_FORMAT, MANIFEST, SHARD_ITEMS, Stream, _locked, _wait_for, cache_name,
                               data_root, file_crc, open_cache, problem, read_manifest)
from gencore.plugin import LoadedData

HEADER = ("class_names", "likelihood", "item_kind", "multi_label", "normalisation", "sources", "meta",
          "class_weights")
TENSORS = ("conditions", "anomaly_labels")


def input_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".")
                                                                        for part in p.relative_to(root).parts))


def compact(items: np.ndarray) -> np.ndarray:
    """`items` in the smallest dtype that holds every value exactly."""
    for dtype in (np.uint8, np.float16):
        small = items.astype(dtype)
        if np.array_equal(small.astype(np.float32), items, equal_nan=True):
            return small
    return items


def load(domain, source: str | None, options: dict[str, Any], local_rank: int = 0) -> LoadedData | None:
    """The data of `source` (a local file or folder) through the cache, or None when the cache
    cannot hold it (a built-in corpus, a `LoadedData` subclass, whole images)."""
    if source is None or ":" in source.split("/")[0]:
        return None
    root = Path(source).expanduser()
    if not root.exists():
        return None
    files = input_files(root)
    base = root if root.is_dir() else root.parent
    stream = Stream(root=base, files=files, labels=None, class_names=[], decode=lambda p: p, divisor=1.0,
                    describe=lambda s: {}, options={"generic": options, "source": root.name})
    from gencore.datacache import file_facts

    name, _ = cache_name(domain.name, stream, file_facts(stream))
    folder = data_root() / name
    if local_rank != 0:
        return _open(folder, _wait_for(name, folder))
    with _locked(name):
        manifest = read_manifest(folder)
        if folder.exists() and (reason := problem(folder, manifest)) is not None:
            console.warn(f"the data cache {folder} is corrupt ({reason}); rebuilding it")
            shutil.rmtree(folder, ignore_errors=True)
            manifest = None
        if manifest is None:
            data = domain.load(source, options)
            if type(data) is not LoadedData or data.images is not None:
                console.info(f"the {domain.name} domain's data has fields of its own; reading it without the cache")
                return data
            _build(data, folder, str(root.resolve()))
            manifest = read_manifest(folder)
    return _open(folder, manifest)


def _build(data: LoadedData, folder: Path, root: str) -> None:
    items = compact(data.items.numpy())
    staging = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        shards = []
        for start in range(0, len(items), SHARD_ITEMS):
            path = staging / f"shard-{len(shards):05d}.npy"
            np.save(path, items[start:start + SHARD_ITEMS], allow_pickle=False)
            shards.append({"file": path.name, "count": min(SHARD_ITEMS, len(items) - start),
                           "channels": items.shape[1], "bytes": path.stat().st_size, "crc32": file_crc(path)})
        extra = {}
        for name in TENSORS:
            value = getattr(data, name)
            if value is not None:
                path = staging / f"{name}.npy"
                np.save(path, value.numpy(), allow_pickle=False)
                extra[name] = {"file": path.name, "bytes": path.stat().st_size, "crc32": file_crc(path)}
        manifest = {"format": CACHE_FORMAT, "kind": "generic", "root": root, "count": len(items),
                    "shard_items": SHARD_ITEMS, "channels": items.shape[1], "dtype": str(items.dtype), "divisor": 1.0,
                    "shards": shards, "labels": None, "tensors": extra,
                    "header": {k: getattr(data, k) for k in HEADER}, "created": _now(),
                    "class_names": data.class_names, "skipped": []}
        (staging / MANIFEST).write_text(json.dumps(manifest))
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    console.info(f"cached the decoded data in {folder} ({items.dtype}); later runs map it")


def _open(folder: Path, manifest: dict[str, Any]) -> LoadedData:
    import torch

    tensors = {name: None for name in TENSORS}
    tensors.update({name: torch.from_numpy(np.load(folder / entry["file"], allow_pickle=False))
                    for name, entry in manifest["tensors"].items()})
    names = {f.name for f in fields(LoadedData)}
    return LoadedData(items=open_cache(folder, manifest), **{k: v for k, v in manifest["header"].items() if k in names},
                      **tensors)


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")
