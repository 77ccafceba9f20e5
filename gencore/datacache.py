"""The decoded-data cache: a folder of files decoded once, in parallel, into fixed-size shards
under $GENCORE_CACHE/data, then memory-mapped by every later run and every rank of the node.

A domain opts in through its `stream` hook (gencore/plugin.py), which lists the input files and
decodes one file into one item in a compact dtype (uint8 pixels). A cache is keyed by the domain,
the folder, the load options and each input file's name, size and mtime; never by the seed, the
split or a training option. Adding or removing files makes a new key: the new cache copies the
items of unchanged files from the old one and decodes only the new files. Each cache is a folder
of `shard-NNNNN.npy` files (numpy's format, no pickle) and `manifest.json`, with a CRC-32 per
shard; it is staged beside its final name and renamed into place, and checked on every open. A
shard that fails its check gets a warning and the cache is rebuilt, never trusted.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import mmap
import os
import shutil
import time
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from gencore import console
from gencore.downloads import cache_root
from gencore.errors import GenError
from gencore.sharded import ShardedItems

CACHE_FORMAT = 1
SHARD_ITEMS = 4096  # items per shard: 48 MiB of 64x64 RGB pixels
MANIFEST = "manifest.json"
DECODE_CHUNK = 256  # files handed to the decoding threads at a time
LABELS = "labels.npy"
MAX_SKIP_WARNINGS = 20
# --cache auto caches a folder whose items would take at least this much memory as float32.
AUTO_MIN_BYTES = 256 * 2**20


class SkipItem(Exception):
    """One input file cannot become an item; `reason` says why in a few words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Stream:
    """What a domain's `stream` hook returns: its inputs, and how to decode one of them."""
    root: Path  # the --data folder; file names are keyed relative to it
    files: list[Path]  # candidate inputs, in item order
    labels: list[int] | None  # class index of each file, or None when unlabelled
    class_names: list[str]
    decode: Callable[[Path], np.ndarray]  # one file -> (C, ...) item in a compact dtype; raises SkipItem
    divisor: float  # float item = stored value / divisor
    describe: Callable[[tuple[int, ...]], dict[str, Any]]  # LoadedData fields for the float item shape
    options: dict[str, Any]  # the load options that shape the items (part of the key)
    shape_hint: str = "make every input the same shape"
    decoding: Callable[[], Any] = contextlib.nullcontext  # entered on the calling thread around the decode pool


def data_root() -> Path:
    return cache_root() / "data"


# -- keys ---------------------------------------------------------------------------------------
def file_facts(stream: Stream) -> list[list[Any]]:
    """[name relative to the root, size, mtime in ns] of each input, in item order. (Plain
    strings and os.stat: pathlib took most of a warm start's CPU time on 100,000 files.)"""
    prefix = len(str(stream.root).rstrip(os.sep)) + 1
    facts = []
    for path in map(str, stream.files):
        try:
            info = os.stat(path)
        except OSError as exc:
            raise GenError(f"cannot read the file ({exc.strerror})", where=path) from None
        facts.append([path[prefix:].replace(os.sep, "/"), info.st_size, info.st_mtime_ns])
    return facts


def cache_name(domain: str, stream: Stream, facts: list[list[Any]]) -> tuple[str, str]:
    """(this cache's folder name, the prefix every cache of this folder and options shares)."""
    family = json.dumps([CACHE_FORMAT, domain, str(stream.root.resolve()), stream.options], sort_keys=True)
    family_hash = hashlib.sha256(family.encode()).hexdigest()[:12]
    content = hashlib.sha256((family + json.dumps(facts)).encode()).hexdigest()[:12]
    prefix = f"{domain}-{family_hash}-"
    return prefix + content, prefix


def worth_caching(stream: Stream) -> bool:
    """--cache auto: cache a folder whose float32 items would fill at least AUTO_MIN_BYTES."""
    for path in stream.files[:8]:
        with contextlib.suppress(SkipItem):
            return len(stream.files) * stream.decode(path).size * 4 >= AUTO_MIN_BYTES
    return False


# -- opening ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _locked(name: str, shared: bool = False, wait: bool = True) -> Iterator[bool]:
    data_root().mkdir(parents=True, exist_ok=True)
    with open(data_root() / f".{name}.lock", "a+") as fh:
        flags = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(fh, flags)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def file_crc(path: Path) -> int:
    """CRC-32 of the file, read through a map (no copy out of the page cache)."""
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return 0
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return zlib.crc32(view)


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("format") == CACHE_FORMAT else None


def problem(folder: Path, manifest: dict[str, Any] | None) -> str | None:
    """Why the cache in `folder` cannot be trusted, or None when every file passes its check."""
    if manifest is None:
        return f"{folder / MANIFEST} is missing or unreadable"
    for entry in [*manifest["shards"], manifest["labels"], *manifest.get("tensors", {}).values()]:
        if entry is None:
            continue
        path = folder / entry["file"]
        try:
            size = path.stat().st_size
        except OSError:
            return f"{path.name} is missing"
        if size != entry["bytes"]:
            return f"{path.name} has {size} bytes, its manifest says {entry['bytes']}"
        if file_crc(path) != entry["crc32"]:
            return f"{path.name} fails its CRC-32 check"
    return None


