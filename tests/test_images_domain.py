"""The images domain, called directly (no CLI)."""
from __future__ import annotations

import gzip
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gencore.errors import GenError
from gencore_images import ImagesDomain, plugin
from gencore_images import loaders
from gencore_images.noise import parse_noise

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits():
    return plugin.load(None, {})


def _png(path: Path, pixels: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode=mode).save(path)
    return path


def _digit_image(digits, i: int, size: int = 28) -> Image.Image:
    arr = (digits.items[i, 0].numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(arr, mode="L").resize((size, size), Image.Resampling.LANCZOS)


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory, digits):
    root = tmp_path_factory.mktemp("classes")
    labels = digits.conditions.argmax(1)
    for k in range(3):
        idx = torch.nonzero(labels == k).flatten()[:6]
        for j, i in enumerate(idx.tolist()):
            (root / str(k)).mkdir(exist_ok=True)
            _digit_image(digits, i).save(root / str(k) / f"img{j}.png")
    (root / "README.txt").write_text("not an image")
    return root


# -- loading -------------------------------------------------------------------------------------
def test_module_import_is_cheap():
    code = "import sys, gencore_images as m; assert m.plugin.name == 'images'; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_domain_attributes():
    assert isinstance(plugin, ImagesDomain)
    assert (plugin.name, plugin.item_kind, plugin.default_data) == ("images", "grid2d", "builtin:digits")
    names = {o.name for o in plugin.options}
    assert names == {"resize", "channels", "noise", "patch", "likelihood", "scale"}
    for o in plugin.options:
        assert "e.g. --" in o.help


def test_digits(digits):
    assert digits.items.shape == (1797, 1, 8, 8)
    assert digits.items.dtype == torch.float32
    assert 0.0 <= float(digits.items.min()) and float(digits.items.max()) <= 1.0
    assert digits.conditions.shape == (1797, 10)
    assert torch.equal(digits.conditions.sum(1), torch.ones(1797))
    assert digits.class_names == [str(i) for i in range(10)]
    assert digits.sources == ["builtin:digits (scikit-learn load_digits)"]
    assert digits.meta["source_kind"] == "digits" and digits.meta["channels"] == 1
    assert digits.likelihood == "bernoulli" and digits.item_kind == "grid2d"
    assert digits.normalisation == {"scale": "0..1"}


def test_digits_options():
    d = plugin.load("builtin:digits", {"resize": "16,12", "channels": "3", "likelihood": "gaussian"})
    assert d.items.shape == (1797, 3, 16, 12)
    assert d.meta["resize"] == [16, 12] and d.likelihood == "gaussian"


def test_unknown_builtin():
    with pytest.raises(GenError, match="builtin:digits") as e:
        plugin.load("builtin:cifar", {})
    assert e.value.where == "--data"


def test_class_folder(class_folder):
    d = plugin.load(str(class_folder), {})
    assert d.items.shape == (18, 1, 28, 28)
    assert d.class_names == ["0", "1", "2"]
    assert d.conditions.argmax(1).tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert d.meta["source_kind"] == "folder" and d.meta["resize"] is None
    assert d.sources[0] == "0/img0.png"


