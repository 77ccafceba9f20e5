"""The images domain end to end through the CLI: every arch, other data, decoder-only sampling,
the Python API, and the bad inputs that must end in one line and exit code 2."""
import json
import shutil

import pytest
from PIL import Image

from conftest import TINY, assert_one_line_error, gen, write_idx, write_png_folder
from gencore import load_run


@pytest.mark.parametrize("arch", ["ae", "vae", "beta-vae", "cae", "dae"])
def test_every_arch_reloads_and_samples(tiny_runs, workdir, arch):
    run_dir = tiny_runs[arch]
    for name in ("config.json", "model.safetensors", "decoder.safetensors", "encoder.safetensors",
                 "metrics.jsonl", "loss.png", "samples.png", "complete.json"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "checkpoints").glob("step-*/train_state.safetensors"))
    config = json.loads((run_dir / "config.json").read_text())
    assert config["format_version"] == 2 and config["arch"] == arch and config["domain"] == "images"
    assert len(config["split"]["val_indices"]) == 30
    run = load_run(run_dir, device="cpu")
    items = run.sample(n=4, cls="3", seed=0)
    assert items.shape == (4, 1, 8, 8) and 0 <= items.min() and items.max() <= 1
    assert run.encode(items, run.condition("3")[None].expand(4, -1))[0].shape == (4, 4)
    out = workdir / f"samples-{arch}"
    result = gen("sample", "-r", run_dir, "--class", "3", "--n", "4", "-o", out, cwd=workdir)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["3-0000.png", "3-0001.png", "3-0002.png", "3-0003.png",
                                                     "grid.png"]


def test_sample_class_7_writes_16_pngs_and_is_seeded(default_run, workdir):
    out_a, out_b = workdir / "sevens-a", workdir / "sevens-b"
    for out in (out_a, out_b):
        result = gen("sample", "-r", default_run, "--class", "7", "--n", "16", "--seed", "5", "-o", out, cwd=workdir)
        assert result.exit_code == 0, result.stderr
        assert "class '7'" in result.stderr and str(default_run) in result.stderr
    pngs = sorted(out_a.glob("7-*.png"))
    assert len(pngs) == 16
    assert Image.open(pngs[0]).size == (8, 8)
    for a in pngs:
        assert a.read_bytes() == (out_b / a.name).read_bytes()
    assert Image.open(out_a / "grid.png").size[0] > 8 * 16


def test_default_run_quality(default_run):
    """README, "What the default gives" (seed 0, 2-core CPU, FiLM conditioning): validation -ELBO
    30.4 nats, 16/16 active units, class control 98.3% against a judge at 98.3%, diversity 0.76."""
    final = json.loads((default_run / "complete.json").read_text())["metrics"]
    assert final["judge_accuracy"] >= 0.95
    assert final["class_control"] >= 0.97
    assert final["active_units"] == 16
    assert 0.62 <= final["diversity_ratio"] <= 0.82
    assert 28.5 <= final["val_neg_elbo"] <= 33.5
    rows = [json.loads(line) for line in (default_run / "metrics.jsonl").read_text().splitlines()]
    epoch = [r for r in rows if r["event"] == "epoch"]
    assert {"val_recon", "val_kl", "active_units", "train_loss"} <= set(epoch[0])
    assert epoch[-1]["val_recon"] < epoch[0]["val_recon"]


def test_samples_png_has_one_row_per_class(default_run):
    image = Image.open(default_run / "samples.png")
    width, height = image.size
    assert height > width  # 10 rows of 8 columns
    assert abs(height / width - 10 / 8) < 0.1


def test_decoder_only_sampling(tiny_runs, workdir):
    run_dir = workdir / "decoder-only"
    shutil.copytree(tiny_runs["vae"], run_dir)
    (run_dir / "model.safetensors").unlink()
    (run_dir / "encoder.safetensors").unlink()
    shutil.rmtree(run_dir / "checkpoints")
    result = gen("sample", "-r", run_dir, "--class", "1", "--n", "3", "-o", workdir / "dec-only", cwd=workdir)
    assert result.exit_code == 0, result.stderr
    assert len(list((workdir / "dec-only").glob("1-*.png"))) == 3


