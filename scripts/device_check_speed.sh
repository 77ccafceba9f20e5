#!/usr/bin/env bash
# GPU session script for the speed targets (issues 6 and 24), under 5 minutes on one H100/H200:
#   1. bench/train_speed.py, 3 repeats (medians): gen's Trainer at its automatic settings against
#      the plain eager loop on jittered 28x28 digits (60,000 items, no two alike): samples/s, time
#      to the plain loop's 10-epoch validation -ELBO, what gen's step ran as (read from the step:
#      compiled or eager, CUDA graphs or not), a profile of the step and of sampling, and
#      decoder-only sampling at batch 65,536, uint8 out;
#   2. the GPU tests (tests/test_gpu.py: the CUDA fast path compiled with CUDA graphs, bf16 and
#      compiled bulk sampling, npy output, a corpus streamed from host memory).
# It ends with the medians and writes everything to $OUT/<h100|h200|gpu>-<date>-speed.log, to be
# committed as bench/results/ as it is.
#
#   scripts/device_check_speed.sh            # on the GPU machine
#   SWEEP=1 scripts/device_check_speed.sh    # also gen at other batches (about 2 more minutes)
#   scripts/device_check_speed.sh --smoke    # dry run of the same steps on a CPU, tiny sizes
# REPEATS (3), BENCH_TIMEOUT (190 s; 900 with --smoke), TEST_TIMEOUT (90 s) and BENCH_ARGS adjust it.
set -uo pipefail
export PYTHONUNBUFFERED=1
SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
started=$(date +%s)

if [ "$SMOKE" = 1 ]; then
    gpu=cpu-smoke
    BENCH=(--smoke --device cpu)
    BENCH_TIMEOUT=${BENCH_TIMEOUT:-900}  # a shared CPU is slow; on the GPU the 190 s limit holds
else
    python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . 2>&1 | tail -2
    name=$(python3 -c "import torch; print(torch.cuda.get_device_name(0))")
    case "$name" in *H200*) gpu=h200 ;; *H100*) gpu=h100 ;; *) gpu=gpu ;; esac
    BENCH=(--repeats "${REPEATS:-3}" --profile)
    [ "${SWEEP:-0}" = 1 ] && BENCH+=(--sweep --sweep-seconds "${SWEEP_SECONDS:-100}")
fi
LOG="$OUT/$gpu-$(date -u +%Y-%m-%d)-speed.log"

{
    echo "# scripts/device_check_speed.sh $* on $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null)"
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
        torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA device')"
    [ "$SMOKE" = 1 ] || nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,utilization.gpu --format=csv
    echo "## bench/train_speed.py ${BENCH[*]} ${BENCH_ARGS:-}"
    # shellcheck disable=SC2086
    timeout "${BENCH_TIMEOUT:-190}" python3 bench/train_speed.py "${BENCH[@]}" ${BENCH_ARGS:-} \
        --json "$OUT/train_speed.json" 2>&1
    echo "bench exit code: $?"
    echo "## tests/test_gpu.py"
    timeout "${TEST_TIMEOUT:-90}" python3 -m pytest -q -p no:cacheprovider -rs tests/test_gpu.py > "$OUT/test_gpu.log" 2>&1
    echo "tests exit code: $?"
    tail -15 "$OUT/test_gpu.log"
} 2>&1 | tee "$LOG.tmp"

{
    echo "## medians"
    grep -E "^(training step ran as|training median|time to target median|sampling median):" "$LOG.tmp" \
        || echo "no medians: the bench did not finish (see above)"
    echo "GPU tests: $(tail -1 "$OUT/test_gpu.log")"
    echo "wall time of this script: $(( $(date +%s) - started )) s"
} 2>&1 | tee -a "$LOG.tmp"
mv "$LOG.tmp" "$LOG"
echo "log: $LOG (commit it as bench/results/$(basename "$LOG"))"