def test_unlabelled_folder_and_rgb(tmp_path, digits):
    for i in range(4):
        _digit_image(digits, i, 10).save(tmp_path / f"g{i}.PNG")
    d = plugin.load(str(tmp_path), {})
    assert d.conditions is None and d.class_names == [] and d.items.shape == (4, 1, 10, 10)
    # one RGBA image makes the set colour; its transparent pixels become white
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:5, :, 3] = 255
    _png(tmp_path / "c.png", rgba, "RGBA")
    d = plugin.load(str(tmp_path), {})
    assert d.items.shape == (5, 3, 10, 10) and d.meta["channels"] == 3
    red = d.items[0]
    assert torch.allclose(red[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(red[:, 9, 0], torch.ones(3))
    assert plugin.load(str(tmp_path), {"channels": "1"}).items.shape == (5, 1, 10, 10)


def _idx(path: Path, magic: int, arr: np.ndarray, gz: bool) -> None:
    data = struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("gz", [False, True])
def test_idx(tmp_path, gz):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    _idx(tmp_path / f"train-images-idx3-ubyte{suffix}", 0x803, rng.integers(0, 256, (7, 5, 4), np.uint8), gz)
    _idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", 0x801, np.array([3, 1, 3, 9, 1, 1, 3], np.uint8), gz)
    _idx(tmp_path / f"t10k-images.idx3-ubyte{suffix}", 0x803, np.full((2, 5, 4), 255, np.uint8), gz)
    _idx(tmp_path / f"t10k-labels.idx1-ubyte{suffix}", 0x801, np.array([9, 3], np.uint8), gz)
    d = plugin.load(str(tmp_path), {})
    assert d.items.shape == (9, 1, 5, 4)
    assert d.class_names == ["1", "3", "9"]
    assert d.conditions.argmax(1).tolist() == [1, 0, 1, 2, 0, 0, 1, 2, 1]
    assert float(d.items[-1].min()) == 1.0 and d.meta["source_kind"] == "idx"


def test_idx_unlabelled_and_bad(tmp_path):
    imgs = np.zeros((4, 3, 3), np.uint8)
    _idx(tmp_path / "train-images-idx3-ubyte", 0x803, imgs, False)
    d = plugin.load(str(tmp_path), {})
    assert d.conditions is None and d.items.shape == (4, 1, 3, 3)
    # truncated
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-5])
    with pytest.raises(GenError, match="truncated") as e:
        plugin.load(str(tmp_path), {})
    assert e.value.where.endswith("train-images-idx3-ubyte")
    # wrong magic
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\0\0\x08\x01" + raw[4:])
    with pytest.raises(GenError, match="magic"):
        plugin.load(str(tmp_path), {})
    # label count mismatch
    _idx(tmp_path / "train-images-idx3-ubyte", 0x803, imgs, False)
    _idx(tmp_path / "train-labels-idx1-ubyte", 0x801, np.zeros(3, np.uint8), False)
    with pytest.raises(GenError, match="3 labels"):
        plugin.load(str(tmp_path), {})
    # truncated gzip
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    gz = gzip.compress(raw)
    (tmp_path / "train-images-idx3-ubyte").unlink()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(GenError, match="truncated") as e:
        plugin.load(str(tmp_path), {})
    assert e.value.where.endswith(".gz")


# -- errors --------------------------------------------------------------------------------------
def test_missing_empty_and_file(tmp_path):
    with pytest.raises(GenError, match="no such file or folder"):
        plugin.load(str(tmp_path / "nope"), {})
    with pytest.raises(GenError, match="folder is empty"):
        plugin.load(str(tmp_path), {})
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.csv").write_text("x")
    with pytest.raises(GenError, match=r"no PNG or JPEG images found in .* \(2 other files\)"):
        plugin.load(str(tmp_path), {})
    with pytest.raises(GenError) as e:
        plugin.load(str(tmp_path / "a.txt"), {})
    assert "point --data at a folder" in e.value.line()