def test_png_folder_labelled_unlabelled_and_idx(workdir, tmp_path):
    labelled = write_png_folder(tmp_path / "labelled", per_class=12)
    unlabelled = write_png_folder(tmp_path / "unlabelled", per_class=6, labelled=False)
    idx = write_idx(tmp_path / "idx", n=200)
    for name, data, conditional in (("labelled", labelled, True), ("unlabelled", unlabelled, False),
                                    ("idx", idx, True)):
        out = tmp_path / f"run-{name}"
        result = gen("train", "images", "--data", data, *TINY, "-o", out, cwd=tmp_path)
        assert result.exit_code == 0, (name, result.stderr)
        config = json.loads((out / "config.json").read_text())
        assert config["model"]["item_shape"] == [1, 28, 28]
        assert (config["model"]["cond_dim"] == 10) == conditional
        args = ["--class", "4"] if conditional else []
        result = gen("sample", "-r", out, *args, "--n", "2", "-o", tmp_path / f"s-{name}", cwd=tmp_path)
        assert result.exit_code == 0, (name, result.stderr)
        assert Image.open(next((tmp_path / f"s-{name}").glob("*-0000.png"))).size == (28, 28)
    # reconstruct takes the class from the file's folder
    result = gen("reconstruct", "-r", tmp_path / "run-labelled", *sorted((labelled / "4").glob("*.png"))[:2],
                 "-o", tmp_path / "recon", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "recon" / "comparison.png").is_file()
    # an unconditional run refuses a class
    assert_one_line_error(gen("sample", "-r", tmp_path / "run-unlabelled", "--class", "3", cwd=tmp_path), "--class")


def test_interpolate_classes_and_files(tiny_runs, workdir, tmp_path):
    result = gen("interpolate", "-r", tiny_runs["vae"], "--from", "3", "--to", "8", "--steps", "5",
                 "-o", tmp_path / "morph", cwd=workdir)
    assert result.exit_code == 0, result.stderr
    assert len(list((tmp_path / "morph").glob("step-*.png"))) == 5
    assert (tmp_path / "morph" / "strip.png").is_file()
    folder = tmp_path / "digits"
    write_png_folder(folder, per_class=1, classes=[2, 5], size=8)
    a, b = next((folder / "2").glob("*.png")), next((folder / "5").glob("*.png"))
    result = gen("interpolate", "-r", tiny_runs["ae"], "--from", a, "--to", b, "--steps", "3",
                 "-o", tmp_path / "files", cwd=workdir)
    assert result.exit_code == 0, result.stderr


def test_runs_and_info_json(tiny_runs, workdir):
    result = gen("runs", "--json", cwd=workdir)
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert {str(p) for p in tiny_runs.values()} <= {str(workdir / r["run"]) for r in rows}
    result = gen("info", "-r", tiny_runs["vae"], "--json", cwd=workdir)
    report = json.loads(result.stdout)
    assert report["arch"] == "vae" and report["status"] == "complete" and len(report["classes"]) == 10
    assert "class_control" in report["final"]


def test_init_fine_tunes(tiny_runs, workdir, tmp_path):
    result = gen("train", "images", "--arch", "vae", *TINY, "--init", tiny_runs["vae"], "-o", tmp_path / "ft",
                 cwd=workdir)
    assert result.exit_code == 0, result.stderr
    result = gen("train", "images", "--arch", "vae", *TINY[:-4], "--latent", "5", "--limit", "300",
                 "--init", tiny_runs["vae"], "-o", tmp_path / "ft2", cwd=workdir)
    assert_one_line_error(result, "--init", "latent_dim")
    assert not (tmp_path / "ft2").exists()


