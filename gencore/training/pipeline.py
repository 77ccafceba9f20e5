"""`gen train` end to end: load data through the domain, lay out the run folder, train, then
finish the run (latent prior, split weights, previews, domain metrics, completion marker)."""
from __future__ import annotations

import platform
import shutil
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from gencore import __version__, console
from gencore.errors import GenError
from gencore.archs import get_arch
from gencore.plots import loss_curve
from gencore.plugin import Domain, LoadedData
from gencore.runconfig import ModelSpec, RunConfig, Split
from gencore.sharded import ShardedItems
from gencore.runs import COMPLETE, CONFIG, RUNS_ROOT, read_config, write_complete
from gencore.storage import FORMAT_VERSION, append_line, load_tensors, read_json, read_jsonl, write_json, write_text
from gencore.distributed import Dist, barrier, broadcast
from gencore.training import checkpoint
from gencore.training.data import fingerprint, prepare, reload
from gencore.training.settings import TrainSettings
from gencore.training.trainer import FitResult, Trainer, json_line


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_dir(domain: str, arch: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = RUNS_ROOT / f"{domain}-{arch}-{stamp}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def claim_run_dir(out: Path | None, domain: str, arch: str) -> Path:
    path = out or new_run_dir(domain, arch)
    if path.exists() and any(path.iterdir()):
        raise GenError("output folder exists and is not empty", where=str(path),
                       hint="pick a new -o, or continue that run with --resume")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from gencore.storage import os_error
        raise os_error(exc, path) from exc
    return path


def clear_unstarted(folder: Path) -> bool:
    """Empty a run folder killed before its first checkpoint (config.json, metrics.jsonl, temp
    files and no checkpoint), so that `--resume auto` can start it again. Anything else stays."""
    if not (folder / CONFIG).is_file() or checkpoint.list_checkpoints(folder):
        return False
    known = {CONFIG, "metrics.jsonl", checkpoint.CHECKPOINTS}
    entries = list(folder.iterdir())
    if any(e.name not in known and not e.name.startswith(".") for e in entries):
        return False
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return True


def load_init(run: str, domain: str, spec: dict[str, Any]) -> dict[str, torch.Tensor]:
    from gencore.runs import resolve_run

    folder = resolve_run(run)
    config = read_config(read_json(folder / CONFIG, "run config"), folder)
    if config.domain != domain:
        raise GenError(f"--init run belongs to the {config.domain!r} domain, not {domain!r}",
                       where=str(folder), hint=f"pick a run trained with `gen train {domain}`")
    theirs = config.model.to_json()
    if theirs != spec:
        diff = [k for k in spec if theirs.get(k) != spec[k]]
        hint = "match --arch, --latent, --width and the data shape of that run"
        if "conditioning" in diff and "conditioning" not in theirs:
            hint = "that run has format_version 1's network layout, which cannot seed a new run; train without --init"
        raise GenError(f"--init run has a different model ({', '.join(diff)} differ)", where=str(folder), hint=hint)
    return load_tensors(folder / "model.safetensors", "model", domain)


def build_config(domain: Domain, source: str | None, options: dict[str, Any], data: LoadedData,
                 spec: dict[str, Any], settings: TrainSettings, val_indices: list[int], init: str | None,
                 device: torch.device, dist: Dist) -> RunConfig:
    """config.json of a new run: everything needed to rebuild its model and its data."""
    arch = get_arch(settings.arch)
    cond_dim = spec.get("cond_dim", 0)
    return RunConfig(
        domain=domain.name, arch=settings.arch, model=ModelSpec(**spec),
        condition_type=("multi-hot" if data.multi_label else "one-hot") if cond_dim else "none",
        class_names=data.class_names if cond_dim else [],
        data={"source": source or domain.default_data, "options": options, "item_kind": data.item_kind,
              **arch.item_facts(data), "meta": data.meta, "normalisation": data.normalisation,
              "class_weights": data.class_weights, "multi_label": data.multi_label,
              "cached": isinstance(data.items, ShardedItems)},
        fingerprint=fingerprint(data), split=Split(settings.seed, val_indices, settings.val_fraction),
        train=settings.to_json(), init=init, command=["gen", *sys.argv[1:]], seed=settings.seed,
        torch_version=torch.__version__, python_version=platform.python_version(), device=str(device),
        world_size=dist.world, created=now(), gencore_version=__version__, format_version=FORMAT_VERSION,
    )


def start(domain: Domain, source: str | None, options: dict[str, Any], settings: TrainSettings,
          out: Path | None, device: torch.device, init: str | None, dist: Dist = Dist(),
          cache: str = "auto") -> Path:
    """A new run: load, lay out config.json, train, finish. Returns the run folder. The settings
    are validated here, so a call from Python gets the same errors as `gen train`. `cache` says
    when to read the data through the decoded-data cache: auto (large folders), on or off."""
    settings.validate()
    arch = get_arch(settings.arch)
    data = prepare(domain, source, options, limit=settings.limit, seed=settings.seed,
                   condition=settings.condition, drop=settings.drop_classes, cache=cache, dist=dist)
    arch.check_data(domain, data)
    val_indices = arch.val_indices(data, settings)
    sized = domain.data_training_defaults(data, settings, data.items.shape[0] - len(val_indices))
    settings = replace(settings, **{k: v for k, v in sized.items() if getattr(settings, k) is None}).validate()
    settings = arch.resolve(settings, data, len(val_indices), device.type, dist.world)
    spec = arch.model_spec(settings, data)
    init_state = load_init(init, domain.name, spec) if init else None
    config = build_config(domain, source, options, data, spec, settings, val_indices, init, device, dist)
    # Rank 0 chooses the run folder and tells the others; they wait for it here.
    run_dir = None
    if dist.main:
        run_dir = claim_run_dir(out, domain.name, settings.arch)
        write_json(run_dir / CONFIG, config.to_json())
        console.info(f"run folder: {run_dir}")
        _describe(arch.describe(data, spec, settings), settings, device, dist)
    run_dir, created = broadcast(dist, (str(run_dir) if run_dir else None, config.created))
    run_dir, config.created = Path(run_dir), created
    fit = Trainer(run_dir, domain, data, spec, config, settings, device, dist, init_state=init_state).fit()
    if dist.main:
        finish(run_dir, domain, data, config, fit, settings)
    return run_dir


def resume(run_dir: Path, domain: Domain, epochs: int | None, device: torch.device, dist: Dist = Dist()) -> Path:
    config = read_config(read_json(run_dir / CONFIG, "run config"), run_dir)
    if config.domain != domain.name:
        raise GenError(f"--resume run belongs to the {config.domain!r} domain, not {domain.name!r}",
                       where=str(run_dir), hint=f"resume it with `gen train {config.domain} --resume {run_dir}`")
    checkpoints = checkpoint.list_checkpoints(run_dir)
    if not checkpoints:
        raise GenError("run has no checkpoint to resume from", where=str(run_dir), hint="start a new run instead")
    settings = TrainSettings.from_json(config.train)
    if epochs is not None:
        settings.epochs = epochs
        config.train["epochs"] = epochs
    data = reload(config, domain, dist, lazy=True)
    barrier(dist)  # every rank has read the old config and checkpoint list before rank 0 rewrites
    if dist.main:
        write_json(run_dir / CONFIG, config.to_json())
        (run_dir / COMPLETE).unlink(missing_ok=True)
        for stale in run_dir.glob(".*.tmp"):  # temp files of atomic writes that a kill cut short
            stale.unlink(missing_ok=True)
    trainer = Trainer(run_dir, domain, data, config.model.to_json(), config, settings, device, dist)
    trainer.resume(checkpoints[-1])
    if dist.main:
        _forget_epochs_after(run_dir / "metrics.jsonl", trainer.counters["epoch"])
    fit = trainer.fit()
    if dist.main:
        finish(run_dir, domain, data, config, fit, settings)
    return run_dir


def _forget_epochs_after(metrics: Path, epoch: int) -> None:
    """Drop the rows of epochs the resumed run will train again (killed before their checkpoint)."""
    import json

    rows = read_jsonl(metrics)
    kept = [r for r in rows if not (r.get("event") == "epoch" and r.get("epoch", 0) > epoch)]
    if len(kept) != len(rows):
        write_text(metrics, "".join(json.dumps(r) + "\n" for r in kept))


def _describe(about: str, settings: TrainSettings, device: torch.device, dist: Dist) -> None:
    console.info(f"{about}; {settings.epochs} epochs of batch {settings.batch_size} on {device}"
                 + (f" x {dist.world} processes (each {settings.batch_size // dist.world} per step)"
                    if dist.active else ""))


BEST_ROW_KEYS = ("val_loss", "val_recon", "val_kl", "val_neg_elbo", "active_units")


def finish(run_dir: Path, domain: Domain, data: LoadedData, config: RunConfig, fit: FitResult,
           settings: TrainSettings) -> None:
    """The arch writes its files and measures; then the final metrics row, the loss curve and,
    last, complete.json."""
    metrics = get_arch(config.arch).finish(run_dir, domain, data, config, fit.model, settings)
    rows = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r.get("event") == "epoch"]
    best = next((r for r in rows if r["epoch"] == fit.best_epoch), rows[-1] if rows else {})
    final = {"event": "final", "best_epoch": best.get("epoch"), "stopped_early": fit.stopped_early,
             **{k: best[k] for k in BEST_ROW_KEYS if k in best}, **metrics}
    append_line(run_dir / "metrics.jsonl", json_line(final))
    if rows:
        loss_curve(rows, run_dir / "loss.png", f"{config.domain} {config.arch}")
    write_complete(run_dir, config.domain, {"finished": now(), "metrics": final})
    summary = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in final.items() if k != "event" and v is not None)
    console.info(f"done: {summary}")