def open_cache(folder: Path, manifest: dict[str, Any]) -> ShardedItems:
    shards = [np.load(folder / entry["file"], mmap_mode="r", allow_pickle=False) for entry in manifest["shards"]]
    digest = hashlib.sha256(json.dumps([[e["crc32"], e["bytes"]] for e in manifest["shards"]]).encode()).hexdigest()
    return ShardedItems(shards, manifest["shard_items"], manifest["channels"], manifest["divisor"], digest)


def load(domain: str, stream: Stream, local_rank: int = 0, world: int = 1):
    """The stream's items as `LoadedData` over a memory-mapped cache, built first if needed. Under
    torchrun local rank 0 builds or checks the cache; the node's other ranks wait for it and map
    the same files."""
    from gencore.plugin import LoadedData
    import torch

    facts = file_facts(stream)
    name, prefix = cache_name(domain, stream, facts)
    folder = data_root() / name
    built = False
    if local_rank == 0:
        with _locked(name):
            manifest = read_manifest(folder)
            reason = problem(folder, manifest) if folder.exists() else None
            if reason is not None:
                console.warn(f"the data cache {folder} is corrupt ({reason}); rebuilding it")
                shutil.rmtree(folder, ignore_errors=True)
            if reason is not None or not folder.exists():
                build(domain, stream, facts, folder, prefix)
                built = True
            manifest = read_manifest(folder)
    else:
        manifest = _wait_for(name, folder)
    assert manifest is not None
    if not built:
        _repeat_skips(manifest, stream)
    items = open_cache(folder, manifest)
    if manifest["labels"] is not None:
        labels = torch.from_numpy(np.load(folder / LABELS, allow_pickle=False).astype(np.int64))
        conditions = torch.nn.functional.one_hot(labels, len(manifest["class_names"])).float()
    else:
        conditions = None
    return LoadedData(items=items, conditions=conditions, class_names=manifest["class_names"],
                      sources=manifest["sources"], **stream.describe(tuple(items.shape[1:])))


def _wait_for(name: str, folder: Path, poll_s: float = 0.2) -> dict[str, Any]:
    """A rank other than the node's first: wait until the cache is built and unlocked."""
    while True:
        with _locked(name, shared=True, wait=False) as got:
            manifest = read_manifest(folder) if got else None
            if manifest is not None:
                return manifest
        time.sleep(poll_s)


def _repeat_skips(manifest: dict[str, Any], stream: Stream) -> None:
    skipped = manifest.get("skipped") or []
    if skipped:
        first, reason = skipped[0]
        console.warn(f"{len(skipped)} of the files under {stream.root} were skipped when the data cache was "
                     f"built (first: {first}: {reason})")


# -- building -----------------------------------------------------------------------------------
def _previous(prefix: str, folder: Path) -> tuple[dict[tuple, tuple[int, int]], list[np.ndarray], Path | None]:
    """The newest intact cache of the same folder and options: where each of its files' items is."""
    for other in sorted(data_root().glob(prefix + "*"), key=lambda p: p.stat().st_mtime, reverse=True):
        manifest = read_manifest(other)
        if other == folder or not other.is_dir() or manifest is None or problem(other, manifest) is not None:
            continue
        shards = [np.load(other / e["file"], mmap_mode="r", allow_pickle=False) for e in manifest["shards"]]
        where = {tuple(fact): divmod(i, manifest["shard_items"]) for i, fact in enumerate(manifest["facts"])}
        return where, shards, other
    return {}, [], None


def _decode(stream: Stream, path: Path) -> tuple[np.ndarray | None, str | None]:
    try:
        return stream.decode(path), None
    except SkipItem as exc:
        return None, exc.reason


class _ShardWriter:
    """Kept items in order, written out SHARD_ITEMS at a time with their sizes and CRC-32s."""

    def __init__(self, staging: Path):
        self.staging, self.buffer, self.entries = staging, [], []
        self.first_shape: tuple[int, ...] | None = None

    def add(self, item: np.ndarray) -> None:
        self.buffer.append(item)
        if len(self.buffer) == SHARD_ITEMS:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        channels = max(item.shape[0] for item in self.buffer)
        stack = np.stack([np.repeat(i, channels, axis=0) if i.shape[0] < channels else i for i in self.buffer])
        path = self.staging / f"shard-{len(self.entries):05d}.npy"
        np.save(path, stack, allow_pickle=False)
        self.entries.append({"file": path.name, "count": len(stack), "channels": channels,
                             "bytes": path.stat().st_size, "crc32": file_crc(path)})
        self.buffer = []