# -- bad input ---------------------------------------------------------------------------------
def test_bad_inputs(tiny_runs, workdir, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("not an image")
    mixed = tmp_path / "mixed"
    write_png_folder(mixed, per_class=2, classes=[0], size=28)
    write_png_folder(mixed, per_class=2, classes=[1], size=20)
    cases = [
        (["train", "images", "--data", tmp_path / "missing"], "missing"),
        (["train", "images", "--data", tmp_path / "empty"], "empty"),
        (["train", "images", "--data", tmp_path / "texts"], "texts"),
        (["train", "images", "--data", mixed], "--resize"),
        (["sample", "-r", tiny_runs["vae"], "--class", "12"], "--class"),
        (["sample", "-r", tmp_path / "no-run"], "no-run"),
        (["sample", "-r", tmp_path / "empty"], "config.json"),
        (["train", "images", "--resize", "abc"], "--resize"),
        (["train", "images", "--arch", "nope"], "--arch"),
        (["train", "levels-of-nowhere"], "levels-of-nowhere"),
    ]
    for args, needle in cases:
        result = gen(*args, cwd=tmp_path)
        assert_one_line_error(result, needle)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    result = gen("train", "images", "--data", mixed, "--resize", "16,16", *TINY, "-o", tmp_path / "resized",
                 cwd=tmp_path)
    assert result.exit_code == 0, result.stderr


def test_run_of_another_domain_or_version_is_refused(tiny_runs, tmp_path):
    other = tmp_path / "other-domain"
    shutil.copytree(tiny_runs["vae"], other)
    config = json.loads((other / "config.json").read_text())
    config["domain"] = "nosuchdomain"
    (other / "config.json").write_text(json.dumps(config))
    assert_one_line_error(gen("train", "images", *TINY, "--init", other, "-o", tmp_path / "x", cwd=tmp_path),
                          "nosuchdomain")
    assert_one_line_error(gen("sample", "-r", other, "--class", "1", cwd=tmp_path), "'nosuchdomain'", "not installed")
    config["domain"] = "images"
    (other / "config.json").write_text(json.dumps(config))
    (other / "decoder.safetensors").write_bytes((tiny_runs["vae"] / "encoder.safetensors").read_bytes())
    assert_one_line_error(gen("sample", "-r", other, "--class", "1", cwd=tmp_path), "decoder.safetensors",
                          "'encoder'")
    config["format_version"] = 99
    (other / "config.json").write_text(json.dumps(config))
    assert_one_line_error(gen("sample", "-r", other, cwd=tmp_path), "format_version")


def test_a_format_1_run_loads_through_the_concatenating_layout(tiny_runs, tmp_path):
    """Runs written before issue 24 (format_version 1, class planes concatenated) still sample,
    through the old layout; their weights do not fit the new one, and mixing them is refused."""
    import torch
    from safetensors.torch import save_file

    from gencore.models.autoencoder import AutoEncoder

    old = tmp_path / "format-1"
    shutil.copytree(tiny_runs["vae"], old)
    config = json.loads((old / "config.json").read_text())
    assert config["model"].pop("conditioning") == "film"
    config["format_version"] = 1
    (old / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    model = AutoEncoder(config["model"]).eval()
    assert model.decoder.net.up[0].in_channels == 8 + 10  # width 8, 10 class planes
    for kind, module in (("model", model), ("encoder", model.encoder), ("decoder", model.decoder)):
        state = {k: v.contiguous() for k, v in module.state_dict().items()}
        save_file(state, str(old / f"{kind}.safetensors"), metadata={"format_version": "1", "kind": kind,
                                                                       "domain": "images"})
    result = gen("sample", "-r", old, "--class", "3", "--n", "4", "-o", tmp_path / "s", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert len(list((tmp_path / "s").glob("3-*.png"))) == 4
    z, cond = torch.randn(5, config["model"]["latent_dim"]), torch.eye(10)[[3, 1, 4, 1, 5]]
    with torch.no_grad():
        expected = torch.sigmoid(model.decoder(z, cond))
    assert torch.allclose(load_run(old, device="cpu").decode(z, cond), expected, atol=1e-6)
    assert_one_line_error(gen("train", "images", *TINY, "--init", old, "-o", tmp_path / "ft", cwd=tmp_path),
                          "conditioning differ", "format_version 1")
    assert not (tmp_path / "ft").exists()
    (old / "decoder.safetensors").write_bytes((tiny_runs["vae"] / "decoder.safetensors").read_bytes())
    assert_one_line_error(gen("sample", "-r", old, "--class", "3", cwd=tmp_path), "decoder.safetensors",
                          "do not fit")


def test_truncated_weights_are_refused(tiny_runs, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_runs["vae"], broken)
    data = (broken / "decoder.safetensors").read_bytes()
    (broken / "decoder.safetensors").write_bytes(data[: len(data) // 2])
    result = gen("sample", "-r", broken, "--class", "1", "-o", tmp_path / "none", cwd=tmp_path)
    assert_one_line_error(result, "decoder.safetensors")
    assert not (tmp_path / "none").exists()


def test_latest_needs_a_completed_run(tmp_path):
    assert_one_line_error(gen("sample", cwd=tmp_path), "no completed run")
