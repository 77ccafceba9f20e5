#!/usr/bin/env bash
# GPU session script for the device machine: install without network, train the shipped
# denoiser on the GPU, measure it under the bench protocol, run the GPU tests, and time the
# default digits training on CUDA.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
MINUTES=${MINUTES:-4}
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . 2>&1 | tail -2
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
python3 scripts/train_denoiser.py --minutes "$MINUTES" --device cuda --out "$OUT/denoiser" 2>&1 | grep -v '^epoch' | tail -5
python3 bench/denoise_psnr.py -r "$OUT/denoiser" 2>&1 | tee "$OUT/denoise-psnr.log"
python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tail -3
cd "$(mktemp -d)" && { time gen -q train images -o runs/default ; } 2>&1 | tail -4
