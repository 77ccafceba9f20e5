"""The tabular domain end to end through the CLI: numeric and categorical columns, scores from the
reconstruction and from the encoder alone (also from an encoder-only export), sampling and
reconstruction as tables, built-in data, and one clear line for each kind of bad input."""
import csv
import json

import numpy as np
import pytest

from conftest import assert_one_line_error, gen

HEADER = "duration,bytes,packets,protocol,service,is_anomaly"


def flows(n, seed, anomalies=0, protocols=("tcp", "udp")):
    """Normal flows: bytes ~ 500 x packets; anomalies break that ratio, last long, or use icmp."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        bad = i >= n - anomalies
        packets = int(rng.integers(5, 50))
        ratio = rng.normal(500, 30) if not bad else rng.choice([60.0, 4000.0])
        duration = rng.gamma(2.0, 1.5) * (8 if bad and i % 2 else 1)
        proto = str(rng.choice(protocols, p=[0.7, 0.3])) if not (bad and i % 3 == 0) else "icmp"
        service = "http" if proto == "tcp" and rng.random() < 0.8 else "dns"
        rows.append(f"{duration:.3f},{packets * ratio:.1f},{packets},{proto},{service},{int(bad)}")
    order = rng.permutation(n)
    return HEADER + "\n" + "\n".join(rows[i] for i in order) + "\n"


@pytest.fixture(scope="module")
def tab_work(tmp_path_factory):
    work = tmp_path_factory.mktemp("tabular")
    (work / "train.csv").write_text(flows(420, seed=1, anomalies=20))
    (work / "test.csv").write_text(flows(200, seed=2, anomalies=16))
    return work


@pytest.fixture(scope="module")
def tab_run(tab_work):
    run = tab_work / "run"
    result = gen("train", "tabular", "--data", tab_work / "train.csv", "--categorical", "protocol,service",
                 "--epochs", "20", "--latent", "3", "--checkpoint-every", "0", "-o", run, cwd=tab_work)
    assert result.exit_code == 0, result.stderr
    assert "400 records" in result.stderr and "left out 20 records labelled anomalous" in result.stderr
    norm = json.loads((run / "config.json").read_text())["data"]["normalisation"]
    assert norm["categorical"] == {"protocol": ["tcp", "udp"], "service": ["dns", "http"]}
    assert norm["features"][-4:] == ["protocol=tcp", "protocol=udp", "service=dns", "service=http"]
    return run


def test_plugins_lists_both_anomaly_domains(tab_work):
    result = gen("plugins", cwd=tab_work)
    assert result.exit_code == 0
    for name in ("series", "tabular"):
        assert f"gencore_{name}:plugin" in result.stdout


def test_score_by_reconstruction_and_encoder(tab_run, tab_work):
    out = tab_work / "scored" / "s.csv"
    result = gen("score", tab_work / "test.csv", "-r", tab_run, "--method", "mahalanobis", "--json", "-o", out,
                 cwd=tab_work)
    assert result.exit_code == 0, result.stderr
    assert "never seen in training" in result.stderr  # icmp: encoded as no category, and said so
    summary = json.loads(result.stdout)
    assert summary["inputs"] == 200 and summary["threshold_rule"] == "validation quantile 0.99"
    assert set(summary["by_method"]) == {"recon", "mahalanobis", "kl"}
    for method, figures in summary["by_method"].items():
        assert figures["roc_auc"] > 0.8, (method, figures)
    rows = list(csv.DictReader((tab_work / "scored" / "s-methods.csv").open()))
    assert list(rows[0]) == ["input", "recon", "mahalanobis", "kl", "label"] and len(rows) == 200
    assert rows[0]["input"].endswith("test.csv#1")
    flagged = [r for r in csv.DictReader(out.open()) if r["anomaly"] == "1"]
    assert flagged and np.mean([int(r["label"]) for r in flagged]) >= 0.5  # the base rate is 8%
    assert (tab_work / "scored" / "s.png").stat().st_size > 10_000


def test_encoder_only_export_scores_alone(tab_run, tab_work, tmp_path):
    bundle = tmp_path / "enc"
    result = gen("export", "-r", tab_run, "--part", "encoder", "--format", "safetensors", "-o", bundle, cwd=tab_work)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in bundle.iterdir()) == ["complete.json", "config.json", "encoder.safetensors"]
    scores = {}
    for run, name, method in ((tab_run, "full", ["--method", "kl"]), (bundle, "bundle", [])):
        result = gen("score", tab_work / "test.csv", "-r", run, *method, "--json", "-o",
                     tmp_path / f"{name}.csv", cwd=tab_work)
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["method"] == "kl"  # with no decoder, the default is the encoder's
        scores[name] = [row["score"] for row in json.loads(result.stdout)["scores"]]
    assert scores["bundle"] == scores["full"]
    header = (tmp_path / "bundle-methods.csv").read_text().splitlines()[0]
    assert header == "input,mahalanobis,kl,label"  # no decoder, so no reconstruction error
    assert_one_line_error(gen("score", tab_work / "test.csv", "-r", bundle, "--method", "recon", cwd=tmp_path),
                          "decoder.safetensors")

    onnx = tmp_path / "enc.onnx"
    result = gen("export", "-r", tab_run, "--part", "encoder", "-o", onnx, cwd=tab_work)
    assert result.exit_code == 0, result.stderr
    import onnxruntime as ort

    from gencore.api import load_run

    opened = load_run(tab_run, device="cpu")
    items = opened.domain.read_scored([str(tab_work / "test.csv")], opened.config["data"], None).items
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["mean", "mahalanobis", "kl"]
    _, _, kl = session.run(None, {"items": items.numpy()})
    assert np.allclose(kl, np.array(scores["full"]), rtol=1e-4, atol=1e-4)


def test_sample_and_reconstruct_tables(tab_run, tab_work, tmp_path):
    result = gen("sample", "-r", tab_run, "--n", "5", "-o", tmp_path / "samples", cwd=tab_work)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "samples" / "records.csv").open()))
    assert len(rows) == 5 and list(rows[0]) == ["item", "duration", "bytes", "packets", "protocol", "service"]
    assert {r["protocol"] for r in rows} <= {"tcp", "udp"} and (tmp_path / "samples" / "grid.png").is_file()
    result = gen("reconstruct", "-r", tab_run, tab_work / "test.csv", "-o", tmp_path / "rec", cwd=tab_work)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "rec" / "records.csv").open()))
    assert len(rows) == 200 and rows[0]["item"] == "test-recon#1"


def test_builtin_breast_cancer_split():
    from gencore_tabular.builtin import breast_cancer

    train, test = breast_cancer(False), breast_cancer(True)
    labels = [int(r[-1]) for r in test.rows]
    assert len(train) == 179 and len(test) == 192 and sum(labels) == 14  # 7.3% anomalies, seeded
    assert test.header[-1] == "is_anomaly" and len(train.header) == 30
    assert {tuple(r) for r in train.rows}.isdisjoint({tuple(r[:-1]) for r in test.rows})
    assert breast_cancer(True).rows == test.rows
    fresh = breast_cancer(True, seed=5)  # bench --resplit: another split drawn the same way
    assert len(fresh) == 192 and sum(int(r[-1]) for r in fresh.rows) == 14 and fresh.rows != test.rows


def test_bad_input_is_one_line(tab_run, tab_work, tmp_path, monkeypatch):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text(HEADER + "\n1,2,3,tcp,http,0\n1,2,3,tcp,http\n")
    assert_one_line_error(gen("train", "tabular", "--data", ragged, "--categorical", "protocol,service",
                              cwd=tmp_path), "ragged.csv", "line 3", "ragged")
    train = tab_work / "train.csv"
    assert_one_line_error(gen("train", "tabular", "--data", train, "--categorical", "service", cwd=tmp_path),
                          "train.csv", "'protocol'", "is not a number", "categorical")
    assert_one_line_error(gen("train", "tabular", "--data", train, "--categorical", "proto", cwd=tmp_path),
                          "--categorical", "'proto'")
    assert_one_line_error(gen("train", "tabular", "--data", train, "--columns", "bytes,nope", cwd=tmp_path),
                          "--columns", "'nope'")
    missing = tmp_path / "missing.csv"
    missing.write_text(HEADER + "\n1,,3,tcp,http,0\n")
    assert_one_line_error(gen("score", missing, "-r", tab_run, cwd=tmp_path), "missing.csv", "line 2", "'bytes'")
    assert not (tmp_path / "scores.csv").exists()

    import sklearn.datasets

    def offline(**kwargs):
        raise OSError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(sklearn.datasets, "fetch_kddcup99", offline)
    assert_one_line_error(gen("train", "tabular", "--data", "kddcup99", cwd=tmp_path), "kddcup99",
                          "Network is unreachable", "builtin:breast-cancer")


def test_domain_training_defaults_apply_unless_given(tab_work, tmp_path, monkeypatch):
    from gencore_tabular import TabularDomain

    monkeypatch.setattr(TabularDomain, "training_defaults", {"latent_dim": 5, "epochs": 3, "hidden": 32})
    for name, given in (("plain", []), ("given", ["--latent", "3"])):
        result = gen("train", "tabular", "--data", tab_work / "train.csv", "--categorical", "protocol,service",
                     *given, "--checkpoint-every", "0", "-o", tmp_path / name, cwd=tmp_path)
        assert result.exit_code == 0, result.stderr
        config = json.loads((tmp_path / name / "config.json").read_text())
        assert config["model"]["latent_dim"] == (3 if given else 5)  # what the user gives wins
        assert config["train"]["epochs"] == 3 and config["model"]["hidden"] == 32


def test_default_method_is_the_suites_pick(tab_run, tab_work, tmp_path):
    result = gen("score", tab_work / "test.csv", "-r", tab_run, "--json", "-o", tmp_path / "d.csv", cwd=tab_work)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["method"] == "elbo" and report["roc_auc"] > 0.8  # bench/anomaly_suite.py picked elbo
    assert (tmp_path / "d-methods.csv").read_text().splitlines()[0] == "input,recon,mahalanobis,kl,elbo,label"


def test_latent_scores_need_the_training_data(tab_work, tmp_path):
    data = tmp_path / "train.csv"
    data.write_text((tab_work / "train.csv").read_text())
    run = tmp_path / "run"
    assert gen("train", "tabular", "--data", data, "--categorical", "protocol,service", "--epochs", "2",
               "--checkpoint-every", "0", "-o", run, cwd=tmp_path).exit_code == 0
    result = gen("score", tab_work / "test.csv", "-r", run, "--method", "elbo+knn", "--json", "-o",
                 tmp_path / "k.csv", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["method"] == "elbo+knn"
    data.unlink()  # knn re-encodes the training items; without them, one line and a hint
    for method in ("knn", "elbo+knn"):
        assert_one_line_error(gen("score", tab_work / "test.csv", "-r", run, "--method", method, "-o",
                                  tmp_path / "gone.csv", cwd=tmp_path), "--method", "training data")
    assert not (tmp_path / "gone.csv").exists()
