"""Resumable train state: `checkpoints/step-NNNNNNNN/` with safetensors plus JSON, no pickle.

train_state.safetensors holds the model and optimizer tensors and the torch RNG states as byte
tensors; train_state.json the counters and the Python and numpy RNG states. A checkpoint folder
is built under a temp name and renamed into place, so it is complete or absent.
"""
from __future__ import annotations

import math
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gencore.errors import RunFormatError
from gencore.storage import (FORMAT_VERSION, READABLE_FORMAT_VERSIONS, READABLE_HINT, fsync_dir, load_tensors, os_error,
                             read_json, save_tensors, write_json)

CHECKPOINTS = "checkpoints"


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    py_version, py_state, py_gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    np_state["state"] = {"key": np_state["state"]["key"].tolist(), "pos": int(np_state["state"]["pos"])}
    return tensors, {"python": [py_version, list(py_state), py_gauss], "numpy": np_state}


def set_rng_state(tensors: dict[str, torch.Tensor], states: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted(k for k in tensors if k.startswith("rng.cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda][: torch.cuda.device_count()])
    version, state, gauss = states["python"]
    random.setstate((version, tuple(state), gauss))
    np_state = dict(states["numpy"])
    np_state["state"] = {"key": np.array(np_state["state"]["key"], dtype=np.uint32), "pos": np_state["state"]["pos"]}
    np.random.set_state(np_state)


def save(run_dir: Path, domain: str, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
         counters: dict[str, Any], keep: int) -> Path:
    root = run_dir / CHECKPOINTS
    final = root / f"step-{step:08d}"
    staging = root / f".step-{step:08d}.partial"
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_state = optimizer.state_dict()
    for index, state in opt_state["state"].items():
        for name, value in state.items():
            tensors[f"optim.{index}.{name}"] = value if torch.is_tensor(value) else torch.tensor(value)
    rng_tensors, rng_json = rng_state()
    tensors.update(rng_tensors)
    state_json = {"format_version": FORMAT_VERSION, "domain": domain, "step": step, **counters,
                  "param_groups": [{k: v for k, v in g.items() if k != "params"} for g in opt_state["param_groups"]],
                  "rng": rng_json}
    try:
        _remove_stale(root)
        staging.mkdir(parents=True, exist_ok=True)
        save_tensors(staging / "train_state.safetensors", tensors, "train_state", domain)
        write_json(staging / "train_state.json", state_json)
        # Whatever moment a kill lands on, every `step-*` folder is whole: a folder being
        # replaced or pruned is first renamed aside (atomic), and only then deleted.
        if final.exists():
            final.rename(root / f".step-{step:08d}.old")
        staging.rename(final)
        fsync_dir(root)
        for old in list_checkpoints(run_dir)[:-keep]:
            old.rename(root / f".{old.name}.old")
        fsync_dir(root)
        _remove_stale(root)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise os_error(exc, final) from exc
    return final


def _remove_stale(root: Path) -> None:
    """Delete what killed writers left behind: staging folders and folders renamed aside."""
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name.startswith(".step-"):
                shutil.rmtree(entry, ignore_errors=True)


def list_checkpoints(run_dir: Path) -> list[Path]:
    root = run_dir / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-"))


def load(path: Path, domain: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore model, optimizer and RNG states in place; return the counters."""
    tensors = load_tensors(path / "train_state.safetensors", "train_state", domain)
    state = read_json(path / "train_state.json", "train state")
    where = str(path / "train_state.json")
    if not isinstance(state, dict):
        raise RunFormatError("train state is not a JSON object", where=where, hint=_EDITED)
    if state.get("format_version", FORMAT_VERSION) not in READABLE_FORMAT_VERSIONS:
        raise RunFormatError(f"format version {state['format_version']!r} is not supported", where=where,
                             hint=READABLE_HINT)
    if state.get("domain", domain) != domain:
        raise RunFormatError(f"train state of domain {state['domain']!r}, expected {domain!r}", where=where,
                             hint="the checkpoint was copied in from another run")
    for key, (kind, low) in _FIELDS.items():
        value = state.get(key, None if key in _REQUIRED else {} if kind is dict else low)
        if not isinstance(value, kind) or isinstance(value, bool) or (low is not None and not value >= low):
            raise RunFormatError(f"train state has no valid {key!r}", where=where, hint=_EDITED)
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    except RuntimeError as exc:
        raise RunFormatError(f"weights do not fit the model ({str(exc).splitlines()[0]})",
                             where=str(path / "train_state.safetensors"),
                             hint="the checkpoint belongs to another run") from exc
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    try:
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                opt_state.setdefault(int(index), {})[name] = value
        groups = optimizer.state_dict()["param_groups"]
        if len(state["param_groups"]) != len(groups):
            raise ValueError(f"{len(state['param_groups'])} parameter groups, the optimizer has {len(groups)}")
        for group, saved in zip(groups, state["param_groups"]):
            group.update({k: v for k, v in saved.items() if k in group})
        optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
        set_rng_state(tensors, state["rng"])
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as exc:
        raise RunFormatError(f"train state is incomplete or does not fit the model ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:120]})", where=str(path), hint=_EDITED) from exc
    return state


# What train_state.json holds: each field's kind and least value. Only the first five must be
# there; checkpoints written before the other counters existed lack them.
_FIELDS = {"step": (int, 0), "epoch": (int, 0), "batch": (int, 0), "param_groups": (list, None), "rng": (dict, None),
           "best_epoch": (int, -1), "bad_epochs": (int, 0), "nan_rollbacks": (int, 0), "world_size": (int, 1),
           "threads": (int, 1), "lr_scale": ((int, float), 0), "best_val": ((int, float), -math.inf),
           "sums": (dict, None)}
_REQUIRED = {"step", "epoch", "batch", "param_groups", "rng"}
_EDITED = "the checkpoint was edited or belongs to another run; resume from an earlier one or retrain"
