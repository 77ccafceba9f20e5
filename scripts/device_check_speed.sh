#!/usr/bin/env bash
# GPU session script for the speed targets (issue 6), about 6 minutes on one H100/H200:
#   1. bench/train_speed.py at gen's automatic settings against the plain loop: samples/s, time
#      to the plain loop's 10-epoch validation -ELBO, sampling at batch 65,536, profiles of
#      gen's step and of its sampling; then the sweep (gen's step at other batches and compile
#      modes, and time to the target at other batches and learning rates);
#   2. the GPU tests (fast path chosen on CUDA, compile, bf16 bulk sampling, npy output).
# Results land in $OUT (train_speed.json and the logs). BENCH_ARGS adds bench options.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . 2>&1 | tail -2
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" | tee "$OUT/device.txt"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,utilization.gpu --format=csv | tee -a "$OUT/device.txt"
timeout "${BENCH_TIMEOUT:-270}" python3 bench/train_speed.py --repeats "${REPEATS:-1}" --profile --sweep \
    --sweep-seconds "${SWEEP_SECONDS:-100}" ${BENCH_ARGS:-} --json "$OUT/train_speed.json" 2>&1 | tee "$OUT/train_speed.log"
[ "${SKIP_TESTS:-0}" = 1 ] || timeout 120 python3 -m pytest -q -p no:cacheprovider -rs tests/test_gpu.py 2>&1 | tee "$OUT/test_gpu.log"
