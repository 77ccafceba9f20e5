"""Every bench script with a smoke mode runs it: tiny sizes, so CI checks that the benchmarks
still work without timing anything (the figures come from the full runs, see the README)."""
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SMOKE = sorted(p for p in BENCH.glob("*.py") if '"--smoke"' in p.read_text())
EXPECTED = {"train_speed.py": ["training samples/s: plain", "ratio", "time to the plain loop's",
                               "decoder-only sampling at batch", "% of peak", "sweep: batch     64 compile mode",
                               "sweep: batch     64 lr 2e-3", "training step ran as: eager", "sampling median:",
                               "time to target median:"],
            "conditioning_layout.py": ["bias    seed 0:", "film - concat: val_neg_elbo",
                                       "sampling 8x8 width 32, batch 256, fp32: bias"],
            "anomaly_suite.py": ["tables: ROC AUC / precision@k", "series: per-step ROC AUC", "| wine |",
                                 "| macro-infl |", "IsolationForest | ECOD | KNN | AutoEncoder | VAE",
                                 "LODO mean", "| posterior |", "complexity", "ratio", "| ratio+knn |"],
            "denoise_psnr.py": ["| 25 | china |", "gen blind - CBM3D: mean", "previous default (6 passes, unpacked):",
                                "default / previous default:", "one pass, fused, packed / eager:"]}


@pytest.mark.parametrize("script", SMOKE, ids=lambda p: p.name)
def test_bench_smoke_mode(script, tmp_path):
    result = subprocess.run([sys.executable, str(script), "--smoke"], cwd=tmp_path, capture_output=True, text=True,
                            check=False, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip(), "a bench prints its figures"
    for needle in EXPECTED.get(script.name, []):
        assert needle in result.stdout, result.stdout
