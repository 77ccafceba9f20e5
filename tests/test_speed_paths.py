"""The speed paths on the CPU: the batch and learning-rate rule, the torch.compile fallback, and
bulk sampling into one .npy (GPU checks live in test_gpu.py; figures in bench/train_speed.py)."""
import json

import numpy as np
import torch
from PIL import Image

from conftest import TINY, assert_one_line_error, gen
from gencore.storage import load_tensors
from gencore.training.settings import TrainSettings


def test_batch_and_learning_rate_rule():
    small = TrainSettings().resolved(1_600, "cuda")
    assert (small.batch_size, small.lr) == (64, 2e-3)  # small corpora keep the base batch everywhere
    big = TrainSettings().resolved(60_000, "cuda")
    assert (big.batch_size, big.lr) == (1024, 2e-3)
    assert TrainSettings().resolved(12_000, "cpu").batch_size == 256
    assert TrainSettings().resolved(60_000, "cpu").batch_size == 256
    assert TrainSettings().resolved(60_000).batch_size == 64  # no device given (the denoiser): base batch
    assert TrainSettings().resolved(60_000, "cuda", world=3).batch_size % 3 == 0
    mine = TrainSettings(batch_size=100, lr=1e-3).resolved(60_000, "cuda")
    assert (mine.batch_size, mine.lr) == (100, 1e-3)


def test_compile_failure_falls_back_to_the_eager_run(tmp_path, monkeypatch):
    def broken_compile(module, **kwargs):
        def call(*args, **kw):
            raise RuntimeError("no working C++ compiler\nlong details")
        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    fell = gen("train", "images", *TINY, "--compile", "-o", tmp_path / "fell", cwd=tmp_path)
    assert fell.exit_code == 0, fell.stderr
    # the step report says what ran, read from the step after its warm-up, not what was planned
    assert fell.stderr.split("training step:")[1].splitlines()[0] == " fp32, channels_last, fused Adam, eager"
    warnings = [line for line in fell.stderr.splitlines() if "torch.compile failed" in line]
    assert len(warnings) == 1 and "RuntimeError: no working C++ compiler); training in eager mode" in warnings[0]
    eager = gen("train", "images", *TINY, "--no-compile", "-o", tmp_path / "eager", cwd=tmp_path)
    assert eager.exit_code == 0 and "torch.compile" not in eager.stderr
    # the failed attempt left the RNG and the gradients as they were: the same run, bit for bit
    a = load_tensors(tmp_path / "fell" / "model.safetensors", "model", "images")
    b = load_tensors(tmp_path / "eager" / "model.safetensors", "model", "images")
    assert all(torch.equal(a[k], b[k]) for k in a)
    refused = gen("train", "images", *TINY, "--arch", "cae", "--compile", "-o", tmp_path / "cae", cwd=tmp_path)
    assert_one_line_error(refused, "--compile", "double backward")


def test_sample_npy_matches_the_native_files(tiny_runs, workdir):
    run = tiny_runs["vae"]
    bulk, native = workdir / "bulk", workdir / "bulk-png"
    result = gen("sample", "-r", run, "--class", "3", "--class", "5", "--n", "100", "--seed", "4",
                 "--format", "npy", "-o", bulk, cwd=workdir)
    assert result.exit_code == 0, result.stderr
    assert "wrote 200 samples" in result.stderr
    assert sorted(p.name for p in bulk.iterdir()) == ["conditions.npy", "grid.png", "samples.npy"]
    pixels, conditions = np.load(bulk / "samples.npy"), np.load(bulk / "conditions.npy")
    assert pixels.shape == (200, 1, 8, 8) and pixels.dtype == np.uint8
    assert conditions.shape == (200, 10) and conditions.dtype == np.uint8
    assert (conditions[:100, 3] == 1).all() and (conditions[100:, 5] == 1).all() and (conditions.sum(1) == 1).all()
    result = gen("sample", "-r", run, "--class", "3", "--class", "5", "--n", "100", "--seed", "4", "-o", native,
                 cwd=workdir)
    assert result.exit_code == 0, result.stderr
    for i, name in ((0, "3-0000"), (107, "5-0007"), (199, "5-0099")):
        assert (pixels[i, 0] == np.asarray(Image.open(native / f"{name}.png"))).all()


def test_sample_bad_format_or_precision(tiny_runs, workdir):
    for flag, value in (("--format", "png"), ("--precision", "fp8")):
        result = gen("sample", "-r", tiny_runs["vae"], flag, value, "-o", workdir / "never", cwd=workdir)
        assert_one_line_error(result, flag)
        assert not (workdir / "never").exists()


def test_bulk_decoder_precision_follows_the_training_rule():
    from gencore.models.autoencoder import AutoEncoder, model_spec
    from gencore.sampling import BulkDecoder
    from gencore.training.fastpath import cpu_has_bf16

    cpu = torch.device("cpu")
    big = AutoEncoder(model_spec("vae", "grid2d", (1, 28, 28), "bernoulli", 10, width=8)).decoder.eval()
    small = AutoEncoder(model_spec("vae", "grid2d", (1, 8, 8), "bernoulli", 10, width=8)).decoder.eval()
    assert not BulkDecoder(small, cpu, "auto").bf16 and not BulkDecoder(big, cpu, "fp32").bf16
    fast = BulkDecoder(big, cpu, "auto", chunk=100)
    assert fast.bf16 == cpu_has_bf16()
    z, cond = torch.randn(250, 16), torch.eye(10)[torch.arange(250) % 10]
    exact = torch.cat(list(BulkDecoder(big, cpu, "fp32").chunks(z, cond)))
    pixels = torch.cat(list(fast.chunks(z, cond, pixels=True)))  # three chunks, the last one short
    assert pixels.dtype == torch.uint8 and pixels.shape == (250, 1, 28, 28)
    assert (pixels.float() - exact * 255).abs().max() <= 0.05 * 255


def test_a_corpus_too_big_for_the_device_streams_each_batch_and_trains_the_same(tmp_path, monkeypatch):
    """Data that does not fit in the device's free memory stays in host memory and each batch is
    copied over; the optimisation is the same as with the corpus resident."""
    from gencore.training import autoencoder_objective as trainer

    resident = gen("train", "images", *TINY, "-o", tmp_path / "resident", cwd=tmp_path)
    assert resident.exit_code == 0, resident.stderr
    assert "streaming each batch" not in resident.stderr
    monkeypatch.setattr(trainer, "fits_on_device", lambda nbytes, device: False)
    streamed = gen("train", "images", *TINY, "-o", tmp_path / "streamed", cwd=tmp_path)
    assert streamed.exit_code == 0, streamed.stderr
    assert "does not fit in cpu's free memory: streaming each batch from host memory" in streamed.stderr

    def epochs(run):
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [(r["train_loss"], r["val_neg_elbo"]) for r in rows if r["event"] == "epoch"]

    assert epochs(tmp_path / "resident") == epochs(tmp_path / "streamed")
