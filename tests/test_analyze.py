"""`gen latent`, `gen traverse`, `gen eval` and `gen score` end to end on digits runs."""
import csv
import json

import pytest

from conftest import TINY, assert_one_line_error, gen


@pytest.fixture(scope="module")
def no_nines(workdir):
    out = workdir / "runs" / "no-nines"
    result = gen("train", "images", "--drop-class", "9", "--epochs", "12", "--width", "16", "--latent", "8",
                 "--checkpoint-every", "0", "-o", out, cwd=workdir)
    assert result.exit_code == 0, result.stderr
    return out


def test_latent_maps(tiny_runs, workdir, tmp_path):
    result = gen("latent", "-r", tiny_runs["vae"], "-o", tmp_path / "maps", cwd=workdir)
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "maps").iterdir())
    assert names == ["latent.json", "latent_map.png", "per_dimension.png"]
    report = json.loads((tmp_path / "maps" / "latent.json").read_text())
    assert report["items"] == 300 and len(report["per_dimension"]) == 4 and report["embedding"].startswith("PCA")
    two = tmp_path / "two"
    assert gen("train", "images", *TINY[:4], "--latent", "2", "--limit", "200", "-o", two, cwd=workdir).exit_code == 0
    result = gen("latent", "-r", two, "--class", "5", "-o", tmp_path / "maps2", cwd=workdir)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "maps2" / "manifold.png").is_file()
    assert_one_line_error(gen("latent", "-r", two, "--method", "nope", cwd=tmp_path), "--method")


def test_traverse(tiny_runs, workdir, tmp_path):
    result = gen("traverse", "-r", tiny_runs["beta-vae"], "--dim", "all", "--steps", "5", "--class", "3",
                 "-o", tmp_path / "t", cwd=workdir)
    assert result.exit_code == 0, result.stderr
    assert len(list((tmp_path / "t").glob("dim*-step*.png"))) == 4 * 5
    assert (tmp_path / "t" / "strip.png").is_file()
    assert_one_line_error(gen("traverse", "-r", tiny_runs["vae"], "--dim", "7", cwd=tmp_path), "--dim")


def test_eval_ranks_trained_above_untrained(default_run, workdir, tmp_path):
    untrained = tmp_path / "untrained"
    result = gen("train", "images", "--epochs", "1", "--lr", "1e-9", "--checkpoint-every", "0", "-o", untrained,
                 cwd=workdir)
    assert result.exit_code == 0, result.stderr
    result = gen("eval", "-r", untrained, "-r", default_run, "--iwae-k", "10", "--json", cwd=workdir)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert [r["run"] for r in report["runs"]] == [str(untrained), str(default_run)]
    for metric in ("neg_elbo", "iwae_nll", "recon_nll", "class_control", "active_units"):
        assert report["better"][metric] == [1], metric
    trained = report["runs"][1]
    assert trained["iwae_nll"] <= trained["neg_elbo"]  # the IWAE bound is tighter
    assert trained["items"] == 180  # the stored held-out split
    result = gen("eval", "-r", "latest", cwd=workdir)  # the table form
    assert result.exit_code == 0 and "neg_elbo" in result.stdout


def test_eval_of_ae_marks_elbo_not_applicable(tiny_runs, workdir):
    result = gen("eval", "-r", tiny_runs["ae"], "--json", cwd=workdir)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)["runs"][0]
    assert report["neg_elbo"] is None and report["iwae_nll"] is None and report["recon_nll"] > 0


@pytest.mark.parametrize("method", ["recon", "elbo", "mahalanobis"])
def test_score_unseen_class_as_anomaly(no_nines, workdir, tmp_path, method):
    out = tmp_path / "scores.csv"
    result = gen("score", "builtin:digits", "-r", no_nines, "--anomaly-class", "9", "--exclude-training",
                 "--method", method, "--contamination", "0.3", "-o", out, cwd=workdir)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == round(0.1 * (1797 - 180)) + 180  # the held-out normals and all 180 nines
    assert {"input", "score", "anomaly", "label"} <= set(rows[0])
    assert sum(int(r["anomaly"]) for r in rows) == pytest.approx(0.3 * len(rows), abs=2)
    auc = float(result.stderr.split("ROC AUC ")[1].split(";")[0])
    assert auc > 0.6, auc  # chance is 0.5; the README gives the figures of a full default run


