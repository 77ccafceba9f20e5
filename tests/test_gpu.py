"""CUDA paths: training and decoder-only sampling on the GPU. Skipped without CUDA."""
import json

import numpy as np
import pytest
import torch

from conftest import TINY, gen
from gencore import load_run

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture(scope="module")
def cuda_run(tmp_path_factory):
    """One tiny run trained on CUDA with the automatic fast path: (folder, stderr, how many compiled
    graphs inductor ran without CUDA graphs)."""
    from torch._dynamo.utils import counters

    work = tmp_path_factory.mktemp("cuda")
    out = work / "cuda-run"
    counters.clear()
    result = gen("--device", "cuda", "train", "images", *TINY, "-o", out, cwd=work)
    assert result.exit_code == 0, result.stderr
    return out, result.stderr, counters["inductor"]["cudagraph_skips"]


def test_train_and_sample_on_cuda_match_cpu(cuda_run, tmp_path):
    out, stderr, _ = cuda_run
    assert "on cuda" in stderr
    assert json.loads((out / "config.json").read_text())["device"].startswith("cuda")
    gpu = load_run(out, device="cuda").sample(n=8, cls="5", seed=3)
    cpu = load_run(out, device="cpu").sample(n=8, cls="5", seed=3)
    # the latent noise comes from a CPU generator, so the same seed gives the same samples
    assert torch.allclose(gpu, cpu, atol=1e-4)
    result = gen("sample", "-r", out, "--class", "5", "--n", "4", "-o", tmp_path / "s", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert len(list((tmp_path / "s").glob("5-*.png"))) == 4


def test_cuda_training_takes_the_fast_path(cuda_run):
    _, stderr, skips = cuda_run
    assert "training step: bf16 autocast, channels_last, fused Adam, torch.compile" in stderr
    assert "compiled the training step in" in stderr and "torch.compile failed" not in stderr
    assert skips == 0  # every compiled graph of the step replays as a CUDA graph


def test_bulk_sampling_in_bf16_and_compiled_on_cuda(cuda_run, tmp_path):
    from gencore.sampling import BulkDecoder

    out, _, _ = cuda_run
    run = load_run(out, device="cuda")
    n = 70_000  # a full chunk of 65,536 and a remainder
    z = torch.randn(n, run.latent_dim, generator=torch.Generator().manual_seed(0))
    cond = torch.eye(10)[torch.arange(n) % 10]
    exact = run.decode(z, cond)
    fast = run.decode(z, cond, precision="auto")
    assert fast.shape == exact.shape
    assert (fast - exact).abs().max() < 0.05 and (fast - exact).abs().mean() < 0.005
    compiled = BulkDecoder(run.decoder, run.device, "auto", compile=True)
    pixels = torch.cat([chunk.cpu() for chunk in compiled.chunks(z, cond, pixels=True)])
    assert pixels.dtype == torch.uint8 and pixels.shape == exact.shape
    assert (pixels.float() - exact * 255).abs().max() <= 0.05 * 255
    result = gen("--device", "cuda", "sample", "-r", out, "--n", "100000", "--format", "npy", "-o", tmp_path / "bulk",
                 cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    array = np.load(tmp_path / "bulk" / "samples.npy", mmap_mode="r")
    assert array.shape == (100_000, 1, 8, 8) and array.dtype == np.uint8


def test_auto_device_is_cuda():
    from gencore.devices import resolve_device

    assert resolve_device("auto").type == "cuda"


def test_a_corpus_streamed_from_host_memory_trains_on_cuda(tmp_path, monkeypatch):
    from gencore.training import autoencoder_objective as trainer

    monkeypatch.setattr(trainer, "fits_on_device", lambda nbytes, device: False)
    result = gen("--device", "cuda", "train", "images", *TINY, "-o", tmp_path / "streamed", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "does not fit in cuda" in result.stderr and "streaming each batch" in result.stderr
