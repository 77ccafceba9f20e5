"""`gen train` end to end: load data through the domain, lay out the run folder, train, then
finish the run (latent prior, split weights, previews, domain metrics, completion marker)."""
from __future__ import annotations

import platform
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from gencore import __version__, console
from gencore.errors import GenError
from gencore.models.autoencoder import AutoEncoder, model_spec
from gencore.plots import loss_curve
from gencore.plugin import Domain, LoadedData
from gencore.runs import COMPLETE, CONFIG, RUNS_ROOT, check_config
from gencore.storage import (FORMAT_VERSION, load_tensors, read_json, read_jsonl, save_tensors, write_json, write_png,
                             write_text)
from gencore.distributed import Dist, barrier, broadcast
from gencore.training import checkpoint
from gencore.training.data import fingerprint, prepare, reload
from gencore.training.settings import TrainSettings
from gencore.training.trainer import Trainer, choose_val_indices

PREVIEW_COLUMNS = 8
METRIC_SAMPLES_PER_CLASS = 100


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
    config = read_json(folder / CONFIG, "run config")
    check_config(config, folder)
    if config["domain"] != domain:
        raise GenError(f"--init run belongs to the {config['domain']!r} domain, not {domain!r}",
                       where=str(folder), hint=f"pick a run trained with `gen train {domain}`")
    if config["model"] != spec:
        diff = [k for k in spec if config["model"].get(k) != spec[k]]
        raise GenError(f"--init run has a different model ({', '.join(diff)} differ)", where=str(folder),
                       hint="match --arch, --latent, --width and the data shape of that run")
    return load_tensors(folder / "model.safetensors", "model", domain)


def start(domain: Domain, source: str | None, options: dict[str, Any], settings: TrainSettings,
          out: Path | None, device: torch.device, init: str | None, dist: Dist = Dist()) -> Path:
    """A new run: load, lay out config.json, train, finish. Returns the run folder."""
    data = prepare(domain, source, options, limit=settings.limit, seed=settings.seed,
                   condition=settings.condition, drop=settings.drop_classes)
    if settings.arch == "denoiser":
        from gencore.training.denoise import start_denoiser

        return start_denoiser(domain, source, data, options, settings, out, device, init)
    cond_dim = 0 if data.conditions is None else int(data.conditions.shape[1])
    val_indices = choose_val_indices(data.items.shape[0], settings.val_fraction, settings.seed)
    settings = settings.resolved(data.items.shape[0] - len(val_indices), device.type, dist.world)
    spec = model_spec(settings.arch, data.item_kind, data.item_shape, data.likelihood, cond_dim,
                      settings.latent_dim, settings.width, settings.hidden)
    init_state = load_init(init, domain.name, spec) if init else None
    config = {
        "format_version": FORMAT_VERSION, "gencore_version": __version__,
        "domain": domain.name, "arch": settings.arch, "model": spec,
        "condition": {"type": ("multi-hot" if data.multi_label else "one-hot") if cond_dim else "none",
                      "dim": cond_dim},
        "class_names": data.class_names if cond_dim else [],
        "data": {"source": source or domain.default_data, "options": options, "item_kind": data.item_kind,
                 "item_shape": list(data.item_shape), "likelihood": data.likelihood, "meta": data.meta,
                 "normalisation": data.normalisation, "class_weights": data.class_weights,
                 "multi_label": data.multi_label},
        "fingerprint": fingerprint(data),
        "split": {"seed": settings.seed, "val_fraction": settings.val_fraction, "val_indices": val_indices},
        "train": settings.to_json(), "init": init,
        "command": ["gen", *sys.argv[1:]], "seed": settings.seed,
        "torch_version": torch.__version__, "python_version": platform.python_version(),
        "device": str(device), "world_size": dist.world, "created": now(),
    }
    # Rank 0 chooses the run folder and tells the others; they wait for it here.
    run_dir = None
    if dist.main:
        run_dir = claim_run_dir(out, domain.name, settings.arch)
        write_json(run_dir / CONFIG, config)
        console.info(f"run folder: {run_dir}")
        _describe(data, spec, settings, device, dist)
    run_dir, config = broadcast(dist, (str(run_dir) if run_dir else None, config))
    run_dir = Path(run_dir)
    model = Trainer(run_dir, domain, data, spec, config, settings, device, dist, init_state=init_state).fit()
    if dist.main:
        finish(run_dir, domain, data, config, model, settings)
    return run_dir


def resume(run_dir: Path, domain: Domain, epochs: int | None, device: torch.device, dist: Dist = Dist()) -> Path:
    config = read_json(run_dir / CONFIG, "run config")
    check_config(config, run_dir)
    if config["domain"] != domain.name:
        raise GenError(f"--resume run belongs to the {config['domain']!r} domain, not {domain.name!r}",
                       where=str(run_dir), hint=f"resume it with `gen train {config['domain']} --resume {run_dir}`")
    if config["arch"] == "denoiser":
        raise GenError("denoiser runs cannot be resumed", where=str(run_dir),
                       hint="train a new one, e.g. with --max-minutes to bound the time")
    checkpoints = checkpoint.list_checkpoints(run_dir)
    if not checkpoints:
        raise GenError("run has no checkpoint to resume from", where=str(run_dir), hint="start a new run instead")
    settings = TrainSettings.from_json(config["train"])
    if epochs is not None:
        settings.epochs = epochs
        config["train"]["epochs"] = epochs
    data = reload(config, domain)
    barrier(dist)  # every rank has read the old config and checkpoint list before rank 0 rewrites
    if dist.main:
        write_json(run_dir / CONFIG, config)
        (run_dir / COMPLETE).unlink(missing_ok=True)
        for stale in run_dir.glob(".*.tmp"):  # temp files of atomic writes that a kill cut short
            stale.unlink(missing_ok=True)
    trainer = Trainer(run_dir, domain, data, config["model"], config, settings, device, dist)
    trainer.resume(checkpoints[-1])
    if dist.main:
        _forget_epochs_after(run_dir / "metrics.jsonl", trainer.counters["epoch"])
    model = trainer.fit()
    if dist.main:
        finish(run_dir, domain, data, config, model, settings)
    return run_dir


