"""Choosing the torch device for `--device auto|cpu|cuda|mps`."""
from __future__ import annotations

from gencore.errors import GenError

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str | None):
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    base = name.split(":")[0]
    if base not in DEVICES:
        raise GenError(f"unknown device {name!r}", where="--device", hint="use auto, cpu, cuda or mps")
    if base == "cuda" and not torch.cuda.is_available():
        raise GenError("CUDA is not available on this machine", where="--device",
                       hint="use --device auto or cpu")
    if base == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise GenError("MPS is not available on this machine", where="--device", hint="use --device auto or cpu")
    return torch.device(name)