def test_score_files_json_and_labels(no_nines, workdir, tmp_path):
    from conftest import write_png_folder

    folder = write_png_folder(tmp_path / "d", per_class=2, classes=[1, 9], size=8)
    files = sorted(folder.rglob("*.png"))
    labels = tmp_path / "truth.csv"
    labels.write_text("input,label\n" + "".join(f"{f.name},{int(f.parent.name == '9')}\n" for f in files))
    result = gen("score", *files, "-r", no_nines, "--method", "recon", "--labels", labels, "--threshold", "1e9",
                 "-o", tmp_path / "s.json", "--json", cwd=workdir)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["inputs"] == 4 and report["flagged"] == 0 and report["roc_auc"] is not None
    assert json.loads((tmp_path / "s.json").read_text())["scores"][0]["input"] == str(files[0])


def test_score_bad_input(tiny_runs, workdir, tmp_path):
    assert_one_line_error(gen("score", "builtin:digits", "-r", tiny_runs["ae"], "--method", "elbo", cwd=tmp_path),
                          "--method")
    assert_one_line_error(gen("score", tmp_path / "missing.png", "-r", tiny_runs["vae"], cwd=tmp_path), "missing.png")
    assert_one_line_error(gen("score", "builtin:digits", "-r", tiny_runs["vae"], "--threshold", "1",
                              "--contamination", "0.1", cwd=tmp_path), "--threshold")


def test_api_score_ranks_unseen_nines_higher(no_nines):
    import numpy as np
    import torch

    from conftest import digits_array
    from gencore import load_run

    run = load_run(no_nines, device="cpu")
    images, labels = digits_array()
    pick = np.concatenate([np.flatnonzero(labels == 9)[:40], np.flatnonzero(labels == 3)[-40:]])
    items = torch.from_numpy(images[pick]).float()[:, None] / 255
    scores = run.score(items, method="elbo")
    assert scores.shape == (80,) and np.isfinite(scores).all()
    assert scores[:40].mean() > scores[40:].mean()
    assert np.array_equal(scores, run.score(items, method="elbo"))  # seeded: the same twice


# ROC AUC measured on this fixture's run (seed 0, FiLM conditioning): elbo 0.872, complexity 0.864,
# posterior 0.941, ratio 0.853 (with the background's power fitted; 0.569 at power 1), ratio+knn
# 0.751 (knn alone 0.524: on this small model, latent 8 and width 16, the unseen 9s land among the
# training codes, as at 28x28 in the README). The bounds leave room for the noise of one short training.
CORRECTED_AUC = {"complexity": 0.82, "posterior": 0.88, "ratio": 0.80, "ratio+knn": 0.70}


@pytest.mark.parametrize("method", sorted(CORRECTED_AUC))
def test_corrected_scores_through_the_cli(no_nines, workdir, tmp_path, method):
    out = tmp_path / "scores.csv"
    result = gen("score", "builtin:digits", "-r", no_nines, "--anomaly-class", "9", "--exclude-training",
                 "--method", method, "-o", out, cwd=workdir)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0])[:2] == ["input", "score"] and len(rows) == 342  # the held-out normals and all nines
    auc = float(result.stderr.split("ROC AUC ")[1].split(";")[0])
    assert auc > CORRECTED_AUC[method], auc


def test_images_default_to_the_ratio_score(no_nines, workdir, tmp_path):
    result = gen("score", "builtin:digits", "-r", no_nines, "--anomaly-class", "9", "--exclude-training", "--json",
                 "-o", tmp_path / "s.csv", cwd=workdir)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["method"] == "ratio"  # ratio+knn won at 8x8 but did not hold at 28x28: see the README
    assert report["roc_auc"] > CORRECTED_AUC["ratio"]


def test_knn_is_the_distance_to_the_nearest_training_code(no_nines):
    import numpy as np
    import torch

    from gencore import load_run, scoring
    from gencore.training.data import heldout, reload

    run = load_run(no_nines, device="cpu")
    data = reload(run.config, run.domain)
    train = torch.ones(data.items.shape[0], dtype=torch.bool)
    train[torch.tensor(run.config["split"]["val_indices"], dtype=torch.long)] = False
    seen = scoring.score_many(run, data.items[train][:50], ["knn"])["knn"]
    held = heldout(run.config, data).items
    fresh = scoring.score_many(run, held, ["knn"])["knn"]
    assert np.allclose(seen, 0, atol=1e-4)  # a training item is its own nearest neighbour
    assert (fresh > 1e-3).all()
    # the nearest class's distance: no larger than the distance under any one class
    assert (scoring.score_many(run, held, ["knn"], cls="3")["knn"] >= fresh - 1e-9).all()