def _forget_epochs_after(metrics: Path, epoch: int) -> None:
    """Drop the rows of epochs the resumed run will train again (killed before their checkpoint)."""
    import json

    rows = read_jsonl(metrics)
    kept = [r for r in rows if not (r.get("event") == "epoch" and r.get("epoch", 0) > epoch)]
    if len(kept) != len(rows):
        write_text(metrics, "".join(json.dumps(r) + "\n" for r in kept))


def _describe(data: LoadedData, spec: dict[str, Any], settings: TrainSettings, device: torch.device,
              dist: Dist) -> None:
    n_params = sum(p.numel() for p in AutoEncoder(spec).parameters())
    classes = f"{len(data.class_names)} classes" if spec["cond_dim"] else "unconditional"
    console.info(f"{data.items.shape[0]} items of shape {tuple(data.item_shape)}, {classes}; "
                 f"{settings.arch}, latent {spec['latent_dim']}, {n_params:,} parameters; "
                 f"{settings.epochs} epochs of batch {settings.batch_size} on {device}"
                 + (f" x {dist.world} processes (each {settings.batch_size // dist.world} per step)"
                    if dist.active else ""))


@torch.no_grad()
def fit_code_statistics(model: AutoEncoder, items: torch.Tensor, conds: torch.Tensor | None) -> None:
    """Gaussian statistics of the training codes. Deterministic arches (ae, cae, dae) have no
    prior, so they sample from this Gaussian (ex-post density estimation, Ghosh et al. 2020),
    stored in the decoder; every arch stores its precision in the encoder for Mahalanobis scores."""
    device = model.decoder.prior_mean.device
    mus = [model.encode(items[i:i + 1024].to(device), None if conds is None else conds[i:i + 1024].to(device))[0]
           for i in range(0, items.shape[0], 1024)]
    z = torch.cat(mus).double()
    d = z.shape[1]
    eye = torch.eye(d, dtype=z.dtype, device=z.device)
    mean = z.mean(dim=0)
    cov = (torch.cov(z.T).reshape(d, d) if z.shape[0] > 1 else eye) + 1e-5 * eye
    if not model.stochastic:
        model.decoder.prior_mean.copy_(mean.float())
        model.decoder.prior_chol.copy_(torch.linalg.cholesky(cov).float())
    model.encoder.code_mean.copy_(mean.float())
    model.encoder.code_precision_chol.copy_(torch.linalg.cholesky(torch.linalg.inv(cov)).float())


def finish(run_dir: Path, domain: Domain, data: LoadedData, config: dict[str, Any], model: AutoEncoder,
           settings: TrainSettings) -> None:
    model.eval()
    train = torch.ones(data.items.shape[0], dtype=torch.bool)
    train[torch.tensor(config["split"]["val_indices"], dtype=torch.long)] = False
    fit_code_statistics(model, data.items[train], None if data.conditions is None else data.conditions[train])
    save_tensors(run_dir / "model.safetensors", model.state_dict(), "model", domain.name)
    save_tensors(run_dir / "encoder.safetensors", model.encoder.state_dict(), "encoder", domain.name)
    save_tensors(run_dir / "decoder.safetensors", model.decoder.state_dict(), "decoder", domain.name)

    from gencore.api import load_run  # the finished run is read back like any user would

    run = load_run(run_dir, device=str(model.decoder.prior_mean.device))
    classes = run.class_names or None
    preview_items, _, _ = run.sample_with_labels(PREVIEW_COLUMNS, classes, seed=settings.seed)
    write_png(run_dir / "samples.png", domain.preview(preview_items, config["data"], PREVIEW_COLUMNS))

    per_class = METRIC_SAMPLES_PER_CLASS if classes else METRIC_SAMPLES_PER_CLASS * 5
    samples, _, conds = run.sample_with_labels(per_class, classes, seed=settings.seed + 1)
    rows = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r.get("event") == "epoch"]
    last = rows[-1] if rows else {}
    best = next((r for r in rows if r["epoch"] == getattr(model, "best_epoch", -1)), last)
    final = {"event": "final", "best_epoch": best.get("epoch"), "stopped_early": getattr(model, "stopped_early", False),
             **{k: best.get(k) for k in ("val_loss", "val_recon", "val_kl", "val_neg_elbo", "active_units")}}
    final.update(domain.metrics(samples, conds, data, config["data"], settings.seed))
    from gencore.training.trainer import _json_line
    from gencore.storage import append_line
    append_line(run_dir / "metrics.jsonl", _json_line(final))
    if rows:
        loss_curve(rows, run_dir / "loss.png", f"{config['domain']} {config['arch']}")
    write_json(run_dir / COMPLETE, {"format_version": FORMAT_VERSION, "domain": config["domain"], "finished": now(),
                                     "metrics": final})
    summary = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in final.items() if k != "event" and v is not None)
    console.info(f"done: {summary}")
