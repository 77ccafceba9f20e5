"""The decoded-data cache (gencore/datacache.py) end to end: a folder decoded once into shards
that give exactly the in-memory loader's items, reused by later runs, updated when files come
and go, rebuilt with a warning when a shard is corrupt, listed and removed by `gen cache`, and a
run killed mid-epoch on cached data resumes to the uninterrupted weights bit for bit."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, digits_array, gen, load_script


def write_colour_folder(root: Path, per_class: int = 30, size: int = 8) -> Path:
    """Two classes of digit images: most tinted RGB, every fifth grayscale, and one corrupt file."""
    from PIL import Image

    images, labels = digits_array()
    for k in (0, 1):
        (root / str(k)).mkdir(parents=True, exist_ok=True)
        for j, i in enumerate(np.flatnonzero(labels == k)[:per_class]):
            gray = Image.fromarray(images[i]).resize((size, size))
            if j % 5:
                tint = np.asarray(gray, dtype=np.float32)[..., None] * np.array([1.0, 0.6, 0.3]) + [0, 40, 80]
                Image.fromarray(np.clip(tint, 0, 255).astype(np.uint8)).save(root / str(k) / f"d{i}.png")
            else:
                gray.save(root / str(k) / f"d{i}.png")
    (root / "1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def cache_folders() -> list[Path]:
    from gencore.datacache import data_root

    return sorted(p for p in data_root().iterdir() if p.is_dir() and not p.name.startswith("."))


def load(folder: Path, cache: str):
    from gencore.registry import get_domain
    from gencore.training.data import load as load_data

    return load_data(get_domain("images"), str(folder), {}, cache)


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCORE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_cache_gives_the_loaders_items_and_is_reused(tmp_path, fresh_cache, capsys):
    folder = write_colour_folder(tmp_path / "data")
    with pytest.warns(UserWarning, match="broken.png: skipped"):
        cached = load(folder, "on")
    assert "caching 61 files" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="broken.png: skipped"):
        memory = load(folder, "off")
    assert torch.equal(cached.items.to(), memory.items)  # bit for bit: 8-bit pixels are stored as they are
    assert cached.items.shape == memory.items.shape == (60, 3, 8, 8)
    assert torch.equal(cached.conditions, memory.conditions) and cached.class_names == memory.class_names
    assert cached.sources == memory.sources and cached.meta == memory.meta
    again = load(folder, "on")  # no decoding: the manifest's skip is repeated as one warning
    err = capsys.readouterr().err
    assert "caching" not in err and "1 of the files" in err and "broken.png" in err
    assert torch.equal(again.items[torch.tensor([3, 40])].to(), memory.items[[3, 40]])
    assert len(cache_folders()) == 1
    assert load(folder, "auto").items.__class__ is torch.Tensor  # 61 tiny files: not worth a cache


def test_corrupt_shard_is_rebuilt_with_a_warning(tmp_path, fresh_cache, capsys):
    folder = write_colour_folder(tmp_path / "data")
    with pytest.warns(UserWarning):
        expected = load(folder, "on").items.to()
    shard = next(cache_folders()[0].glob("shard-*.npy"))
    raw = bytearray(shard.read_bytes())
    raw[-100] ^= 0xFF  # one pixel flipped, the size unchanged
    shard.write_bytes(bytes(raw))
    with pytest.warns(UserWarning):
        rebuilt = load(folder, "on")
    err = capsys.readouterr().err
    assert "corrupt" in err and "CRC-32" in err and "rebuilding" in err
    assert torch.equal(rebuilt.items.to(), expected)
    (cache_folders()[0] / "manifest.json").write_text("{")  # a torn manifest: rebuilt too
    with pytest.warns(UserWarning):
        assert torch.equal(load(folder, "on").items.to(), expected)
    assert "rebuilding" in capsys.readouterr().err


def test_added_and_removed_files_update_the_cache(tmp_path, fresh_cache, capsys):
    from PIL import Image

    folder = write_colour_folder(tmp_path / "data")
    with pytest.warns(UserWarning):
        load(folder, "on")
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(folder / "0" / "new.png")
    with pytest.warns(UserWarning):
        updated = load(folder, "on")
    assert "60 items reused, 2 files to decode" in capsys.readouterr().err  # the new file and the broken one
    assert updated.items.shape[0] == 61 and len(cache_folders()) == 1  # the old cache is gone
    (folder / "1" / "broken.png").unlink()
    assert load(folder, "on").items.shape[0] == 61


def test_gen_train_reads_the_cache_and_gen_cache_lists_and_removes(tmp_path, fresh_cache):
    folder = write_colour_folder(tmp_path / "data")
    args = ["train", "images", "--data", folder, "--cache", "on", "--epochs", "1", "--width", "8", "--latent", "2"]
    first = gen(*args, "-o", tmp_path / "a")
    assert first.exit_code == 0, first.stderr
    second = gen(*args, "-o", tmp_path / "b")
    assert second.exit_code == 0 and "caching" not in second.stderr, second.stderr
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["data"]["cached"] is True
    assert config["fingerprint"] == json.loads((tmp_path / "a" / "config.json").read_text())["fingerprint"]
    assert gen("eval", "-r", tmp_path / "b").exit_code == 0  # reloads through the cache, fingerprint equal
    listed = json.loads(gen("cache", "ls", "--json").stdout)
    assert [row["items"] for row in listed] == [60]
    assert_one_line_error(gen("cache", "rm", "no-such-cache"), "no data cache named")
    assert gen("cache", "rm", listed[0]["name"]).exit_code == 0
    assert json.loads(gen("cache", "ls", "--json").stdout) == []
    assert_one_line_error(gen("train", "images", "--data", folder, "--cache", "sometimes"), "--cache")


def test_kill_mid_epoch_on_cached_data_resumes_bit_for_bit(tmp_path):
    from conftest import write_png_folder

    folder = write_png_folder(tmp_path / "data", per_class=20, size=8)  # 200 images, as --limit 200
    kill_resume = load_script("kill_resume")
    summary = kill_resume.kill_and_resume(tmp_path / "work", kills=3, seed=1, epochs=2,
                                          data=["--data", str(folder), "--cache", "on"])
    log = (tmp_path / "work" / "gen.log").read_text(errors="replace")[-3000:]
    assert summary.kills == 3, (summary.lives, log)
    assert not summary.corrupt, summary.corrupt
    assert summary.identical and all(summary.identical.values()), summary.text()
    assert "Traceback" not in log
    config = json.loads((tmp_path / "work" / "killed" / "config.json").read_text())
    assert config["data"]["cached"] is True


def test_domains_without_a_stream_are_cached_whole_after_one_load(tmp_path, fresh_cache):
    """Series (like tables and MIDI) has no `stream` hook: --cache on stores what its `load` gives,
    in the smallest exact dtype, and later runs map it instead of reading the CSV again."""
    from test_series import write_series

    data = write_series(tmp_path / "train.csv", 400, seed=1)
    args = ["train", "series", "--data", data, "--columns", "a,b", "--window", "24", "--stride", "4", "--epochs", "1",
            "--width", "4", "--latent", "2", "--cache", "on", "--checkpoint-every", "0"]
    first = gen(*args, "-o", tmp_path / "a")
    assert first.exit_code == 0 and "cached the decoded data" in first.stderr, first.stderr
    second = gen(*args, "-o", tmp_path / "b")
    assert second.exit_code == 0 and "cached the decoded data" not in second.stderr, second.stderr
    assert "interpolated" not in second.stderr  # the CSV was not read again
    configs = [json.loads((tmp_path / r / "config.json").read_text()) for r in "ab"]
    assert configs[0]["data"]["cached"] and configs[0]["fingerprint"] == configs[1]["fingerprint"]
    assert gen("eval", "-r", tmp_path / "b").exit_code == 0
    from gencore.registry import get_domain
    from gencore.training.data import load as load_data

    options = configs[0]["data"]["options"]
    cached, memory = (load_data(get_domain("series"), str(data), options, mode) for mode in ("on", "off"))
    assert torch.equal(cached.items.to(), memory.items) and cached.normalisation == memory.normalisation
    assert [row["items"] for row in json.loads(gen("cache", "ls", "--json").stdout)] == [memory.items.shape[0]]


def test_two_ranks_share_one_cache(tmp_path):
    """Under torchrun local rank 0 builds the cache while rank 1 waits; both map the same files."""
    from conftest import gen_subprocess

    folder = write_colour_folder(tmp_path / "data")
    env = {"GENCORE_CACHE": str(tmp_path / "cache"), "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    run = tmp_path / "run"
    args = ["train", "images", "--data", folder, "--cache", "on", "--width", "4", "--latent", "2",
            "--checkpoint-every", "0", "--nproc", "2"]
    result = gen_subprocess(*args, "--epochs", "1", "-o", run, cwd=tmp_path, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("caching 61 files") == 1 and "x 2 processes" in result.stderr
    caches = [p for p in (tmp_path / "cache" / "data").iterdir() if not p.name.startswith(".")]
    assert len(caches) == 1 and json.loads((run / "config.json").read_text())["data"]["cached"]
    result = gen_subprocess("train", "images", "--resume", run, "--epochs", "2", "--nproc", "2", cwd=tmp_path,
                            env=env, timeout=600)
    assert result.returncode == 0 and "caching" not in result.stderr, result.stderr[-3000:]


def test_end_of_run_metrics_read_bounded_seeded_subsets(tmp_path, fresh_cache):
    """README, Data at scale: the metrics compare samples with at most METRIC_REFERENCE_ITEMS real
    items, seeded, and the images judge sees at most 1,024 pooled values per image."""
    from gencore.training.data import bounded
    from gencore.training.finish import METRIC_REFERENCE_ITEMS
    from gencore_images.metrics import JUDGE_MAX_FEATURES, _judge_features

    assert _judge_features(torch.rand(2, 3, 64, 64)).shape == (2, 768)  # pooled 4x: 16x16x3
    assert _judge_features(torch.rand(2, 1, 28, 28)).shape == (2, 784)  # few enough: raw pixels
    assert JUDGE_MAX_FEATURES == 1024 and METRIC_REFERENCE_ITEMS == 5_000
    folder = write_colour_folder(tmp_path / "data")
    with pytest.warns(UserWarning):
        data = load(folder, "on")
    a, b, c = bounded(data, 7, seed=1), bounded(data, 7, seed=1), bounded(data, 7, seed=2)
    assert isinstance(a.items, torch.Tensor) and a.items.shape[0] == 7 and a.conditions.shape[0] == 7
    assert torch.equal(a.items, b.items) and not torch.equal(a.items, c.items)
