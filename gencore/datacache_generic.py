"""The decoded-data cache for domains without a `stream` hook (levels, series, tables, MIDI): the
domain's own `load` runs once, and its items are stored in shards in the most compact dtype that
gives every value back exactly (uint8 for one-hot tiles and 0/1 piano rolls, float16, else
float32). The rest of `LoadedData` goes beside them: tensors and a domain subclass's per-item
fields (the levels' `level_ids`) as compact `.npy` files, the other fields as JSON. Later runs
map the shards instead of decoding the files again. Keys, checks and rebuilds are
gencore/datacache.py's; the key also covers the domain's own code, since `load` derives more
than pixels.

Data is read without the cache when a field would not come back from JSON exactly, or when
the domain cannot name the files a source reads (builtin:demo, generated in code).
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from gencore import console
from gencore.datacache import (CACHE_FORMAT, MANIFEST, SHARD_ITEMS, Stream, _locked, _wait_for, cache_name,
                               data_root, file_crc, file_facts, open_cache, problem, read_manifest)
from gencore.plugin import LoadedData

BASE_FIELDS = tuple(f.name for f in fields(LoadedData))
ARRAYS = ("conditions", "anomaly_labels")  # tensors of LoadedData itself, one row per item
# --cache auto caches a source whose files fill at least this much disk: parsing that much MIDI,
# CSV or level text takes seconds per run, while mapping its cache takes milliseconds.
AUTO_MIN_SOURCE_BYTES = 32 * 2**20


def input_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".")
                                                                        for part in p.relative_to(root).parts))


def compact(values: np.ndarray) -> np.ndarray:
    """`values` in the smallest dtype that holds every one exactly."""
    if values.dtype.kind in "iu":
        candidates = (np.uint8, np.int8, np.int16, np.int32)
    elif values.dtype.kind == "f":
        candidates = (np.uint8, np.float16)
    else:
        return values
    for dtype in candidates:
        small = values.astype(dtype)
        if np.array_equal(small.astype(values.dtype), values, equal_nan=values.dtype.kind == "f"):
            return small
    return values


def _inputs(domain, source: str | None, options: dict[str, Any]) -> tuple[Path, list[Path]] | None:
    """(the folder file names are keyed relative to, the files) that `load` reads for `source`,
    plus any file an option names (a --legend); None when they cannot be listed."""
    source = source or domain.default_data or None
    if source is None:
        return None
    named = domain.source_files(source, options)
    if named is not None:
        files = sorted(Path(p).resolve() for p in named)
    elif ":" in source.split("/")[0] or not Path(source).expanduser().exists():
        return None
    else:
        files = input_files(Path(source).expanduser().resolve())
    if not files:
        return None
    extra = [Path(v).resolve() for v in options.values() if isinstance(v, str) and v and Path(v).is_file()]
    root = Path(os.path.commonpath([str(p.parent) for p in files]))
    return root, files + sorted(p for p in extra if p not in files)


def _code_files(domain) -> list[Path]:
    """The domain package's Python files: a changed `load` must not meet an old cache."""
    package = sys.modules[type(domain).__module__.split(".")[0]]
    if not hasattr(package, "__path__"):  # a single-module plugin
        return [Path(package.__file__)]
    return sorted(Path(package.__file__).parent.rglob("*.py"))


def load(domain, source: str | None, options: dict[str, Any], local_rank: int = 0,
         min_bytes: int = 0) -> LoadedData | None:
    """The data of `source` through the cache, or None when the cache cannot hold it or its files
    fill less than `min_bytes` on disk (--cache auto: AUTO_MIN_SOURCE_BYTES)."""
    found = _inputs(domain, source, options)
    if found is None or (min_bytes and sum(p.stat().st_size for p in found[1]) < min_bytes):
        return None
    root, files = found
    from gencore import __version__

    code = _code_files(domain)
    stream = Stream(root=root, files=files, labels=None, class_names=[], decode=lambda p: p, divisor=1.0,
                    describe=lambda s: {}, options={"generic": options, "source": source or domain.default_data,
                                                    "gencore": __version__})
    code_stream = Stream(root=code[0].parent, files=code, labels=None, class_names=[], decode=lambda p: p,
                         divisor=1.0, describe=lambda s: {}, options={})
    facts = [*_outside(file_facts(stream), stream), *file_facts(code_stream)]
    name, prefix = cache_name(domain.name, stream, facts)
    folder = data_root() / name
    if local_rank != 0:
        return _open(domain, folder, _wait_for(name, folder))
    with _locked(name):
        manifest = read_manifest(folder)
        if folder.exists() and (reason := problem(folder, manifest) or _class_problem(domain, manifest)):
            console.warn(f"the data cache {folder} is corrupt ({reason}); rebuilding it")
            shutil.rmtree(folder, ignore_errors=True)
            manifest = None
        if manifest is None:
            data = domain.load(source, options)
            why = _uncacheable(data)
            if why is not None:
                console.info(f"the {domain.name} domain's data {why}; reading it without the cache")
                return data
            _build(data, folder, str(root))
            manifest = read_manifest(folder)
            for old in data_root().glob(prefix + "*"):  # superseded: other files or code, same source and options
                if old != folder and old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
    return _open(domain, folder, manifest)


