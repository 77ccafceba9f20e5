"""What each arch writes once training ends, beside the best weights: the autoencoder family
fits its code statistics, splits its weights and measures fresh samples; the denoiser shows and
measures its held-out patches. Both return the final metrics; the pipeline records them."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gencore.models.autoencoder import AutoEncoder
from gencore.plugin import Domain, LoadedData
from gencore.storage import save_tensors, write_png
from gencore.training.settings import TrainSettings

PREVIEW_COLUMNS = 8
METRIC_SAMPLES_PER_CLASS = 100
# End-of-run work stays bounded whatever the corpus size: the code statistics are fitted on a
# seeded subset of at most this many training items, and the domain metrics compare the samples
# with a seeded subset of at most METRIC_REFERENCE_ITEMS real ones (README, "Data at scale").
CODE_STATISTICS_ITEMS = 20_000
METRIC_REFERENCE_ITEMS = 5_000


@torch.no_grad()
def fit_code_statistics(model: AutoEncoder, items: torch.Tensor, conds: torch.Tensor | None) -> None:
    """Gaussian statistics of the training codes. Deterministic arches (ae, cae, dae) have no
    prior, so they sample from this Gaussian (ex-post density estimation, Ghosh et al. 2020),
    stored in the decoder; every arch stores its precision in the encoder for Mahalanobis scores."""
    device = model.decoder.prior_mean.device
    from gencore.training.autoencoder_objective import eval_batch

    step = eval_batch(items.shape[1:])
    mus = [model.encode(items[i:i + step].to(device), None if conds is None else conds[i:i + step].to(device))[0]
           for i in range(0, items.shape[0], step)]
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


def finish_autoencoder(run_dir: Path, domain: Domain, data: LoadedData, config: dict[str, Any],
                       model: AutoEncoder, settings: TrainSettings) -> dict[str, Any]:
    from gencore.training.data import bounded, select, subset

    train = torch.ones(data.items.shape[0], dtype=torch.bool)
    train[torch.tensor(config.split.val_indices, dtype=torch.long)] = False
    training = subset(select(data, train), CODE_STATISTICS_ITEMS, settings.seed)
    fit_code_statistics(model, training.items, training.conditions)
    save_tensors(run_dir / "model.safetensors", model.state_dict(), "model", domain.name)
    save_tensors(run_dir / "encoder.safetensors", model.encoder.state_dict(), "encoder", domain.name)
    save_tensors(run_dir / "decoder.safetensors", model.decoder.state_dict(), "decoder", domain.name)

    from gencore.api import load_run  # the finished run is read back like any user would

    run = load_run(run_dir, device=str(model.decoder.prior_mean.device))
    classes = run.class_names or None
    preview_items, _, _ = run.sample_with_labels(PREVIEW_COLUMNS, classes, seed=settings.seed)
    write_png(run_dir / "samples.png", domain.preview(preview_items, config.data, PREVIEW_COLUMNS))
    per_class = METRIC_SAMPLES_PER_CLASS if classes else METRIC_SAMPLES_PER_CLASS * 5
    samples, _, conds = run.sample_with_labels(per_class, classes, seed=settings.seed + 1)
    return domain.metrics(samples, conds, bounded(data, METRIC_REFERENCE_ITEMS, settings.seed), config.data,
                          settings.seed)


@torch.no_grad()
def finish_denoiser(run_dir: Path, domain: Domain, data: LoadedData, config: dict[str, Any],
                    model: torch.nn.Module, settings: TrainSettings) -> dict[str, Any]:
    from gencore.training.denoise import psnr, validation_patches

    device = next(model.parameters()).device
    clean, noisy, sigma = validation_patches(domain, data, config, settings.seed, device)
    out = model(noisy[:8], sigma[:8]).clamp(0, 1)
    strip = torch.cat([clean[:8], noisy[:8], out]).cpu()  # rows: clean, noisy, denoised
    write_png(run_dir / "samples.png", domain.preview(strip, config.data, PREVIEW_COLUMNS))
    return {"val_psnr": float(psnr(clean, model(noisy, sigma)).mean()),
            "val_noisy_psnr": float(psnr(clean, noisy).mean())}
