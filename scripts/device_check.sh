#!/usr/bin/env bash
# GPU check for the device machine: install without network, run the GPU tests and the whole
# suite with CUDA as the auto device, and time the default digits training there.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . 2>&1 | tail -2
python3 -c "import torch, typer; print('torch', torch.__version__, 'typer', typer.__version__, torch.cuda.get_device_name(0))"
python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tee "$OUT/gpu-tests.log" | tail -5
python3 -m pytest -q -p no:cacheprovider -x tests 2>&1 | tee "$OUT/suite.log" | tail -8
cd "$(mktemp -d)" && { time gen train images -o runs/default ; } 2>&1 | grep -v '^epoch' | tee "$OUT/default-cuda.log"
