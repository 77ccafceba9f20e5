"""Pictures of the latent space for `gen latent`: a 2-D map of the encoded data coloured by class
(the latent itself when it is 2-D, else PCA, t-SNE or UMAP), the decoded manifold of a 2-D
latent, and KL (or code variance) per dimension with the active units marked."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from gencore.errors import GenError
from gencore.storage import write_bytes
from gencore.training.autoencoder_objective import ACTIVE_UNIT_THRESHOLD

EMBEDDINGS = ("pca", "tsne", "umap")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def _save(fig, target: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    _pyplot().close(fig)
    write_bytes(target, buf.getvalue())


def embed_2d(mu: np.ndarray, method: str, seed: int) -> tuple[np.ndarray, str]:
    if method not in EMBEDDINGS:
        raise GenError(f"unknown embedding {method!r}", where="--method", hint=f"use one of {', '.join(EMBEDDINGS)}")
    if mu.shape[1] <= 2:
        return np.pad(mu, ((0, 0), (0, 2 - mu.shape[1]))), "latent"
    if method == "pca":
        centred = mu - mu.mean(axis=0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        share = (s[:2] ** 2).sum() / max((s ** 2).sum(), 1e-12)
        return centred @ vt[:2].T, f"PCA ({share:.0%} of variance)"
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (len(mu) - 1) // 3)))
        return TSNE(2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(mu), "t-SNE"
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise GenError("UMAP needs the umap-learn package", where="--method",
                           hint="pip install umap-learn, or use --method pca or tsne") from None
    return umap.UMAP(random_state=seed).fit_transform(mu), "UMAP"


def scatter(points: np.ndarray, labels: np.ndarray | None, class_names: list[str], title: str, target: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.6)
    else:
        cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
        for k, name in enumerate(class_names):
            pick = labels == k
            if pick.any():
                ax.scatter(points[pick, 0], points[pick, 1], s=6, alpha=0.7, color=cmap(k % cmap.N), label=name)
        if len(class_names) <= 20:
            ax.legend(markerscale=3, fontsize=8, loc="best")
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, target)


def per_dimension(values: np.ndarray, variance: np.ndarray, ylabel: str, target: Path) -> None:
    plt = _pyplot()
    active = variance > ACTIVE_UNIT_THRESHOLD
    fig, ax = plt.subplots(figsize=(max(5, 0.35 * len(values) + 2), 3.5))
    ax.bar(np.arange(len(values)), values, color=np.where(active, "tab:blue", "lightgray"))
    ax.set_xlabel("latent dimension (blue: active unit, posterior-mean variance > 0.01)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{int(active.sum())} of {len(values)} units active")
    fig.tight_layout()
    _save(fig, target)


@torch.no_grad()
def manifold(run, cls: str | None, size: int) -> torch.Tensor:
    """Decode a size x size grid over a 2-D latent: prior quantiles 5%..95% on each axis."""
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, size))
    gy, gx = torch.meshgrid(q.flip(0), q, indexing="ij")
    eps = torch.stack([gx.flatten(), gy.flatten()], dim=1)  # (size*size, 2)
    decoder = run.decoder
    z = decoder.prior_mean.cpu() + eps @ decoder.prior_chol.cpu().T
    cond = None
    if run.conditional:
        cond = run.condition(cls if cls is not None else run.class_names[0]).expand(z.shape[0], -1)
    return run.decode(z, cond)
