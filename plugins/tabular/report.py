"""What `gen score` writes beside the scores of a tabular run: every score method side by side.

The encoder-only scores (Mahalanobis distance of the posterior mean from the training codes, KL of
the posterior from the prior) sit beside the reconstruction error, per record, in one CSV, and
their distributions (normal against labelled anomalies, when labels exist) in one PNG.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from gencore.storage import write_bytes, write_text
from gencore_csv.table import csv_text


def methods_for(run) -> list[str]:
    methods = ["mahalanobis"]
    if run.stochastic:
        methods.append("kl")
    if (run.path / "decoder.safetensors").is_file():  # an encoder-only export has no decoder
        methods = ["recon"] + methods
    return methods


def report(run, data, index: np.ndarray, scores: np.ndarray, threshold: float | None, method: str,
           out: Path) -> dict[str, Any]:
    from gencore import scoring

    items = data.items[index]
    names = [data.sources[i] for i in index]
    labels = None if data.anomaly_labels is None else data.anomaly_labels.numpy()[index]
    table = {m: (scores if m == method else scoring.score(run, items, m)) for m in methods_for(run)}
    table.setdefault(method, scores)
    header = ["input", *table] + (["label"] if labels is not None else [])
    rows = [[name, *(f"{table[m][i]:.6g}" for m in table)] + ([int(labels[i])] if labels is not None else [])
            for i, name in enumerate(names)]
    methods_path = out.with_name(out.stem + "-methods.csv")
    plot_path = out.with_name(out.stem + ".png")
    write_text(methods_path, csv_text(header, rows))
    write_bytes(plot_path, plot(table, labels, method, threshold, run.path.name))
    summary: dict[str, Any] = {"methods_csv": str(methods_path), "plot": str(plot_path)}
    if labels is not None:
        summary["by_method"] = {m: {"roc_auc": scoring.roc_auc(s, labels),
                                    "precision_at_k": scoring.precision_at_k(s, labels)} for m, s in table.items()}
    return summary


def plot(table: dict[str, np.ndarray], labels: np.ndarray | None, method: str, threshold: float | None,
         title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, len(table), figsize=(4.2 * len(table), 3.4), squeeze=False)
    for ax, (name, values) in zip(axes[0], table.items()):
        high = np.quantile(values, 0.995)
        low = values.min()
        bins = np.linspace(low, max(high, low + 1e-9), 40)
        clipped = np.clip(values, low, high)
        if labels is None:
            ax.hist(clipped, bins=bins, color="tab:blue", alpha=0.8, label="records")
        else:
            ax.hist(clipped[labels == 0], bins=bins, color="tab:blue", alpha=0.7, label="normal", density=True)
            ax.hist(clipped[labels == 1], bins=bins, color="tab:red", alpha=0.6, label="labelled anomaly",
                    density=True)
        if name == method and threshold is not None:
            ax.axvline(min(threshold, high), color="black", ls="--", lw=1, label=f"threshold {threshold:.4g}")
        ax.set_title(f"{name}{' (chosen)' if name == method else ''}", fontsize=10)
        ax.set_xlabel("score (clipped at the 99.5th percentile)", fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle(f"{title}: anomaly scores per method (higher is more unusual)", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
