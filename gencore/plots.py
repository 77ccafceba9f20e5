"""Plots people would rather look at than read: loss curves (matplotlib, imported lazily)."""
from __future__ import annotations

import io
from pathlib import Path

from gencore.storage import write_bytes


def loss_curve(rows: list[dict], target: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    epochs = [r["epoch"] for r in rows]
    if "val_psnr" in rows[0]:  # the denoiser: training MSE and validation PSNR
        fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(10, 3.6))
        ax_loss.semilogy(epochs, [r["train_loss"] for r in rows])
        ax_loss.set(xlabel="epoch", ylabel="training MSE", title=title)
        ax_psnr.plot(epochs, [r["val_psnr"] for r in rows], color="tab:green")
        ax_psnr.set(xlabel="epoch", ylabel="validation PSNR (dB)", title="validation PSNR")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        write_bytes(target, buf.getvalue())
        return
    fig, (ax_loss, ax_kl) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], label="train objective")
    ax_loss.plot(epochs, [r["val_loss"] for r in rows], label="validation objective")
    ax_loss.plot(epochs, [r["val_recon"] for r in rows], label="validation reconstruction", linestyle="--")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("nats per item")
    ax_loss.set_title(title)
    ax_loss.legend()
    ax_kl.plot(epochs, [r["val_kl"] for r in rows], color="tab:purple", label="validation KL")
    ax_kl.set_xlabel("epoch")
    ax_kl.set_ylabel("KL (nats per item)")
    au = ax_kl.twinx()
    au.step(epochs, [r["active_units"] for r in rows], color="tab:gray", where="mid", label="active units")
    au.set_ylabel("active units")
    ax_kl.set_title("KL and active units")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_bytes(target, buf.getvalue())
