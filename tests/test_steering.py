"""Designer controls (issue 20): attribute directions fitted by `gen attributes`, `gen sample
--attr NAME=SHIFT`, the mixture prior `--prior gmm`, and the steered ONNX graph."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import assert_one_line_error, gen
from gencore import load_run
from gencore.steering import SHIFTS, SamplerSettings

@pytest.fixture(scope="module")
def steered_digits(workdir) -> tuple[Path, Path, str]:
    """The shipped digits run, and a copy of it with fitted directions (`gen attributes -o`);
    returns both and the fitting command's stdout. The domain-free steering tests run on digits;
    levels and MIDI steering are tested on their shipped runs (test_levels_cli, test_midi_steering)."""
    from gencore.runs import pretrained_runs

    if "digits" not in pretrained_runs():
        pytest.skip("no pretrained digits run in this checkout")
    copy = workdir / "runs" / "steer-digits-copy"
    result = gen("attributes", "-r", "pretrained:digits", "--n", "60", "-o", copy, cwd=workdir)
    assert result.exit_code == 0, result.stderr
    return pretrained_runs()["digits"], copy, result.stdout


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_ink_responds_monotonically(steered_digits, workdir):
    run, copy, table = steered_digits
    assert "ink" in table
    opened = load_run(copy, device="cpu")
    assert {"ink", "slant", "stroke_width"} <= set(opened.steering.names), table
    means = []
    for shift in SHIFTS:  # what `gen sample --attr ink=SHIFT` decodes, on fresh noise
        opened.sampler = SamplerSettings({"ink": shift})
        items, _, _ = opened.sample_with_labels(20, None, 11, 1.0, options={})
        means.append(float(np.mean(opened.domain.attributes(items, opened.config.data)["ink"])))
    assert all(b > a for a, b in zip(means, means[1:])), means
    assert means[-1] - means[0] >= 0.03, means  # measured 0.279 -> 0.322 over 200 samples


def test_attributes_copy_leaves_the_run_alone_and_lists(steered_digits, workdir):
    run, copy, _ = steered_digits
    assert load_run(run, device="cpu").steering.names == []  # -o wrote the copy only
    result = gen("attributes", "-r", copy, cwd=workdir)
    assert result.exit_code == 0, result.stderr
    assert "ink" in result.stdout and "spearman" in result.stdout


def test_sample_with_attr_writes_more_ink(steered_digits, workdir):
    from PIL import Image

    _, copy, _ = steered_digits
    ink = {}
    for shift in ("-2", "+2"):
        out = workdir / f"ink{shift}"
        result = gen("sample", "-r", copy, "--class", "3", "--n", "16", "--attr", f"ink={shift}", "--seed", "3",
                     "-o", out, cwd=workdir)
        assert result.exit_code == 0, result.stderr
        ink[shift] = np.mean([np.asarray(Image.open(p)).mean() for p in out.glob("3-*.png")])
    assert ink["+2"] > ink["-2"] * 1.05, ink


def test_unknown_attribute_is_one_line(steered_digits, workdir):
    _, copy, _ = steered_digits
    result = gen("sample", "-r", copy, "--attr", "dragons=+1", "-o", workdir / "nope", cwd=workdir)
    assert_one_line_error(result, "--attr", "dragons", "ink")
    assert not (workdir / "nope").exists()
    result = gen("sample", "-r", copy, "--attr", "ink", "-o", workdir / "nope", cwd=workdir)
    assert_one_line_error(result, "--attr", "NAME=SHIFT")


def test_run_without_directions_says_how_to_fit(steered_digits, workdir):
    run, _, _ = steered_digits
    result = gen("sample", "-r", run, "--attr", "ink=1", "-o", workdir / "nope", cwd=workdir)
    assert_one_line_error(result, "--attr", "gen attributes")
    result = gen("sample", "-r", run, "--prior", "gmm", "-o", workdir / "nope", cwd=workdir)
    assert_one_line_error(result, "--prior", "gen attributes")


def test_gmm_prior_is_seeded_and_differs_from_normal(steered_digits, workdir):
    _, copy, _ = steered_digits
    outs = {}
    for name, prior in (("a", "gmm"), ("b", "gmm"), ("c", "normal")):
        out = workdir / f"prior-{name}"
        result = gen("sample", "-r", copy, "--n", "8", "--prior", prior, "--seed", "5", "-o", out, cwd=workdir)
        assert result.exit_code == 0, result.stderr
        outs[name] = [_digest(p) for p in sorted(out.glob("*.png"))]
    assert outs["a"] == outs["b"]
    assert outs["a"] != outs["c"]


def test_normal_prior_without_attr_is_unchanged(steered_digits):
    """Fitting directions must not change what plain sampling draws from a seed."""
    run, copy, _ = steered_digits
    plain = load_run(run, device="cpu").sample(8, seed=4)
    steered = load_run(copy, device="cpu")
    assert torch.equal(plain, steered.sample(8, seed=4))
    steered.sampler = SamplerSettings({}, "normal")
    assert torch.equal(plain, steered.sample(8, seed=4))


def test_steered_onnx_parity(steered_digits, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    _, copy, _ = steered_digits
    model = tmp_path / "digits.onnx"
    result = gen("export", "-r", copy, "-o", model, cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names[:2] == ["noise", "condition"] and {"attributes", "uniform", "mixture"} <= set(names)
    run = load_run(copy, device="cpu")
    index = run.steering.names.index("ink")
    for prior in ("normal", "gmm"):
        # gen's own sampler, then the same draws fed to the graph
        run.sampler = SamplerSettings({"ink": 1.5}, prior)
        names_, cond = run.class_plan(None, 12)
        g = torch.Generator().manual_seed(9)
        eps = torch.randn(12, run.latent_dim, generator=g)
        state = g.get_state()
        want = run.decode(run.latent_from_noise(eps, g, 0.8, cond), cond).numpy()
        g.set_state(state)
        uniform = torch.rand(12, generator=g) if prior == "gmm" else torch.zeros(12)
        shifts = np.zeros((12, len(run.steering.names)), np.float32)
        shifts[:, index] = 1.5
        feeds = {"noise": (0.8 * eps).numpy(), "condition": cond.numpy(), "attributes": shifts,
                 "uniform": uniform.numpy(), "mixture": np.full(12, float(prior == "gmm"), np.float32)}
        got = session.run(None, feeds)[0]
        assert np.abs(got - want).max() <= 1e-4, prior


def test_pretrained_run_is_never_written(tmp_path):
    from gencore.runs import pretrained_runs

    if "digits" not in pretrained_runs():
        pytest.skip("no pretrained digits run in this checkout")
    decoder = pretrained_runs()["digits"] / "decoder.safetensors"
    before = _digest(decoder)
    result = gen("attributes", "-r", "pretrained:digits", cwd=tmp_path)
    assert_one_line_error(result, "--run", "-o")
    assert _digest(decoder) == before
