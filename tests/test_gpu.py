"""CUDA paths: training and decoder-only sampling on the GPU. Skipped without CUDA."""
import json

import pytest
import torch

from conftest import TINY, gen
from gencore import load_run

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_train_and_sample_on_cuda_match_cpu(tmp_path):
    out = tmp_path / "cuda-run"
    result = gen("--device", "cuda", "train", "images", *TINY, "-o", out, cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "on cuda" in result.stderr
    assert json.loads((out / "config.json").read_text())["device"].startswith("cuda")
    gpu = load_run(out, device="cuda").sample(n=8, cls="5", seed=3)
    cpu = load_run(out, device="cpu").sample(n=8, cls="5", seed=3)
    # the latent noise comes from a CPU generator, so the same seed gives the same samples
    assert torch.allclose(gpu, cpu, atol=1e-4)
    result = gen("sample", "-r", out, "--class", "5", "--n", "4", "-o", tmp_path / "s", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert len(list((tmp_path / "s").glob("5-*.png"))) == 4


def test_auto_device_is_cuda():
    from gencore.devices import resolve_device

    assert resolve_device("auto").type == "cuda"