def build(domain: str, stream: Stream, facts: list[list[Any]], folder: Path, prefix: str) -> None:
    """Decode the stream into `folder`: staged beside it, then renamed into place."""
    reuse, old_shards, old_folder = _previous(prefix, folder)
    staging = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        _fill(stream, facts, staging, reuse, old_shards, old_folder)
        os.replace(staging, folder)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        from gencore.storage import os_error

        raise os_error(exc, folder) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old_folder is not None:  # superseded: the same folder and options with other files
        shutil.rmtree(old_folder, ignore_errors=True)


def _fill(stream: Stream, facts: list[list[Any]], staging: Path, reuse: dict, old_shards: list[np.ndarray],
          old_folder: Path | None) -> None:
    writer = _ShardWriter(staging)
    kept_facts, kept_labels, skipped = [], [], []
    fresh = [i for i, fact in enumerate(facts) if tuple(fact) not in reuse]
    if old_folder is not None:
        console.info(f"updating the data cache: {len(facts) - len(fresh):,} items reused, {len(fresh):,} files "
                     f"to decode")
    else:
        console.info(f"caching {len(facts):,} files of {stream.root} in {staging.parent} (once; later runs "
                     f"map the cache)")
    workers = max(1, min(8, os.cpu_count() or 1))
    chunk = DECODE_CHUNK
    with stream.decoding(), ThreadPoolExecutor(max_workers=workers) as pool:
        results = _decoded_in_order(stream, facts, reuse, old_shards, pool, chunk)
        for i, (item, reason) in console.track(results, total=len(facts), description="decoding"):
            if item is None:
                skipped.append([facts[i][0], reason])
                continue
            if writer.first_shape is None:
                writer.first_shape, first_name = item.shape, facts[i][0]
            elif item.shape[1:] != writer.first_shape[1:]:
                raise GenError(f"items differ in shape: {first_name} gives {tuple(writer.first_shape)} but "
                               f"{facts[i][0]} gives {tuple(item.shape)}", where=str(stream.root),
                               hint=stream.shape_hint)
            writer.add(item)
            kept_facts.append(facts[i])
            if stream.labels is not None:
                kept_labels.append(stream.labels[i])
    writer.flush()
    _warn_skips(stream.root, skipped)
    if not writer.entries:
        first, reason = skipped[0]
        raise GenError(f"none of the {len(facts)} files could be read; {first}: {reason}", where=str(stream.root),
                       hint="check that the files are valid")
    class_names, labels_entry = _write_labels(stream, kept_labels, staging)
    manifest = {"format": CACHE_FORMAT, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "root": str(stream.root.resolve()), "options": stream.options, "count": len(kept_facts),
                "shard_items": SHARD_ITEMS, "channels": max(e["channels"] for e in writer.entries),
                "dtype": str(np.load(staging / writer.entries[0]["file"], mmap_mode="r").dtype),
                "divisor": stream.divisor, "class_names": class_names, "shards": writer.entries,
                "labels": labels_entry, "skipped": skipped, "facts": kept_facts,
                "sources": [fact[0] for fact in kept_facts]}
    (staging / MANIFEST).write_text(json.dumps(manifest))
    for path in staging.iterdir():
        with open(path, "rb+") as fh:
            os.fsync(fh.fileno())


def _decoded_in_order(stream: Stream, facts, reuse, old_shards, pool, chunk: int):
    """(index, (item or None, skip reason)) for every input in order: reused items are copied from
    the old shards, new ones decoded by the pool `chunk` at a time."""
    for start in range(0, len(facts), chunk):
        stop = min(len(facts), start + chunk)
        todo = [i for i in range(start, stop) if tuple(facts[i]) not in reuse]
        decoded = dict(zip(todo, pool.map(lambda i: _decode(stream, stream.files[i]), todo)))
        for i in range(start, stop):
            if i in decoded:
                yield i, decoded[i]
            else:
                shard, row = reuse[tuple(facts[i])]
                yield i, (np.array(old_shards[shard][row]), None)


def _warn_skips(root: Path, skipped: list[list[str]]) -> None:
    for name, reason in skipped[:MAX_SKIP_WARNINGS]:
        warnings.warn(f"{root / name}: skipped, {reason}", UserWarning, stacklevel=2)
    if len(skipped) > MAX_SKIP_WARNINGS:
        warnings.warn(f"{root}: {len(skipped) - MAX_SKIP_WARNINGS} more unreadable files skipped", UserWarning,
                      stacklevel=2)


def _write_labels(stream: Stream, kept: list[int], staging: Path) -> tuple[list[str], dict | None]:
    """Class names of the classes left after skips (a class with no readable file is dropped),
    and the labels file's manifest entry."""
    if stream.labels is None:
        return [], None
    present = sorted(set(kept))
    for i, name in enumerate(stream.class_names):
        if i not in present:
            warnings.warn(f"{stream.root / name}: class dropped, none of its files could be read", UserWarning,
                          stacklevel=2)
    remap = {old: new for new, old in enumerate(present)}
    path = staging / LABELS
    np.save(path, np.array([remap[k] for k in kept], dtype=np.int32), allow_pickle=False)
    return [stream.class_names[i] for i in present], {"file": LABELS, "bytes": path.stat().st_size,
                                                       "crc32": file_crc(path)}
