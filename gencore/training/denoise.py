"""Training the `denoiser` arch: random patches of whole images, noise from the domain's
corruption, then clipped and rounded to 8 bits as users meet noise. The model is told the noise
level it faces (the realised standard deviation of each patch's noise); validation reports PSNR
on fixed noisy patches."""
from __future__ import annotations

import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from gencore import __version__, console
from gencore.errors import GenError
from gencore.models.denoiser import Denoiser, denoiser_spec
from gencore.plots import loss_curve
from gencore.plugin import Domain, LoadedData
from gencore.runs import CONFIG
from gencore.storage import (FORMAT_VERSION, append_line, load_tensors, read_json, read_jsonl, save_tensors,
                             write_json, write_png)
from gencore.training import checkpoint
from gencore.training.pipeline import claim_run_dir, load_init, now
from gencore.training.settings import TrainSettings, lr_at

VAL_PATCHES = 64


def psnr(clean: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """PSNR in dB on a [0, 1] range, per item (B,)."""
    mse = (clean - estimate.clamp(0, 1)).pow(2).flatten(1).mean(dim=1).clamp_min(1e-12)
    return 10 * torch.log10(1.0 / mse)


class PatchSampler:
    """Random crops with random flips and quarter turns, chosen in proportion to image area."""

    def __init__(self, images: list[torch.Tensor], patch: int, device: torch.device):
        self.images = [im.to(device) for im in images]
        areas = torch.tensor([im.shape[-1] * im.shape[-2] for im in images], dtype=torch.float64)
        self.weights = areas / areas.sum()
        self.patch = patch

    def __call__(self, n: int, g: torch.Generator) -> torch.Tensor:
        picks = torch.multinomial(self.weights, n, replacement=True, generator=g).tolist()
        out = []
        for k in picks:
            im = self.images[k]
            top = int(torch.randint(0, im.shape[-2] - self.patch + 1, (1,), generator=g))
            left = int(torch.randint(0, im.shape[-1] - self.patch + 1, (1,), generator=g))
            crop = im[:, top:top + self.patch, left:left + self.patch]
            turns, flip = int(torch.randint(0, 4, (1,), generator=g)), bool(torch.randint(0, 2, (1,), generator=g))
            crop = torch.rot90(crop, turns, dims=(1, 2))
            out.append(crop.flip(-1) if flip else crop)
        return torch.stack(out)  # (n, C, P, P)


def noisy_pair(domain: Domain, clean: torch.Tensor, g: torch.Generator, spec: dict[str, Any]):
    """Corrupt, clip, round to 8 bits; return the noisy input and its realised noise level."""
    noisy = (domain.corrupt(clean, g, spec=spec).clamp(0, 1) * 255).round() / 255
    sigma = (noisy - clean).flatten(1).std(dim=1)
    return noisy, sigma


class DenoiserTrainer:
    def __init__(self, run_dir: Path, domain: Domain, data: LoadedData, spec: dict[str, Any],
                 config: dict[str, Any], settings: TrainSettings, device: torch.device, max_minutes: float | None):
        self.run_dir, self.domain, self.spec, self.config = run_dir, domain, spec, config
        self.settings, self.device, self.max_minutes = settings, device, max_minutes
        torch.manual_seed(settings.seed)
        self.model = Denoiser(spec).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=settings.lr)
        patch = config["data"]["meta"]["patch"]
        self.sampler = PatchSampler(data.images, patch, device)
        g = torch.Generator().manual_seed(settings.seed + 1)
        self.val_clean = self.sampler(VAL_PATCHES, g)
        self.val_noisy, self.val_sigma = noisy_pair(domain, self.val_clean, g, config["data"])
        # An epoch draws as many patches as it takes to cover the corpus's area once.
        area = sum(im.shape[-1] * im.shape[-2] for im in data.images)
        self.steps_per_epoch = max(1, math.ceil(area / patch**2 / settings.batch_size))
        self.total_steps = settings.epochs * self.steps_per_epoch
        self.autocast = device.type == "cuda"  # bf16 on GPUs; fp32 on CPUs keeps CI exact

    def fit(self) -> Denoiser:
        settings, best, step = self.settings, -math.inf, 0
        started = time.perf_counter()
        progress = console.TrainProgress(self.total_steps, 0, settings.batch_size)
        counters = {"epoch": 0, "batch": 0, "best_val": math.inf, "best_epoch": -1, "bad_epochs": 0}
        try:
            for epoch in range(settings.epochs):
                g = torch.Generator().manual_seed(settings.seed * 100_003 + epoch)
                total, t0 = 0.0, time.perf_counter()
                for _ in range(self.steps_per_epoch):
                    clean = self.sampler(settings.batch_size, g)
                    noisy, sigma = noisy_pair(self.domain, clean, g, self.config["data"])
                    for group in self.optimizer.param_groups:
                        group["lr"] = lr_at(step, self.total_steps, settings.lr)
                    with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                        loss = F.mse_loss(self.model(noisy, sigma).float(), clean)
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    self.optimizer.step()
                    total += loss.item()
                    step += 1
                    progress.advance(step, f"epoch {epoch + 1}/{settings.epochs}")
                val = self.validate()
                improved = val > best
                if improved:
                    best = val
                    counters.update(best_val=-val, best_epoch=epoch + 1)
                    save_tensors(self.run_dir / "model.safetensors", self.model.state_dict(), "model", self.domain.name)
                counters["epoch"] = epoch + 1
                row = {"event": "epoch", "epoch": epoch + 1, "step": step, "train_loss": total / self.steps_per_epoch,
                       "val_psnr": val, "val_loss": -val, "lr": lr_at(step, self.total_steps, settings.lr),
                       "samples_per_s": self.steps_per_epoch * settings.batch_size / (time.perf_counter() - t0),
                       "best": improved}
                append_line(self.run_dir / "metrics.jsonl", _line(row))
                progress.epoch_done(f"epoch {epoch + 1}/{settings.epochs}", f"val PSNR {val:.2f} dB (best {best:.2f})")
                checkpoint.save(self.run_dir, self.domain.name, step, self.model, self.optimizer, counters,
                                settings.keep_checkpoints)
                if self.max_minutes and time.perf_counter() - started > 60 * self.max_minutes:
                    console.info(f"stopping after {self.max_minutes:g} minutes (--max-minutes), at epoch {epoch + 1}")
                    break
        finally:
            progress.close()
        self.model.load_state_dict(load_tensors(self.run_dir / "model.safetensors", "model", self.domain.name))
        return self.model.eval()

    @torch.no_grad()
    def validate(self) -> float:
        self.model.eval()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            out = self.model(self.val_noisy, self.val_sigma).float()
        self.model.train()
        return float(psnr(self.val_clean, out).mean())

    def finish(self, model: Denoiser) -> dict[str, float]:
        with torch.no_grad():
            out = model(self.val_noisy[:8], self.val_sigma[:8]).clamp(0, 1)
        strip = torch.cat([self.val_clean[:8], self.val_noisy[:8], out]).cpu()
        write_png(self.run_dir / "samples.png", self.domain.preview(strip, self.config["data"], 8))
        noisy_psnr = float(psnr(self.val_clean, self.val_noisy).mean())
        final = {"event": "final", "val_psnr": self.validate(), "val_noisy_psnr": noisy_psnr}
        append_line(self.run_dir / "metrics.jsonl", _line(final))
        return final


