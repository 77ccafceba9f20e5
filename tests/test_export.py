"""`gen export`: ONNX parity with the decoder, embedded metadata, the standalone sampler, and the
decoder-only safetensors bundle."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import assert_one_line_error, gen
from gencore import load_run

ort = pytest.importorskip("onnxruntime")
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "sample_onnx.py"


def onnx_parity(model: Path, run_dir: Path, n: int = 32) -> float:
    """Max abs difference between the ONNX model and gen's decoder on the same noise and classes."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    run = load_run(run_dir, device="cpu")
    noise = torch.randn(n, run.latent_dim, generator=torch.Generator().manual_seed(1))
    feeds = {"noise": noise.numpy()}
    cond = None
    if run.conditional:
        cond = torch.eye(len(run.class_names))[torch.arange(n) % len(run.class_names)]
        feeds["condition"] = cond.numpy()
    got = session.run(None, feeds)[0]
    z = run.decoder.prior_mean + noise @ run.decoder.prior_chol.T
    want = run.decode(z, cond).numpy()
    return float(np.abs(got - want).max())


@pytest.mark.parametrize("arch", ["vae", "ae"])
def test_onnx_matches_decoder_and_carries_metadata(tiny_runs, tmp_path, arch):
    model = tmp_path / f"{arch}.onnx"
    result = gen("export", "-r", tiny_runs[arch], "-o", model, cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert onnx_parity(model, tiny_runs[arch]) <= 1e-4
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["gencore"])
    assert meta["domain"] == "images" and meta["latent_dim"] == 4 and meta["class_names"] == list("0123456789")
    assert meta["item_shape"] == [1, 8, 8] and "decoding" in meta
    outputs = session.run(None, {"noise": np.zeros((5, 4), np.float32),
                                 "condition": np.eye(10, dtype=np.float32)[:5]})[0]
    assert outputs.shape == (5, 1, 8, 8)  # dynamic batch


def test_threshold_postprocess_and_stdout(tiny_runs, tmp_path):
    result = gen("export", "-r", tiny_runs["vae"], "--postprocess", "threshold", "-o", "-", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    session = ort.InferenceSession(result.stdout_bytes, providers=["CPUExecutionProvider"])
    out = session.run(None, {"noise": np.zeros((2, 4), np.float32), "condition": np.eye(10, dtype=np.float32)[:2]})[0]
    assert out.dtype == np.uint8 and set(np.unique(out)) <= {0, 1}
    assert_one_line_error(gen("export", "-r", tiny_runs["vae"], "--postprocess", "argmax", cwd=tmp_path),
                          "--postprocess")


def test_standalone_sampler_needs_no_gen(tiny_runs, tmp_path):
    tree = ast.parse(SCRIPT.read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"gencore", "gencore_images", "gencore_levels", "gencore_midi", "torch"}
    model = tmp_path / "digits.onnx"
    assert gen("export", "-r", tiny_runs["vae"], "-o", model, cwd=tmp_path).exit_code == 0
    result = subprocess.run([sys.executable, str(SCRIPT), str(model), "--class", "7", "--n", "16",
                             "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "out").glob("7-*.png"))) == 16


def test_safetensors_bundle_samples_alone(tiny_runs, tmp_path):
    bundle = tmp_path / "bundle"
    result = gen("export", "--format", "safetensors", "-r", tiny_runs["vae"], "-o", bundle, cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in bundle.iterdir()) == ["complete.json", "config.json", "decoder.safetensors"]
    a = load_run(bundle, device="cpu").sample(n=4, cls="2", seed=9)
    b = load_run(tiny_runs["vae"], device="cpu").sample(n=4, cls="2", seed=9)
    assert torch.equal(a, b)


def test_missing_onnx_is_one_line(tiny_runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    result = gen("export", "-r", tiny_runs["vae"], "-o", tmp_path / "x.onnx", cwd=tmp_path)
    assert_one_line_error(result, "gencore[onnx]")
    assert not (tmp_path / "x.onnx").exists()