def test_mixed_layout(tmp_path):
    _png(tmp_path / "top.png", np.zeros((4, 4), np.uint8))
    _png(tmp_path / "cats" / "c.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(GenError, match="top level") as e:
        plugin.load(str(tmp_path), {})
    assert e.value.hint


def test_mixed_sizes_and_resize(tmp_path):
    _png(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    _png(tmp_path / "b.jpg", np.full((12, 10, 3), 200, np.uint8))
    with pytest.raises(GenError) as e:
        plugin.load(str(tmp_path), {})
    line = e.value.line()
    assert "a.png" in line and "b.jpg" in line and "pass --resize H,W" in line
    d = plugin.load(str(tmp_path), {"resize": "6,6"})
    assert d.items.shape == (2, 3, 6, 6) and d.meta["resize"] == [6, 6]
    assert float(d.items.min()) >= 0.0 and float(d.items.max()) <= 1.0
    for bad in ("6", "0,5", "a,b", "6,6,6"):
        with pytest.raises(GenError) as e:
            plugin.load(str(tmp_path), {"resize": bad})
        assert e.value.where == "--resize"


def test_corrupt_png_is_skipped(tmp_path):
    for i in range(70):  # over 64 files: decoded by the thread pool
        _png(tmp_path / f"ok{i}.png", np.full((6, 6), 3 * i, np.uint8))
    good = (tmp_path / "ok0.png").read_bytes()
    (tmp_path / "broken.png").write_bytes(good[:40])  # truncated inside the image data
    (tmp_path / "fake.jpg").write_bytes(b"not a jpeg at all")
    with pytest.warns(UserWarning) as record:
        d = plugin.load(str(tmp_path), {})
    messages = [str(w.message) for w in record]
    assert any("broken.png: skipped" in m for m in messages)
    assert any("fake.jpg: skipped" in m for m in messages)
    assert d.items.shape == (70, 1, 6, 6)
    assert len(d.sources) == 70 and "broken.png" not in d.sources


def test_every_image_unreadable(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.warns(UserWarning), pytest.raises(GenError, match="could be read"):
        plugin.load(str(tmp_path), {})


def _png_header_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(b"")
    chunk += struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    return b"\x89PNG\r\n\x1a\n" + chunk


def test_decompression_bomb_rejected(tmp_path, monkeypatch):
    _png(tmp_path / "ok.png", np.zeros((20, 20), np.uint8))
    (tmp_path / "bomb.png").write_bytes(_png_header_only(200_000, 200_000))
    with pytest.warns(UserWarning, match="bomb.png: skipped.*bomb"):
        d = plugin.load(str(tmp_path), {})
    assert d.items.shape == (1, 1, 20, 20)
    # with a lower cap even the small image is refused, before it is decoded
    monkeypatch.setattr(loaders, "MAX_PIXELS", 100)
    with pytest.raises(GenError, match="decompression bomb") as e:
        plugin.load_files([tmp_path / "ok.png"], {"meta": {"resize": None}, "item_shape": [1, 20, 20]}, {})
    assert e.value.where.endswith("ok.png")


def test_pillow_bomb_warning_becomes_error(tmp_path, monkeypatch):
    _png(tmp_path / "a.png", np.zeros((10, 10), np.uint8))
    _png(tmp_path / "b.png", np.zeros((20, 20), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # 400 px warns, 600+ would raise
    with pytest.warns(UserWarning, match="b.png: skipped.*bomb"):
        d = plugin.load(str(tmp_path), {})
    assert d.items.shape == (1, 1, 10, 10)


def test_modes_16bit_palette_and_la(tmp_path):
    _png(tmp_path / "a16.png", np.full((4, 4), 65535, np.uint16))
    Image.fromarray(np.full((4, 4), 128, np.uint8), "L").convert("P").save(tmp_path / "p.png")
    la = np.zeros((4, 4, 2), np.uint8)  # black, fully transparent -> white
    _png(tmp_path / "la.png", la, "LA")
    d = plugin.load(str(tmp_path), {})
    assert d.meta["channels"] == 1 and d.items.shape == (3, 1, 4, 4)
    by_name = dict(zip(d.sources, d.items))
    assert torch.allclose(by_name["a16.png"], torch.ones(1, 4, 4))
    assert torch.allclose(by_name["la.png"], torch.ones(1, 4, 4))
    assert torch.allclose(by_name["p.png"], torch.full((1, 4, 4), 128 / 255))


# -- load_files ---------------------------------------------------------------------------------
def test_load_files(tmp_path, class_folder):
    spec_data = plugin.load(str(class_folder), {})
    spec = {"meta": spec_data.meta, "item_shape": list(spec_data.item_shape)}
    files = [class_folder / "1" / "img0.png", class_folder / "2" / "img3.png"]
    x, implied = plugin.load_files(files, spec, {})
    assert x.shape == (2, 1, 28, 28) and implied == ["1", "2"]
    assert torch.allclose(x[0], spec_data.items[6], atol=1e-6)
    odd = _png(tmp_path / "odd" / "big.png", np.zeros((30, 30, 3), np.uint8))
    with pytest.raises(GenError) as e:
        plugin.load_files([odd], spec, {})
    assert "trained on 28x28" in e.value.line() and e.value.where.endswith("big.png")
    rs = dict(spec, meta=dict(spec["meta"], resize=[28, 28]))
    x, implied = plugin.load_files([odd], rs, {})
    assert x.shape == (1, 1, 28, 28) and implied == ["odd"]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"junk")
    with pytest.raises(GenError, match="cannot read") as e:
        plugin.load_files([bad], spec, {})
    assert e.value.where.endswith("bad.png")
    with pytest.raises(GenError, match="no such file"):
        plugin.load_files([tmp_path / "missing.png"], spec, {})


# -- output -------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 3])
def test_export_and_preview(tmp_path, channels):
    g = torch.Generator().manual_seed(0)
    items = torch.rand((70, channels, 8, 6), generator=g)
    paths = plugin.export(items, tmp_path / "out", [f"s{i:03d}" for i in range(70)], {})
    assert len(paths) == 70 and paths[5].name == "s005.png"
    with Image.open(paths[5]) as im:
        assert im.size == (6, 8) and im.mode == ("L" if channels == 1 else "RGB")
        arr = np.asarray(im)
    want = np.rint(items[5].numpy() * 255).astype(np.uint8)
    want = want[0] if channels == 1 else want.transpose(1, 2, 0)
    assert np.array_equal(arr, want)
    assert not list((tmp_path / "out").glob(".*"))  # no temp files left
    pic = plugin.preview(items[:10], {}, 4)
    # cells 6 wide -> factor 11 (66x88), 4 columns, 3 rows, 2 px gutters
    assert pic.size == (4 * 66 + 3 * 2, 3 * 88 + 2 * 2)
    assert pic.mode == ("L" if channels == 1 else "RGB")
    pic.save(tmp_path / "grid.png")
    with Image.open(tmp_path / "grid.png") as im:
        im.load()
        gutter = im.getpixel((66, 0))
    assert gutter == (128 if channels == 1 else (128, 128, 128))


# -- corruption ----------------------------------------------------------------------------------
def test_noise_parsing():
    assert parse_noise("gaussian:5-50").text() == "gaussian:5-50"
    assert parse_noise("gaussian:25").text() == "gaussian:25"
    assert parse_noise("saltpepper:0.1").kind == "saltpepper"
    assert parse_noise("mask:0.5").low == 0.5
    for bad in ("gaussian", "gaussian:50-5", "gaussian:-3", "gaussian:300", "gaussian:x",
                "saltpepper:1.5", "mask:", "poisson:3", "gaussian:nan"):
        with pytest.raises(GenError) as e:
            parse_noise(bad)
        assert e.value.where == "--noise"
    with pytest.raises(GenError):
        plugin.load(None, {"noise": "gaussian:9-1"})


def test_corrupt_range_and_seed():
    items = torch.full((64, 1, 16, 16), 0.5)
    spec = {"meta": {"noise": "gaussian:10-30"}}
    a = plugin.corrupt(items, torch.Generator().manual_seed(1), spec=spec)
    b = plugin.corrupt(items, torch.Generator().manual_seed(1), spec=spec)
    c = plugin.corrupt(items, torch.Generator().manual_seed(2), spec=spec)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    sd = (a - items).flatten(1).std(dim=1) * 255
    assert 7 < float(sd.min()) and float(sd.max()) < 34 and float(sd.max() - sd.min()) > 5
    default = plugin.corrupt(items, torch.Generator().manual_seed(1))
    assert default.shape == items.shape
    clipped = plugin.corrupt(torch.ones(4, 3, 8, 8), torch.Generator().manual_seed(0),
                             spec={"meta": {"noise": "gaussian:50"}})
    assert float(clipped.max()) == 1.0 and float(clipped.min()) >= 0.0
    masked = plugin.corrupt(torch.ones(8, 3, 16, 16), torch.Generator().manual_seed(0),
                            spec={"meta": {"noise": "mask:0.25"}})
    zero = (masked == 0).float().mean()
    assert 0.15 < float(zero) < 0.35
    sp = plugin.corrupt(torch.full((8, 1, 16, 16), 0.5), torch.Generator().manual_seed(0),
                        spec={"meta": {"noise": "saltpepper:0.2"}})
    assert set(torch.unique(sp).tolist()) == {0.0, 0.5, 1.0}


# -- metrics -------------------------------------------------------------------------------------
def test_metrics_real_against_itself(digits):
    m = plugin.metrics(digits.items, digits.conditions, digits, {}, seed=0)
    assert all(isinstance(v, float) for v in m.values())
    assert m["judge_accuracy"] > 0.9
    assert m["class_control"] > 0.9
    assert abs(m["diversity_ratio"] - 1.0) < 0.05
    assert m["nearest_real_distance"] == 0.0
    # noise-free class confusion: every sample asked to be class 0 scores about 10%
    wrong = torch.zeros_like(digits.conditions)
    wrong[:, 0] = 1
    m2 = plugin.metrics(digits.items, wrong, digits, {}, seed=0)
    assert m2["class_control"] < 0.2
    # unconditional; constant samples have no diversity
    m3 = plugin.metrics(torch.full((20, 1, 8, 8), 0.5), None, digits, {}, seed=0)
    assert m3["diversity_ratio"] == 0.0 and m3["nearest_real_distance"] > 0
    assert "class_control" not in m3
