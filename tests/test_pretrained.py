"""The shipped runs: a new user's first commands work with no ./runs and give what the model card
promises, measured with each domain's own metrics (scripts/train_pretrained.py measures the same way)."""
from __future__ import annotations

import json

import pytest
from conftest import gen, load_script
from PIL import Image

from gencore.runs import pretrained_runs

SHIPPED = pretrained_runs()


def card(name: str) -> dict:
    return json.loads((SHIPPED[name] / "card.json").read_text())


@pytest.fixture(scope="module")
def recipes():
    return load_script("train_pretrained")


def test_every_shipped_run_has_a_card_and_no_checkpoints():
    for name, folder in SHIPPED.items():
        assert not (folder / "checkpoints").exists(), name
        if name != "denoiser":  # the denoiser's provenance is in assets/PROVENANCE.md
            assert {"card.json", "MODEL_CARD.md", "decoder.safetensors", "encoder.safetensors"} <= {
                p.name for p in folder.iterdir()}, name
            assert card(name)["seed"] == 0 and card(name)["command"].startswith("gen ")


def test_digits_first_command_and_class_control(tmp_path, recipes):
    result = gen("sample", "-r", "pretrained:digits", "--class", "7", "--n", "16", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert len(list((tmp_path / "samples").glob("7-*.png"))) == 16
    with Image.open(tmp_path / "samples" / "grid.png") as grid:
        assert grid.width >= 256
    measured = recipes.measure_digits(SHIPPED["digits"])
    promised = card("digits")["metrics"]
    assert measured["class_control"] >= promised["class_control"] - 0.02, (measured, promised)
    assert measured["class_control"] >= 0.9
    assert 0.6 <= measured["diversity_ratio"] <= 1.2, measured


def test_denoise_defaults_to_the_shipped_denoiser(tmp_path):
    import numpy as np

    noisy = np.random.default_rng(0).integers(0, 256, (24, 24), dtype=np.uint8)
    Image.fromarray(noisy).save(tmp_path / "noisy.png")
    result = gen("denoise", tmp_path / "noisy.png", "-o", tmp_path / "clean.png", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "pretrained:denoiser" in result.stderr and (tmp_path / "clean.png").is_file()


@pytest.mark.skipif("chorales" not in SHIPPED, reason="pretrained:chorales is not shipped in this checkout")
def test_chorales_first_command_and_statistics(tmp_path, recipes):
    result = gen("sample", "-r", "pretrained:chorales", "--class", "minor", "--n", "4", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    files = sorted((tmp_path / "samples").glob("minor-*.mid"))
    assert len(files) == 4
    import mido

    keys = [next(m.key for m in mido.MidiFile(f).tracks[0] if m.type == "key_signature") for f in files]
    assert keys == ["Cm"] * 4  # the class asked for, not the C major of the key frame
    promised = card("chorales")
    measured = recipes.measure_chorales(SHIPPED["chorales"], promised["reference_percentiles"])
    outside = [k for k, row in measured["statistics"].items() if not row["inside"]]
    assert measured["inside"] >= promised["metrics"]["inside"], outside
    assert measured["mode_control"] >= promised["metrics"]["mode_control"] - 0.1


def test_what_the_wheel_ships_stays_under_30_mb():
    """The wheel compresses these files, so their plain size bounds it (25.9 MB measured with
    digits, smb, chorales and the denoiser; the wheel itself was 24.5 MB)."""
    root = SHIPPED["digits"].parents[2]
    shipped = [p for top in ("assets", "gencore", "plugins") for p in (root / top).rglob("*")
               if p.is_file() and "__pycache__" not in p.parts]
    assert sum(p.stat().st_size for p in shipped) < 30e6


def test_eval_puts_the_model_together_from_encoder_and_decoder(tmp_path):
    """No model.safetensors ships; `gen eval` must still give the run's own validation -ELBO."""
    assert not (SHIPPED["digits"] / "model.safetensors").exists()
    result = gen("eval", "-r", "pretrained:digits", "--iwae-k", "0", "--json", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)["runs"][0]
    trained = json.loads((SHIPPED["digits"] / "complete.json").read_text())["metrics"]["val_neg_elbo"]
    assert abs(report["neg_elbo"] - trained) < 0.3, (report["neg_elbo"], trained)


@pytest.mark.skipif("smb" not in SHIPPED, reason="pretrained:smb is not shipped in this checkout")
def test_smb_first_command_structure_and_playability(tmp_path, recipes):
    result = gen("sample", "-r", "pretrained:smb", "--class", "coin", "--n", "4", "--width", "150", "--playable",
                 cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    levels = sorted((tmp_path / "samples").glob("coin-*.txt"))
    assert len(levels) == 4 and all(len(p.read_text().splitlines()[0]) == 150 for p in levels)
    measured = recipes.measure_smb(SHIPPED["smb"], levels=4)
    promised = card("smb")["metrics"]
    assert measured["levels_playable"] == 1.0 and measured["levels_structure_valid"] == 1.0, measured
    for key in ("raw_structure_valid", "raw_playable"):
        assert measured[key] >= promised[key] - 0.05, (key, measured, promised)
