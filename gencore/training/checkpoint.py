"""Resumable train state: `checkpoints/step-NNNNNNNN/` with safetensors plus JSON, no pickle.

train_state.safetensors holds the model and optimizer tensors and the torch RNG states as byte
tensors; train_state.json the counters and the Python and numpy RNG states. A checkpoint folder
is built under a temp name and renamed into place, so it is complete or absent.
"""
from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gencore.errors import GenError
from gencore.storage import fsync_dir, load_tensors, os_error, read_json, save_tensors, write_json

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
    state_json = {"step": step, **counters, "param_groups": [
        {k: v for k, v in g.items() if k != "params"} for g in opt_state["param_groups"]], "rng": rng_json}
    try:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True, exist_ok=True)
        save_tensors(staging / "train_state.safetensors", tensors, "train_state", domain)
        write_json(staging / "train_state.json", state_json)
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
        fsync_dir(root)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise os_error(exc, final) from exc
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    root = run_dir / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-"))


def load(path: Path, domain: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore model, optimizer and RNG states in place; return the counters."""
    tensors = load_tensors(path / "train_state.safetensors", "train_state", domain)
    state = read_json(path / "train_state.json", "train state")
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            opt_state.setdefault(int(index), {})[name] = value
    groups = optimizer.state_dict()["param_groups"]
    for group, saved in zip(groups, state["param_groups"]):
        group.update({k: v for k, v in saved.items() if k in group})
    try:
        optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    except (ValueError, KeyError) as exc:
        raise GenError(f"optimizer state does not fit the model ({exc})", where=str(path),
                       hint="the checkpoint belongs to another run") from exc
    set_rng_state(tensors, state["rng"])
    return state
