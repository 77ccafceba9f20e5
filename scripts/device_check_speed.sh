#!/usr/bin/env bash
# GPU session script for the speed targets (issue 6), about 5 minutes on one H100/H200:
#   1. the GPU tests (fast path chosen on CUDA, compile, bf16 bulk sampling, npy output);
#   2. bench/train_speed.py at gen's automatic settings: samples/s against the plain loop,
#      time to the plain loop's 10-epoch validation -ELBO (target: >= 6x faster), sampling at
#      batch 65,536 (target: >= 8M samples/s), compile warm-up apart;
#   3. the same at batch 4096, for the throughput target (>= 1.0M samples/s), with a profile
#      of gen's step (what bounds it, if a target is missed).
# Results land in $OUT (train_speed*.json and the logs).
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . 2>&1 | tail -2
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" | tee "$OUT/device.txt"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tail -5 | tee "$OUT/test_gpu.log"
timeout 150 python3 bench/train_speed.py --repeats 2 --json "$OUT/train_speed.json" 2>&1 | tee "$OUT/train_speed.log"
timeout 90 python3 bench/train_speed.py --repeats 1 --gen-batch 4096 --profile \
    --json "$OUT/train_speed_b4096.json" 2>&1 | tee "$OUT/train_speed_b4096.log"
