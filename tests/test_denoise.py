"""`gen denoise` with the shipped denoiser and with runs of yours: quality, formats kept, stdin and
stdout, tiling, and the bad inputs that must leave no partial output."""
import errno
import io
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, assert_one_line_error, gen

skimage_data = pytest.importorskip("skimage.data")


def noisy_photo(size=(160, 200), sigma=25, seed=0):
    clean = skimage_data.camera()[: size[0], : size[1]].astype(np.float64) / 255  # never trained on
    noisy = np.clip(clean + np.random.default_rng(seed).normal(0, sigma / 255, clean.shape), 0, 1)
    return clean, (np.round(noisy * 255)).astype(np.uint8)


def denoise_with_reference(tmp_path, clean: np.ndarray, noisy: np.ndarray) -> tuple[float, float, str]:
    """`gen denoise --reference` on a noisy photo: (PSNR out, PSNR in, the report line)."""
    Image.fromarray((clean * 255 + 0.5).astype(np.uint8)).save(tmp_path / "clean.png")
    Image.fromarray(noisy).save(tmp_path / "noisy.png")
    result = gen("denoise", tmp_path / "noisy.png", "-o", tmp_path / "out.png", "--reference", tmp_path / "clean.png",
                 cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    line = next(text for text in result.stderr.splitlines() if text.startswith("PSNR"))
    return float(line.split()[1]), float(line.split("input: PSNR ")[1].split()[0]), line


def test_shipped_denoiser_improves_psnr(tmp_path):
    out_psnr, in_psnr, line = denoise_with_reference(tmp_path, *noisy_photo())
    assert out_psnr > in_psnr + 5, line
    assert Image.open(tmp_path / "out.png").mode == "L"


def test_formats_alpha_16bit_jpeg_metadata_and_stdin(tmp_path):
    _, noisy = noisy_photo((64, 80))
    rgba = np.dstack([noisy, noisy[::-1], noisy[:, ::-1], np.arange(64 * 80, dtype=np.uint8).reshape(64, 80)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(noisy.astype(np.uint16) * 257).save(tmp_path / "deep.png")
    exif = Image.Exif()
    exif[0x010F] = "gen-test-camera"  # Make
    Image.fromarray(np.dstack([noisy] * 3)).save(tmp_path / "c.jpg", exif=exif, quality=90)
    result = gen("denoise", tmp_path / "a.png", tmp_path / "deep.png", tmp_path / "c.jpg", "--out-dir",
                 tmp_path / "out", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    out = Image.open(tmp_path / "out" / "a.png")
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[..., 3], rgba[..., 3])
    deep = Image.open(tmp_path / "out" / "deep.png")
    assert deep.mode.startswith("I") and np.asarray(deep).max() > 255
    jpeg = Image.open(tmp_path / "out" / "c.jpg")
    assert jpeg.format == "JPEG" and jpeg.getexif().get(0x010F) == "gen-test-camera"
    # stdin -> stdout gives the same bytes as file -> file
    piped = subprocess.run([sys.executable, "-m", "gencore", "denoise", "-"], input=(tmp_path / "a.png").read_bytes(),
                           capture_output=True, cwd=tmp_path, timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == (tmp_path / "out" / "a.png").read_bytes()


def test_tiles_are_seamless():
    from gencore.api import load_run
    from gencore.assets import asset_path
    from gencore.denoising import denoise, psnr

    model = load_run(asset_path("denoiser"), device="cpu").model()
    _, noisy = noisy_photo((150, 170))
    x = torch.from_numpy(noisy.astype(np.float32) / 255)[None]
    whole = denoise(model, x, None, torch.device("cpu"))
    tiled = denoise(model, x, None, torch.device("cpu"), tile=96, overlap=24)
    assert psnr(whole, tiled) > 60


def test_sigma_estimate():
    from gencore.denoising import estimate_sigma

    g = torch.Generator().manual_seed(0)
    flat = 0.5 + 0.1 * torch.randn(256, 256, generator=g)
    assert abs(estimate_sigma(flat) - 0.1) < 0.005


def test_train_a_denoiser_and_use_it(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(skimage_data.gravel()[:96, :128]).save(photos / "a.png")
    Image.fromarray(skimage_data.grass()[:80, :64]).save(photos / "b.png")
    run = tmp_path / "den"
    result = gen("train", "images", "--arch", "denoiser", "--data", photos, "--patch", "32", "--epochs", "2",
                 "--width", "4", "--batch-size", "4", "-o", run, cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert {"model.safetensors", "config.json", "complete.json", "samples.png", "loss.png"} <= {p.name for p in run.iterdir()}
    _, noisy = noisy_photo((40, 48))
    Image.fromarray(noisy).save(tmp_path / "n.png")
    result = gen("denoise", tmp_path / "n.png", "-r", run, "--sigma", "25", "-o", tmp_path / "o.png", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert Image.open(tmp_path / "o.png").size == (48, 40)
    assert_one_line_error(gen("sample", "-r", run, cwd=tmp_path), "denoiser")
    assert_one_line_error(gen("train", "images", "--arch", "denoiser", cwd=tmp_path), "--patch")


def test_digits_autoencoder_denoises_digits(tmp_path):
    run = tmp_path / "dae"
    result = gen("train", "images", "--arch", "dae", "--no-condition", *TINY, "-o", run, cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    from sklearn.datasets import load_digits

    digit = (load_digits().images[0] / 16 * 255).astype(np.uint8)
    Image.fromarray(digit).save(tmp_path / "d.png")
    result = gen("denoise", tmp_path / "d.png", "-r", run, "-o", tmp_path / "d-clean.png", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert Image.open(tmp_path / "d-clean.png").size == (8, 8)


def test_bad_inputs_leave_nothing(tmp_path, monkeypatch):
    (tmp_path / "text.png").write_text("not an image")
    _, noisy = noisy_photo((64, 64))
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, format="PNG")
    (tmp_path / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    bomb = io.BytesIO()
    Image.new("L", (1, 1)).save(bomb, format="PNG")
    raw = bytearray(bomb.getvalue())
    raw[16:24] = (60000).to_bytes(4, "big") + (60000).to_bytes(4, "big")  # IHDR claims 60000x60000
    (tmp_path / "bomb.png").write_bytes(bytes(raw))
    for name, needle in (("text.png", "not a readable"), ("truncated.png", "truncated"), ("bomb.png", "bomb")):
        result = gen("denoise", tmp_path / name, "-o", tmp_path / f"out-{name}", cwd=tmp_path)
        assert_one_line_error(result, name)
        assert needle in result.stderr.lower()
        assert not (tmp_path / f"out-{name}").exists()
    Image.fromarray(noisy).save(tmp_path / "ok.png")

    def denied(fd):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "fsync", denied)
    result = gen("denoise", tmp_path / "ok.png", "-o", tmp_path / "ro" / "out.png", cwd=tmp_path)
    assert_one_line_error(result, "permission denied")
    assert not (tmp_path / "ro" / "out.png").exists()
    monkeypatch.undo()
    assert_one_line_error(gen("denoise", tmp_path / "ok.png", tmp_path / "ok.png", "-o", "x.png", cwd=tmp_path), "-o")
    assert_one_line_error(gen("denoise", tmp_path / "nothing*.png", cwd=tmp_path), "nothing")


def test_denoiser_exports_whole_network_with_dynamic_size(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from gencore.api import load_run
    from gencore.assets import asset_path

    result = gen("export", "-r", asset_path("denoiser"), "-o", tmp_path / "d.onnx", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    session = ort.InferenceSession(str(tmp_path / "d.onnx"), providers=["CPUExecutionProvider"])
    model = load_run(asset_path("denoiser"), device="cpu").model()
    x = torch.rand(2, 1, 37, 91, generator=torch.Generator().manual_seed(3))
    sigma = torch.tensor([0.1, 0.05])
    got = session.run(None, {"noisy": x.numpy(), "sigma": sigma.numpy()})[0]
    with torch.no_grad():
        assert np.abs(got - model(x, sigma).numpy()).max() <= 1e-4
    assert_one_line_error(gen("export", "-r", asset_path("denoiser"), "--postprocess", "threshold", cwd=tmp_path),
                          "--postprocess")


def noisy_china(sigma=25):
    """A textured colour crop of an evaluation photo (never trained on): the carved temple front
    and a tree of scikit-learn's china, with independent noise per channel, as an 8-bit image."""
    from sklearn.datasets import load_sample_image

    clean = load_sample_image("china.jpg")[150:278, 0:192].astype(np.float64) / 255
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, sigma / 255, clean.shape), 0, 1)
    return clean, np.round(noisy * 255).astype(np.uint8)


def test_colour_photo_denoised_with_opponent_planes(tmp_path):
    out_psnr, _, line = denoise_with_reference(tmp_path, *noisy_china())
    # measured 26.92 dB (bf16 CPU; 26.95 with the green-magenta plane at full resolution); channel
    # by channel alone, the old way, gave 24.98 dB
    assert out_psnr > 26.7, line
    assert Image.open(tmp_path / "out.png").mode == "RGB"


def test_colour_sigma_estimate_holds_on_texture():
    from gencore.denoising import estimate_colour_sigma

    clean, noisy = noisy_china()
    x = torch.from_numpy(noisy.transpose(2, 0, 1).astype(np.float32) / 255)
    realised = 255 * float((x.double() - torch.from_numpy(clean.transpose(2, 0, 1))).std())  # 23.8: clipping
    assert abs(255 * estimate_colour_sigma(x) - realised) < 1.5  # measured 24.2


def test_colour_tiles_are_seamless():
    from gencore.api import load_run
    from gencore.assets import asset_path
    from gencore.denoising import denoise, psnr

    model = load_run(asset_path("denoiser"), device="cpu").model()
    x = torch.from_numpy(noisy_china()[1].transpose(2, 0, 1).astype(np.float32) / 255)
    whole = denoise(model, x, None, torch.device("cpu"))
    assert psnr(whole, denoise(model, x, None, torch.device("cpu"), tile=96, overlap=24)) > 60


def test_bf16_weights_keep_the_8_bit_levels_and_leave_the_model_alone():
    """bf16 inference runs the trunk in bf16 weights, but the image and its residual in fp32: the
    result stays within a fraction of a grey level of fp32, and the caller's model stays fp32."""
    from gencore.api import load_run
    from gencore.assets import asset_path
    from gencore.denoising import denoise, psnr, use_bf16

    cpu = torch.device("cpu")
    if not use_bf16(cpu, "auto"):
        pytest.skip("this CPU has no native bf16")
    model = load_run(asset_path("denoiser"), device="cpu").model()
    x = torch.from_numpy(noisy_china()[1].transpose(2, 0, 1).astype(np.float32) / 255)
    fp32 = denoise(model, x, None, cpu, precision="fp32")
    bf16 = denoise(model, x, None, cpu, precision="bf16")
    assert next(model.parameters()).dtype == torch.float32
    assert bf16.dtype == torch.float32 and 45 < psnr(fp32, bf16) < 80  # measured 60.9 dB: bf16 did run


def test_fused_cpu_pass_matches_the_eager_network():
    """On a CPU the pass fuses SiLU and the residual adds into the oneDNN convolutions
    (gencore/models/denoiser_cpu.py): the same network, to fp32 rounding in fp32 and to bf16
    rounding in bf16. An odd size also checks the padding."""
    from gencore.api import load_run
    from gencore.assets import asset_path
    from gencore.denoising import denoise, psnr, use_bf16
    from gencore.models.denoiser_cpu import fused_available

    cpu = torch.device("cpu")
    if not fused_available():
        pytest.skip("this torch has no oneDNN")
    model = load_run(asset_path("denoiser"), device="cpu").model()
    x = torch.from_numpy(noisy_china()[1][:127, :190].transpose(2, 0, 1).astype(np.float32) / 255)
    floors = {"fp32": 100, "bf16": 50}  # measured 146.8 and 68.0 dB
    for precision in ("fp32", "bf16") if use_bf16(cpu, "auto") else ("fp32",):
        eager = denoise(model, x, None, cpu, precision=precision, fused=False)
        assert psnr(eager, denoise(model, x, None, cpu, precision=precision)) > floors[precision], precision


def test_packed_cpu_pass_is_the_unpacked_one():
    """The fused CPU pass packs its weights once per input shape; the result is the same, to the
    bit, as with the plain weights reordered by every call, for each shape it meets."""
    from gencore.api import load_run
    from gencore.assets import asset_path
    from gencore.denoising import inference_copy, use_bf16
    from gencore.models.denoiser_cpu import FusedDenoiser, fused_available

    cpu = torch.device("cpu")
    if not fused_available():
        pytest.skip("this torch has no oneDNN")
    model = load_run(asset_path("denoiser"), device="cpu").model()
    for bf16 in (False, True) if use_bf16(cpu, "auto") else (False,):
        plain = inference_copy(model, bf16, cpu, fused=False)
        packed, unpacked = FusedDenoiser(plain), FusedDenoiser(plain, pack=False)
        for shape in ((1, 1, 127, 190), (2, 1, 64, 48), (1, 1, 127, 190)):
            x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
            sigma = torch.full((shape[0],), 25 / 255)
            assert torch.equal(packed(x, sigma), unpacked(x, sigma)), (bf16, shape)
        assert len(packed._packed) == 2  # one packing per shape, reused


def test_colour_photo_costs_five_passes_and_a_quarter(monkeypatch):
    """The blend runs three channels and the luminance and red-blue opponent planes at full
    resolution, and the green-magenta plane at half resolution (a quarter of a pass); the opponent
    rule runs the last three."""
    import gencore.denoising as denoising
    from gencore.api import load_run
    from gencore.assets import asset_path

    seen = []
    tiled = denoising._tiled
    monkeypatch.setattr(denoising, "_tiled", lambda model, plane, *a, **k: seen.append(tuple(plane.shape)) or
                        tiled(model, plane, *a, **k))
    model = load_run(asset_path("denoiser"), device="cpu").model()
    x = torch.from_numpy(noisy_china()[1][:63, :90].transpose(2, 0, 1).astype(np.float32) / 255)
    for rule, full in (("blend", 5), ("opponent", 2)):
        seen.clear()
        denoising.denoise(model, x, None, torch.device("cpu"), colour_rule=rule)
        assert sorted(seen) == [(1, 32, 45)] + [(1, 63, 90)] * full, rule


def test_passes_side_by_side_are_the_passes_in_turn():
    """With two CPU threads a colour photo's passes run side by side on worker threads, one
    thread each; the result is the same to the bit as the passes in turn, progress still ends at
    1, and the caller keeps its thread count."""
    from gencore.api import load_run
    from gencore.assets import asset_path
    from gencore.denoising import denoise

    model = load_run(asset_path("denoiser"), device="cpu").model()
    x = torch.from_numpy(noisy_china()[1][:96, :128].transpose(2, 0, 1).astype(np.float32) / 255)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        in_turn = denoise(model, x, None, torch.device("cpu"))
        torch.set_num_threads(2)
        calls = []
        side_by_side = denoise(model, x, None, torch.device("cpu"), progress=calls.append)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(in_turn, side_by_side)
    assert len(calls) == 6 and calls[-1] == 1.0 and calls == sorted(calls)


def test_a_run_names_its_colour_rule(tmp_path):
    """config.json's model.colour decides how a one-channel denoiser takes a colour photo:
    "opponent" runs the opponent planes alone (three passes, one at half resolution), "blend" adds
    the three channels where clipping biased the noise (six); any other value is refused as a
    corrupt run."""
    import json
    import shutil

    from gencore.api import load_run
    from gencore.assets import asset_path
    from gencore.denoising import denoise

    x = torch.from_numpy(noisy_china()[1][:64, :64].transpose(2, 0, 1).astype(np.float32) / 255)
    for rule, passes in (("opponent", 3), ("blend", 6), ("bogus", None)):
        run = tmp_path / rule
        shutil.copytree(asset_path("denoiser"), run)
        config = json.loads((run / "config.json").read_text())
        config["model"]["colour"] = rule
        (run / "config.json").write_text(json.dumps(config))
        if passes is None:
            Image.fromarray(noisy_china()[1]).save(tmp_path / "noisy.png")
            result = gen("denoise", tmp_path / "noisy.png", "-r", run, "-o", tmp_path / "out.png", cwd=tmp_path)
            assert_one_line_error(result, "colour")
            assert not (tmp_path / "out.png").exists()
            continue
        calls = []
        denoise(load_run(run, device="cpu").model(), x, None, torch.device("cpu"), progress=calls.append)
        assert len(calls) == passes and calls[-1] == 1.0, (rule, calls)