def _outside(facts: list[list[Any]], stream: Stream) -> list[list[Any]]:
    """Facts of files outside the root (an option's file) keyed by their absolute path."""
    prefix = str(stream.root).rstrip(os.sep) + os.sep
    return [fact if str(path).startswith(prefix) else [str(Path(path).resolve()), *fact[1:]]
            for fact, path in zip(facts, stream.files)]


# -- what the cache holds -------------------------------------------------------------------------
def _per_item(data: LoadedData) -> dict[str, Any]:
    """Tensors and arrays with one row per item: LoadedData's own and a subclass's (level ids)."""
    n = data.items.shape[0]
    out = {}
    for f in fields(data):
        value = getattr(data, f.name)
        if f.name in ARRAYS and value is not None or (
                f.name not in BASE_FIELDS and getattr(value, "shape", None) and value.shape[0] == n):
            out[f.name] = value
    return out


def _json_fields(data: LoadedData) -> dict[str, Any]:
    skip = {"items", "images", *_per_item(data)}
    return {f.name: getattr(data, f.name) for f in fields(data) if f.name not in skip and f.name not in ARRAYS}


def _uncacheable(data: LoadedData) -> str | None:
    if data.images is not None:
        return "is whole images of varying size"
    for name, value in _json_fields(data).items():
        try:
            if json.loads(json.dumps(value)) != value:
                return f"field {name!r} does not come back from JSON exactly"
        except (TypeError, ValueError):
            return f"field {name!r} is not JSON"
    return None


def _class_problem(domain, manifest: dict[str, Any] | None) -> str | None:
    if manifest is None:
        return None
    try:
        _data_class(domain, manifest)
    except (ImportError, AttributeError, TypeError) as exc:
        return f"its data class {manifest.get('data_class')!r} cannot be used: {exc}"
    return None


def _data_class(domain, manifest: dict[str, Any]) -> type:
    """The manifest's LoadedData class, imported only from the domain's own package."""
    module, _, qualname = manifest.get("data_class", "gencore.plugin.LoadedData").rpartition(".")
    allowed = {"gencore.plugin", type(domain).__module__.split(".")[0]}
    if module != "gencore.plugin" and module.split(".")[0] not in allowed:
        raise TypeError(f"{module} is not the {domain.name} domain's package")
    cls = getattr(importlib.import_module(module), qualname)
    if not (isinstance(cls, type) and issubclass(cls, LoadedData)):
        raise TypeError(f"{qualname} is not a LoadedData")
    return cls


# -- writing and reading --------------------------------------------------------------------------
def _save_array(staging: Path, name: str, value: Any) -> dict[str, Any]:
    is_tensor = hasattr(value, "numpy") and not isinstance(value, np.ndarray)
    array = value.numpy() if is_tensor else np.asarray(value)
    path = staging / f"{name}.npy"
    np.save(path, compact(array), allow_pickle=False)
    return {"file": path.name, "bytes": path.stat().st_size, "crc32": file_crc(path),
            "dtype": str(array.dtype), "tensor": is_tensor}


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
        arrays = {name: _save_array(staging, name, value) for name, value in _per_item(data).items()}
        cls = type(data)
        manifest = {"format": CACHE_FORMAT, "kind": "generic", "root": root, "count": len(items),
                    "shard_items": SHARD_ITEMS, "channels": items.shape[1], "dtype": str(items.dtype), "divisor": 1.0,
                    "shards": shards, "labels": None, "tensors": arrays, "header": _json_fields(data),
                    "data_class": f"{cls.__module__}.{cls.__qualname__}", "created": _now(),
                    "class_names": data.class_names, "skipped": []}
        (staging / MANIFEST).write_text(json.dumps(manifest))
        for path in staging.iterdir():
            with open(path, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(staging, folder)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        from gencore.storage import os_error

        raise os_error(exc, folder) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    console.info(f"cached the decoded data in {folder} ({items.dtype}); later runs map it")


def _open(domain, folder: Path, manifest: dict[str, Any]) -> LoadedData:
    import torch

    arrays: dict[str, Any] = {name: None for name in ARRAYS}
    for name, entry in manifest["tensors"].items():
        array = np.load(folder / entry["file"], allow_pickle=False).astype(entry.get("dtype", "float32"))
        arrays[name] = torch.from_numpy(array) if entry.get("tensor", True) else array
    cls = _data_class(domain, manifest)
    names = {f.name for f in fields(cls)}
    return cls(items=open_cache(folder, manifest), **{k: v for k, v in manifest["header"].items() if k in names},
               **{k: v for k, v in arrays.items() if k in names})


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")
