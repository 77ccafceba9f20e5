"""ONNX Runtime CPU sampling throughput of an exported decoder, next to gen's own decoder-only
sampling on the CPU, in one process on the same noise and classes.

    python bench/export_throughput.py -r runs/digits --batch 4096 --repeats 5
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from gencore import load_run
from gencore.export import export_onnx


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--run", default="latest")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    run = load_run(args.run, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "decoder.onnx"
        _, report = export_onnx(run, model)
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    n, d = args.batch, run.latent_dim
    noise = torch.randn(n, d, generator=torch.Generator().manual_seed(0))
    feeds = {"noise": noise.numpy()}
    cond = None
    if run.conditional:
        cond = torch.eye(len(run.class_names))[torch.arange(n) % len(run.class_names)]
        feeds["condition"] = cond.numpy()
    t_ort = timed(lambda: session.run(None, feeds), args.repeats)
    z = run.decoder.prior_mean + noise @ run.decoder.prior_chol.T
    t_gen = timed(lambda: run.decode(z, cond), args.repeats)
    diff = np.abs(session.run(None, feeds)[0] - run.decode(z, cond).numpy()).max()
    print(f"run {run.path} ({run.domain_name}, {run.config['arch']}), model {report['bytes'] / 1e6:.2f} MB, "
          f"batch {n}, {torch.get_num_threads()} threads")
    print(f"onnxruntime CPU: {n / t_ort:,.0f} samples/s")
    print(f"gen decoder CPU: {n / t_gen:,.0f} samples/s  (ratio ort/gen {t_gen / t_ort:.2f})")
    print(f"max abs difference: {diff:.2e}")


if __name__ == "__main__":
    main()
