#!/usr/bin/env python3
"""Train the denoiser that ships in assets/denoiser/, and install it there.

The training photos are builtin:photos, in grayscale, blind to sigma 5-50: the fair ones bundled
with scikit-image and matplotlib (stereo motorcycle left and right, grass, gravel,
immunohistochemistry, retina, Hubble deep field, Grace Hopper) and, since issue #25, the 12
Debian wallpaper photos of assets/photos. The shipped weights were trained on the first 8 only
(assets/PROVENANCE.md). The evaluation images of bench/denoise_psnr.py are never used. The model
is one-channel: `gen denoise` runs it on the opponent colour planes of colour photos.

    python scripts/train_denoiser.py --minutes 5 --device cuda     # from scratch on a GPU (the first weights)
    python scripts/train_denoiser.py --minutes 60 --device cpu      # the same on a CPU, slower
    python scripts/train_denoiser.py --init assets/denoiser --lr 2e-4 --minutes 30 --device cpu \
        --precision bf16 --threads 1 --out /tmp/ft                   # fine-tune on all 20 photos
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="training wall time, e.g. --minutes 5")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--epochs", type=int, default=100_000, help="upper bound; --minutes usually stops first")
    parser.add_argument("--out", type=Path, default=ROOT / "assets" / "denoiser", help="where the weights go")
    parser.add_argument("--init", default=None, help="fine-tune from this run's weights, e.g. --init assets/denoiser")
    parser.add_argument("--lr", default="1e-3", help="peak learning rate, e.g. --lr 2e-4")
    parser.add_argument("--precision", default="auto", help="auto, fp32 or bf16 (bf16 autocast trains ~2x faster on AMX CPUs)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads, e.g. --threads 1")
    parser.add_argument("--keep-run", type=Path, default=None, help="also keep the whole run folder here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        command = [sys.executable, "-m", "gencore", "--device", args.device]
        command += ["--threads", str(args.threads)] if args.threads else []
        command += ["train", "images", "--arch", "denoiser", "--data", "builtin:photos", "--channels", "1",
                    "--patch", "64", "--noise", "gaussian:5-50", "--batch-size", "64", "--lr", args.lr,
                    "--precision", args.precision, "--epochs", str(args.epochs), "--max-minutes", str(args.minutes),
                    "--patience", str(args.epochs), "--keep-checkpoints", "1", "-o", str(run)]
        command += ["--init", args.init] if args.init else []
        subprocess.run(command, check=True)
        if args.keep_run:
            shutil.copytree(run, args.keep_run, dirs_exist_ok=True)
        args.out.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "model.safetensors", "complete.json", "loss.png"):
            shutil.copy2(run / name, args.out / name)
        final = json.loads((run / "complete.json").read_text())["metrics"]
        print(f"installed in {args.out}: validation PSNR {final['val_psnr']:.2f} dB")


if __name__ == "__main__":
    main()
