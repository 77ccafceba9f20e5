"""torch.distributed under torchrun: rank and world size from the environment, gloo on CPU (bound
to the loopback for single-machine runs), nccl on GPU. With no torchrun around, everything here
is a no-op for one process."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

TIMEOUT = timedelta(minutes=10)  # a rank stuck this long in a collective fails instead of hanging


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def from_env() -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    return Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def init(dist: Dist, device: torch.device) -> torch.device:
    """Join the process group; returns this rank's device."""
    if not dist.active:
        return device
    import torch.distributed as td

    if device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
        if os.environ.get("MASTER_ADDR", "127.0.0.1") in ("127.0.0.1", "localhost"):
            os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    if not td.is_initialized():
        td.init_process_group(backend, timeout=TIMEOUT)
    return device


def barrier(dist: Dist) -> None:
    if dist.active:
        import torch.distributed as td

        td.barrier()


def broadcast(dist: Dist, value: Any) -> Any:
    """Rank 0's `value` on every rank (JSON-like objects only)."""
    if not dist.active:
        return value
    import torch.distributed as td

    box = [value if dist.main else None]
    td.broadcast_object_list(box, src=0)
    return box[0]


def shutdown(dist: Dist) -> None:
    if dist.active:
        import torch.distributed as td

        if td.is_initialized():
            import gc

            # A DDP wrapper left in a reference cycle would otherwise be freed after its process
            # group, at exit, which aborts the process ("terminate called without an active exception").
            gc.collect()
            td.destroy_process_group()