def _line(row: dict[str, Any]) -> str:
    import json

    return json.dumps(row)


def start_denoiser(domain: Domain, source: str | None, data: LoadedData, options: dict[str, Any],
                   settings: TrainSettings, out: Path | None, device: torch.device, init: str | None = None) -> Path:
    if data.images is None:
        raise GenError("--arch denoiser trains on random crops of whole images", where="--arch denoiser",
                       hint=f"add a patch size, e.g. gen train {domain.name} --arch denoiser --patch 64")
    patches = sum(im.shape[-1] * im.shape[-2] for im in data.images) // data.meta["patch"] ** 2
    settings = settings.resolved(max(1, patches))  # auto epochs: about 2,000 steps
    spec = denoiser_spec(data.images[0].shape[0], widths=(settings.width, 2 * settings.width, 4 * settings.width))
    init_state = load_init(init, domain.name, spec) if init else None
    run_dir = claim_run_dir(out, domain.name, "denoiser")
    config = {
        "format_version": FORMAT_VERSION, "gencore_version": __version__, "domain": domain.name,
        "arch": "denoiser", "model": spec, "condition": {"type": "none", "dim": 0}, "class_names": [],
        "data": {"source": source or domain.default_data, "options": options, "item_kind": "grid2d",
                 "item_shape": [spec["channels"], None, None], "likelihood": "gaussian", "meta": data.meta,
                 "normalisation": data.normalisation},
        "fingerprint": {"sources": data.sources[:50], "n_sources": len(data.sources), "count": len(data.images)},
        "split": {"seed": settings.seed, "val_indices": []}, "train": settings.to_json(), "init": init,
        "command": ["gen", *sys.argv[1:]], "seed": settings.seed, "torch_version": torch.__version__,
        "python_version": platform.python_version(), "device": str(device), "created": now(),
    }
    write_json(run_dir / CONFIG, config)
    n_params = sum(p.numel() for p in Denoiser(spec).parameters())
    console.info(f"run folder: {run_dir}\n{len(data.images)} images, {data.meta['patch']}-pixel patches, "
                 f"noise {data.meta.get('noise')}; denoiser, {n_params:,} parameters; {settings.epochs} epochs of "
                 f"{settings.batch_size} patches on {device}")
    trainer = DenoiserTrainer(run_dir, domain, data, spec, config, settings, device, settings.max_minutes)
    if init_state is not None:  # fine-tuning: --init names a denoiser run with the same network
        trainer.model.load_state_dict(init_state)
    model = trainer.fit()
    final = trainer.finish(model)
    rows = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r.get("event") == "epoch"]
    loss_curve(rows, run_dir / "loss.png", f"{domain.name} denoiser")
    write_complete(run_dir, final, now())
    console.info(f"done: validation PSNR {final['val_psnr']:.2f} dB (noisy input {final['val_noisy_psnr']:.2f} dB)")
    return run_dir


def write_complete(run_dir: Path, final: dict[str, Any], finished: str) -> None:
    config = read_json(run_dir / CONFIG, "run config")
    write_json(run_dir / "complete.json", {"format_version": FORMAT_VERSION, "domain": config["domain"],
                                           "finished": finished, "metrics": final})
