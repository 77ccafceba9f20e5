"""Items that live in memory-mapped shards of the decoded-data cache (gencore/datacache.py).

`ShardedItems` stands in for the (N, *item_shape) float32 tensor of `LoadedData.items`. Indexing
it with a slice, a mask or an index tensor gives a view (an index array, no copy); `.to(device)`
gathers the rows from the shards in their compact dtype and converts only them to float32 on
`device`. So a batch costs O(batch) memory, and the shards stay in the page cache, shared by
every process that maps them.
"""
from __future__ import annotations

import hashlib
import mmap
from typing import Any

import numpy as np
import torch


# Every so many gathered bytes, the shards' pages leave this process's page tables (they stay in
# the page cache, shared). The kernel maps the neighbours of each faulted page too (about 5x the
# bytes read), so without this a shuffled epoch counts the whole cache in the process's RSS:
# 100k 64x64 RGB, 40,000 items read: 1,209 MiB of mapped pages, 137 MiB with it, for +0.4 CPU-s.
RELEASE_EVERY_BYTES = 32 * 2**20


class ShardedItems:
    def __init__(self, shards: list[np.ndarray], shard_items: int, channels: int, divisor: float,
                 digest: str, index: np.ndarray | None = None, counter: list[int] | None = None):
        self.shards = shards  # each (n_s, C_s, ...) in a compact dtype, all full but the last
        self.shard_items = shard_items
        self.channels = channels  # C of the float items; a shard of fewer channels is repeated up
        self.divisor = divisor  # float item = stored value / divisor (255 for uint8 pixels)
        self.digest = digest  # the cache's content checksum, for the data fingerprint
        total = sum(len(s) for s in shards)
        self.index = np.arange(total, dtype=np.int64) if index is None else index
        self.counter = [0] if counter is None else counter  # bytes gathered since the last release, shared by views

    # -- what code reading `LoadedData.items` asks of a tensor ----------------------------------
    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.index), self.channels, *self.shards[0].shape[2:]))

    dtype = torch.float32
    device = torch.device("cpu")

    @property
    def nbytes(self) -> int:  # as float32, like the tensor it stands in for
        return int(np.prod(self.shape)) * 4

    def __len__(self) -> int:
        return len(self.index)

    def dim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key: Any) -> "ShardedItems | torch.Tensor":
        if isinstance(key, (int, np.integer)):
            return self._view(self.index[[int(key)]]).to()[0]
        if isinstance(key, torch.Tensor):
            key = key.cpu().numpy()
        return self._view(self.index[key])

    def _view(self, index: np.ndarray) -> "ShardedItems":
        return ShardedItems(self.shards, self.shard_items, self.channels, self.divisor, self.digest,
                            np.ascontiguousarray(index, dtype=np.int64), self.counter)

    def fingerprint_bytes(self) -> bytes:
        """What identifies these items: the cache's content and which of its rows they are."""
        return hashlib.sha256(self.digest.encode() + self.index.tobytes()).digest()

    # -- reading --------------------------------------------------------------------------------
    def gather(self) -> np.ndarray:
        """The rows of this view, in their stored dtype: (n, C, ...)."""
        first = self.shards[0]
        out = np.empty((len(self.index), self.channels, *first.shape[2:]), dtype=first.dtype)
        shard_of, row = np.divmod(self.index, self.shard_items)
        for s in np.unique(shard_of):
            here = shard_of == s
            rows = self.shards[s][row[here]]  # fancy indexing reads just these rows from the map
            out[here] = rows if rows.shape[1] == self.channels else np.repeat(rows, self.channels, axis=1)
        self.counter[0] += out.nbytes
        if self.counter[0] >= RELEASE_EVERY_BYTES:
            self.release()
        return out

    def release(self) -> None:
        """Drop the shards' pages from this process's page tables (not from the page cache)."""
        self.counter[0] = 0
        for shard in self.shards:
            view = getattr(shard, "_mmap", None)
            if isinstance(view, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
                view.madvise(mmap.MADV_DONTNEED)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None,
           non_blocking: bool = False, **_: Any) -> torch.Tensor:
        """The items as a float32 tensor on `device`: gathered on the host, converted there."""
        stored = torch.from_numpy(self.gather()).to(device or "cpu", non_blocking=non_blocking)
        items = stored.float()
        if self.divisor != 1:
            items = items.div_(self.divisor)
        return items if dtype is None else items.to(dtype)

    def float(self) -> torch.Tensor:
        return self.to()

    def cpu(self) -> torch.Tensor:
        return self.to()

    def detach(self) -> torch.Tensor:
        return self.to()

    def numpy(self) -> np.ndarray:
        return self.to().numpy()

    def materialize(self) -> torch.Tensor:
        return self.to()
