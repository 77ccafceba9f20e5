"""The one trainer serves every arch (the denoiser resumes bit for bit and has the NaN guard), the
library checks its own settings, per-item extras follow the items, symlinked class folders are
read, and the source points at docs/, not at files outside it."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import assert_one_line_error, gen, write_png_folder
from gencore.errors import GenError

ROOT = Path(__file__).resolve().parents[1]


def photo_folder(root: Path) -> Path:
    from skimage import data as skimage_data

    root.mkdir()
    Image.fromarray(skimage_data.gravel()[:96, :128]).save(root / "a.png")
    Image.fromarray(skimage_data.grass()[:80, :64]).save(root / "b.png")
    return root


def weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / "model.safetensors"))


def test_a_denoiser_run_resumes_bit_for_bit_and_rolls_back_a_nan(tmp_path, monkeypatch):
    from gencore.training.denoise import DenoiserLoss

    photos = photo_folder(tmp_path / "photos")
    # 17 patches of 32 pixels per epoch at batch 4: 5 steps an epoch, 10 in all
    args = ["train", "images", "--arch", "denoiser", "--data", photos, "--patch", "32", "--epochs", "2",
            "--width", "4", "--batch-size", "4", "--checkpoint-every", "0"]
    whole = gen(*args, "-o", tmp_path / "whole", cwd=tmp_path)
    assert whole.exit_code == 0, whole.stderr

    real, calls = DenoiserLoss.forward, {"n": 0}

    def forward(self, *inputs, nan_at=(), interrupt_at=None):
        calls["n"] += 1
        if calls["n"] == interrupt_at:
            raise KeyboardInterrupt
        out = real(self, *inputs)
        if calls["n"] in nan_at:
            out["loss"] = out["loss"] * float("nan")
        return out

    with monkeypatch.context() as patch:  # Ctrl-C in the middle of the second epoch
        patch.setattr(DenoiserLoss, "forward", lambda self, *x: forward(self, *x, interrupt_at=8))
        cut = gen(*args, "-o", tmp_path / "cut", cwd=tmp_path)
    assert cut.exit_code == 130 and "--resume" in cut.stderr, cut.stderr
    resumed = gen("train", "images", "--resume", tmp_path / "cut", cwd=tmp_path)
    assert resumed.exit_code == 0 and "resuming from" in resumed.stderr, resumed.stderr
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "cut")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    calls["n"] = 0
    with monkeypatch.context() as patch:
        patch.setattr(DenoiserLoss, "forward", lambda self, *x: forward(self, *x, nan_at={3}))
        guarded = gen(*args, "-o", tmp_path / "nan", cwd=tmp_path)
    assert guarded.exit_code == 0, guarded.stderr
    assert "NaN or infinite at step 3; rolled back to step-00000000" in guarded.stderr
    final = [json.loads(line) for line in (tmp_path / "nan" / "metrics.jsonl").read_text().splitlines()][-1]
    assert final["event"] == "final" and np.isfinite(final["val_psnr"]) and (tmp_path / "nan" / "complete.json").is_file()


def test_train_settings_validate_names_the_parameter_and_the_cli_the_flag(tmp_path):
    from gencore.registry import get_domain
    from gencore.training import pipeline
    from gencore.training.settings import TrainSettings

    for settings, param in ((TrainSettings(latent_dim=0), "latent_dim"), (TrainSettings(lr=float("inf")), "lr"),
                            (TrainSettings(val_fraction=1.0), "val_fraction"), (TrainSettings(arch="gan"), "arch")):
        with pytest.raises(GenError) as caught:
            pipeline.start(get_domain("images"), None, {}, settings, tmp_path / "never", torch.device("cpu"), None)
        assert caught.value.param == param and caught.value.line().startswith(f"{param}: ")
    assert not (tmp_path / "never").exists()
    assert_one_line_error(gen("train", "images", "--latent", "0", cwd=tmp_path), "--latent: must be at least 1")
    assert_one_line_error(gen("train", "images", "--drop-class", "3", "--val-fraction", "2", cwd=tmp_path),
                          "--val-fraction: must be between 0 and 1")


def test_sample_errors_name_the_parameter_in_python_and_the_flag_in_the_cli(tiny_runs, tmp_path):
    from gencore.api import load_run

    run = load_run(tiny_runs["vae"], device="cpu")
    with pytest.raises(GenError) as caught:
        run.sample(n=2, cls="3", temperature=0)
    assert caught.value.line().startswith("temperature: must be positive")
    assert_one_line_error(gen("sample", "-r", tiny_runs["vae"], "--n", "2", "--temperature", "0", "-o", tmp_path / "s",
                              cwd=tmp_path), "--temperature: must be positive")


def test_select_keeps_per_item_extras_in_step_with_the_items():
    from dataclasses import make_dataclass

    from gencore.plugin import LoadedData
    from gencore.training.data import drop_classes, subset

    Tagged = make_dataclass("Tagged", [("level_ids", object, None), ("note", object, None)], bases=(LoadedData,))
    n = 50
    items = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1)
    labels = torch.arange(n) % 5
    data = Tagged(items=items, conditions=torch.eye(5)[labels], class_names=list("abcde"), likelihood="gaussian",
                  item_kind="grid2d", level_ids=np.arange(n) * 10, note="one value for the corpus")
    for picked in (subset(data, 20, seed=3), drop_classes(data, ["c"], "test")):
        ids = picked.items.flatten().long().numpy()
        assert picked.level_ids.shape == (len(ids),) and (picked.level_ids == ids * 10).all()
        assert picked.note == "one value for the corpus"
    assert len(data.level_ids) == n  # the original is left as it was


def test_symlinked_class_folders_are_followed_and_a_loop_is_not(tmp_path):
    from gencore.cli.common import parse_domain_options
    from gencore.registry import get_domain

    real = write_png_folder(tmp_path / "real", per_class=3, classes=range(3), size=8)
    data = tmp_path / "data"
    data.mkdir()
    for k in range(3):
        os.symlink(real / str(k), data / f"class{k}", target_is_directory=True)
    os.symlink(data, real / "0" / "loop", target_is_directory=True)  # a loop back to the top
    images = get_domain("images")
    loaded = images.load(str(data), parse_domain_options(images, "train", []))
    assert loaded.class_names == ["class0", "class1", "class2"]
    assert loaded.items.shape[0] == 9


def test_only_the_arch_module_names_the_denoiser_and_no_source_names_the_shared_docs():
    sources = [p for folder in ("gencore", "plugins") for p in (ROOT / folder).rglob("*.py")]
    naming = {p.relative_to(ROOT).as_posix() for p in sources if p.is_relative_to(ROOT / "gencore")
              and '"denoiser"' in p.read_text()}
    assert naming == {"gencore/archs/denoiser.py"}
    outside = [p for p in sources if re.search(r"CONVENTIONS\.md|REFERENCE\.md", p.read_text())]
    assert outside == []
    for doc in ("format.md", "plugins.md", "metrics.md"):
        assert (ROOT / "docs" / doc).is_file()
