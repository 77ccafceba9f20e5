"""Peak memory of `gen denoise` on a 4000x3000 RGB photo on the CPU, measured in a child process
(its peak resident set size, from the kernel).

    python bench/denoise_memory.py
"""
from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "big.jpg", Path(tmp) / "big-clean.jpg"
        rng = np.random.default_rng(0)
        base = np.linspace(0, 255, 4000)[None, :, None] * np.ones((3000, 1, 3))
        noisy = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(src, quality=95)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gencore", "-q", "denoise", str(src), "-o", str(dst),
                        "--device", "cpu"], check=True)
        elapsed = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        assert Image.open(dst).size == (4000, 3000)
    print(f"4000x3000 RGB JPEG: {elapsed:.1f} s, peak resident memory {peak_mb:,.0f} MB (limit 2,048 MB)")


if __name__ == "__main__":
    main()