def test_a_sum_of_scores_is_standardised_on_the_held_out_items(no_nines):
    import numpy as np

    from gencore import load_run, scoring
    from gencore.training.data import heldout, reload

    run = load_run(no_nines, device="cpu")
    held = heldout(run.config, reload(run.config, run.domain)).items
    scores = scoring.score_many(run, held, ["ratio", "knn", "ratio+knn"])
    standardised = sum((scores[m] - scores[m].mean()) / scores[m].std() for m in ("ratio", "knn"))
    assert np.allclose(scores["ratio+knn"], standardised)


def test_complexity_takes_out_what_compressed_length_explains(no_nines):
    import numpy as np

    from gencore import load_run, scoring
    from gencore.scoring_corrected import compressed_nats
    from gencore.training.data import heldout, reload

    run = load_run(no_nines, device="cpu")
    held = heldout(run.config, reload(run.config, run.domain)).items
    lengths = compressed_nats(held, "bernoulli")
    scores = scoring.score_many(run, held, ["elbo", "complexity"])
    # the line is fitted on these very items: the residual has mean 0 and no linear trace of length
    assert abs(scores["complexity"].mean()) < 1e-6 * np.abs(scores["elbo"]).mean()
    assert abs(np.corrcoef(scores["complexity"], lengths)[0, 1]) < 1e-6
    assert abs(np.corrcoef(scores["elbo"], lengths)[0, 1]) > 0.1  # which the ELBO alone carries (0.157 measured)


def test_ratio_takes_out_what_the_background_model_explains(no_nines):
    import numpy as np

    from gencore import load_run, scoring
    from gencore.training.data import heldout, reload

    run = load_run(no_nines, device="cpu")
    held = heldout(run.config, reload(run.config, run.domain)).items
    scores = scoring.score_many(run, held, ["elbo", "ratio"])
    background = scoring._background(run).nll(held)
    # the fitted power of the background: its line on these held-out normals is taken out
    assert abs(scores["ratio"].mean()) < 1e-6 * np.abs(scores["elbo"]).mean()
    assert abs(np.corrcoef(scores["ratio"], background)[0, 1]) < 1e-6
    assert np.corrcoef(scores["elbo"], background)[0, 1] > 0.15  # which the ELBO alone carries (0.266 measured)


def test_background_model_knows_local_statistics():
    import numpy as np
    import torch

    from gencore.scoring_corrected import Background

    generator = torch.Generator().manual_seed(0)
    smooth = torch.linspace(0, 1, 8).repeat(200, 1, 8, 1) * torch.rand(200, 1, 1, 1, generator=generator)
    model = Background(smooth, "bernoulli")
    noise = torch.rand(20, 1, 8, 8, generator=generator)
    assert model.nll(noise).mean() > model.nll(smooth[:20]).mean() + 5  # nats per item
    assert np.allclose(model.nll(noise, batch=7), model.nll(noise))  # batched to bound memory
    table = torch.randn(300, 3, generator=generator) @ torch.tensor([[1.0, 0.9, 0.0], [0.0, 0.4, 0.0], [0, 0, 1]])
    gaussian = Background(table, "gaussian")
    swapped = table[:50].clone()
    swapped[:, 1] = -swapped[:, 1]  # breaks the correlation of the first two columns, not their spread
    assert gaussian.nll(swapped).mean() > gaussian.nll(table[:50]).mean() + 1


def test_methods_share_one_pass_and_stay_seeded(no_nines):
    import numpy as np
    import torch

    from conftest import digits_array
    from gencore import load_run, scoring

    run = load_run(no_nines, device="cpu")
    images, _ = digits_array()
    items = torch.from_numpy(images[:60]).float()[:, None] / 255
    methods = ["elbo", "complexity", "ratio", "posterior", "kl", "knn", "ratio+knn"]
    together = scoring.score_many(run, items, methods, seed=3)
    for method in methods:
        assert np.allclose(together[method], scoring.score(run, items, method, seed=3)), method
    # complexity and ratio take a correction off the same ELBO; posterior is -log of a probability
    assert not np.allclose(together["complexity"], together["elbo"])
    assert (together["posterior"] >= -1e-9).all() and (together["posterior"] <= np.log(9) + 1e-9).all()


def test_corrected_scores_bad_input(no_nines, tiny_runs, workdir, tmp_path):
    assert_one_line_error(gen("score", "builtin:digits", "-r", no_nines, "--method", "posterior", "--class", "3",
                              cwd=tmp_path), "--method", "posterior")
    assert_one_line_error(gen("score", "builtin:digits", "-r", tiny_runs["ae"], "--method", "posterior",
                              "--class", "1", cwd=tmp_path), "--method")
    assert not (tmp_path / "scores.csv").exists()
