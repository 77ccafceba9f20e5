"""Levels through the decoded-data cache (gencore/datacache_generic.py): the built-in SMB corpus
and a --data folder come back from the cache bit for bit, per-item level ids and JSON fields
included; a second use maps the cache instead of reading the levels; a corrupt shard or per-item
file is rebuilt with a warning; `gen train levels --cache on` trains on it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, gen

FIELDS = ("class_names", "likelihood", "item_kind", "multi_label", "normalisation", "sources", "meta",
          "class_weights", "images", "anomaly_labels")


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCORE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "data"


def load(source: str, options: dict, cache: str):
    from gencore.registry import get_domain
    from gencore.training.data import load as load_data

    return load_data(get_domain("levels"), source, options, cache)


def assert_same(cached, memory) -> None:
    from gencore.sharded import ShardedItems

    assert isinstance(cached.items, ShardedItems) and type(cached) is type(memory)
    assert torch.equal(cached.items.to(), memory.items)
    assert torch.equal(cached.conditions, memory.conditions) and cached.conditions.dtype == memory.conditions.dtype
    assert isinstance(cached.level_ids, np.ndarray) and cached.level_ids.dtype == memory.level_ids.dtype
    assert np.array_equal(cached.level_ids, memory.level_ids)
    for name in FIELDS:
        assert getattr(cached, name) == getattr(memory, name), name


def write_levels(folder: Path) -> Path:
    """Three SMB-like levels and the legend beside them."""
    from gencore_levels import tiles as T
    from gencore_levels.demo import demo_levels

    folder.mkdir(parents=True)
    for i, level in enumerate(demo_levels(3, seed=7)):
        (folder / f"level-{i}.txt").write_text("\n".join(row[:60] for row in level.rows) + "\n")
    (folder / "legend.json").write_text(json.dumps({"tiles": T.profiles()["smb"]["tiles"]}))
    return folder


def test_builtin_smb_comes_back_bit_for_bit_and_a_corrupt_file_is_rebuilt(fresh_cache, capsys):
    memory = load("builtin:smb", {}, "off")
    capsys.readouterr()
    first = load("builtin:smb", {}, "on")
    assert "cached the decoded data" in capsys.readouterr().err
    assert_same(first, memory)
    (folder,) = [p for p in fresh_cache.iterdir() if p.is_dir() and not p.name.startswith(".")]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["dtype"] == "uint8" and manifest["data_class"] == "gencore_levels.corpus.LevelData"
    assert np.load(folder / "level_ids.npy").dtype == np.uint8  # 15 levels: ids fit a byte
    again = load("builtin:smb", {}, "on")  # mapped: the levels are not read again
    assert capsys.readouterr().err == ""
    assert_same(again, memory)
    assert load("builtin:smb", {"window": 12}, "on").items.shape[-1] == 12  # another key
    assert len([p for p in fresh_cache.iterdir() if p.is_dir() and not p.name.startswith(".")]) == 2
    for name in ("shard-00000.npy", "level_ids.npy"):
        raw = bytearray((folder / name).read_bytes())
        raw[-3] ^= 0xFF  # one value flipped, the size unchanged
        (folder / name).write_bytes(bytes(raw))
        rebuilt = load("builtin:smb", {}, "on")
        err = capsys.readouterr().err
        assert "corrupt" in err and name in err and "CRC-32" in err and "rebuilding" in err
        assert_same(rebuilt, memory)


def test_gen_train_levels_on_a_folder_reads_the_cache(tmp_path, fresh_cache):
    folder = write_levels(tmp_path / "own")
    args = ["train", "levels", "--data", folder, "--window", "12", "--cache", "on", *TINY]
    result = gen(*args, "-o", tmp_path / "run", cwd=tmp_path)
    assert result.exit_code == 0 and "cached the decoded data" in result.stderr, result.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["cached"] is True and config["data"]["meta"]["window"] == 12
    assert "playable" in json.loads((tmp_path / "run" / "complete.json").read_text())["metrics"]
    options = config["data"]["options"]
    caches = lambda: [p.name for p in fresh_cache.iterdir() if p.is_dir() and not p.name.startswith(".")]  # noqa: E731
    cached = load(str(folder), options, "on")  # the run's cache, reused
    assert_same(cached, load(str(folder), options, "off"))
    (before,) = caches()
    legend = json.loads((folder / "legend.json").read_text())
    legend["tiles"]["Z"] = ["solid"]  # an input changed: a new cache replaces the old one
    (folder / "legend.json").write_text(json.dumps(legend))
    assert load(str(folder), options, "on").items.shape[1] == cached.items.shape[1] + 1  # one more tile type
    (after,) = caches()
    assert after != before


def test_auto_caches_a_levels_folder_only_when_its_files_are_large(fresh_cache, tmp_path, monkeypatch):
    from gencore import datacache_generic
    from gencore.sharded import ShardedItems

    folder = write_levels(tmp_path / "levels")
    small = load(str(folder), {}, "auto")
    assert not isinstance(small.items, ShardedItems) and not fresh_cache.exists()
    monkeypatch.setattr(datacache_generic, "AUTO_MIN_SOURCE_BYTES", 1)
    large = load(str(folder), {}, "auto")
    assert isinstance(large.items, ShardedItems) and any(fresh_cache.iterdir())
    assert torch.equal(large.items.to(), small.items)
