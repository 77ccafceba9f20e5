"""The series domain end to end through the CLI: train on a small CSV, score a CSV with injected
anomalies (per-window and per-step scores, CSV and PNG), sample and reconstruct windows, and one
clear line for each kind of bad input."""
import csv
import json
from datetime import datetime, timedelta

import numpy as np
import pytest

from conftest import assert_one_line_error, gen, gen_subprocess

WINDOW = 24
SPIKE, SHIFT, GAP = (120, 122), (200, 216), (60, 70)  # [start, end) steps of the test series


def write_series(path, steps, seed, anomalies=False, drop_rows=(), labels=True):
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    a = np.sin(2 * np.pi * t / 24) + 0.05 * rng.normal(size=steps)
    b = 2 * np.cos(2 * np.pi * t / 24) + 10 + 0.05 * rng.normal(size=steps)
    truth = np.zeros(steps, dtype=int)
    if anomalies:
        a[SPIKE[0]:SPIKE[1]] += 4.0
        b[SHIFT[0]:SHIFT[1]] += 3.0
        truth[SPIKE[0]:SPIKE[1]] = truth[SHIFT[0]:SHIFT[1]] = 1
    start = datetime(2024, 1, 1)
    lines = ["time,a,b,note" + (",is_anomaly" if labels else "")]
    for i in range(steps):
        if i in drop_rows:
            continue
        cell_a = "" if (not anomalies and i == 100) else f"{a[i]:.5f}"
        cell_b = "NaN" if (not anomalies and i == 101) else f"{b[i]:.5f}"
        stamp = (start + timedelta(hours=int(i))).isoformat(sep=" ")
        lines.append(f"{stamp},{cell_a},{cell_b},text{i % 3}" + (f",{truth[i]}" if labels else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def series_work(tmp_path_factory):
    work = tmp_path_factory.mktemp("series")
    write_series(work / "train.csv", 800, seed=1, drop_rows=(300, 301))
    write_series(work / "test.csv", 300, seed=2, anomalies=True, drop_rows=range(*GAP))
    return work


@pytest.fixture(scope="module")
def series_run(series_work):
    run = series_work / "run"
    result = gen("train", "series", "--data", series_work / "train.csv", "--columns", "a,b", "--window", WINDOW,
                 "--stride", "2", "--epochs", "8", "--lr", "4e-3", "--width", "8", "--latent", "4",
                 "--checkpoint-every", "0", "-o", run, cwd=series_work)
    assert result.exit_code == 0, result.stderr
    assert "interpolated 6 missing values in short gaps" in result.stderr  # 2 dropped rows x 2, 2 empty cells
    config = json.loads((run / "config.json").read_text())
    norm = config["data"]["normalisation"]
    assert norm["columns"] == ["a", "b"] and norm["mean"][1] == pytest.approx(10, abs=0.1)
    return run


def test_score_flags_the_injected_anomalies(series_run, series_work):
    out = series_work / "scored" / "s.csv"
    result = gen("score", series_work / "test.csv", "-r", series_run, "--method", "recon", "--json", "-o", out,
                 cwd=series_work)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["threshold_rule"] == "validation quantile 0.99" and summary["roc_auc"] > 0.8
    windows = list(csv.DictReader(out.open()))
    assert len(windows) == summary["inputs"] == (GAP[0] - WINDOW + 1) + (300 - GAP[1] - WINDOW + 1)
    assert windows[0]["input"].endswith("test.csv@2024-01-01 00:00:00")

    steps = list(csv.DictReader((series_work / "scored" / "s-steps.csv").open()))
    assert len(steps) == summary["time_steps"] == 300
    assert list(steps[0]) == ["series", "time", "a", "b", "score", "anomaly", "a_reconstruction",
                              "b_reconstruction", "label"]
    assert all(steps[i]["score"] == "" and steps[i]["a"] == "" for i in range(*GAP))  # the long gap
    flagged = {i for i, row in enumerate(steps) if row["anomaly"] == "1"}
    for start, end in (SPIKE, SHIFT):  # each injected anomaly is flagged, and flags stay near them
        assert flagged & set(range(start, end)), (start, flagged)
    near = set(range(SPIKE[0] - 3, SPIKE[1] + 3)) | set(range(SHIFT[0] - 3, SHIFT[1] + 3))
    assert len(flagged - near) <= 2, sorted(flagged - near)
    assert summary["step_roc_auc"] > 0.9 and summary["flagged_steps"] == len(flagged)

    from PIL import Image

    with Image.open(series_work / "scored" / "s.png") as image:
        assert image.width >= 1000 and image.height >= 300


def test_labels_file_threshold_and_contamination(series_run, series_work, tmp_path):
    unlabelled = write_series(tmp_path / "plain.csv", 300, seed=2, anomalies=True, labels=False)
    labels = tmp_path / "truth.csv"
    start = datetime(2024, 1, 1)
    labels.write_text("time,is_anomaly\n" + "".join(
        f"{(start + timedelta(hours=i)).isoformat(sep=' ')},1\n" for i in [*range(*SPIKE), *range(*SHIFT)]))
    result = gen("score", unlabelled, "-r", series_run, "--labels", labels, "--contamination", "0.1",
                 "--method", "mahalanobis", "--json", "-o", tmp_path / "s.json", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["threshold_rule"] == "contamination 0.1" and summary["roc_auc"] is not None
    assert summary["flagged"] == pytest.approx(0.1 * summary["inputs"], abs=2)
    assert (tmp_path / "s-steps.csv").is_file() and (tmp_path / "s.png").is_file()
    bad = tmp_path / "bad-truth.csv"
    bad.write_text("time,is_anomaly\n1999-01-01 00:00:00,1\n")
    assert_one_line_error(gen("score", unlabelled, "-r", series_run, "--labels", bad, cwd=tmp_path), "--labels",
                          "1999-01-01")


def test_sample_and_reconstruct_windows(series_run, series_work, tmp_path):
    result = gen("sample", "-r", series_run, "--n", "3", "-o", tmp_path / "samples", cwd=series_work)
    assert result.exit_code == 0, result.stderr
    files = sorted((tmp_path / "samples").glob("*.csv"))
    assert len(files) == 3 and (tmp_path / "samples" / "grid.png").is_file()
    rows = list(csv.DictReader(files[0].open()))
    assert len(rows) == WINDOW and list(rows[0]) == ["step", "a", "b"]
    assert 5 < np.mean([float(r["b"]) for r in rows]) < 15  # back in the series' own units

    result = gen("reconstruct", "-r", series_run, series_work / "test.csv", "-o", tmp_path / "rec", cwd=series_work)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "rec" / "test-recon.csv").open()))
    assert list(rows[0]) == ["window", "step", "a", "b"] and len(rows) == WINDOW * (2 + 9)  # whole tiles
    assert (tmp_path / "rec" / "comparison.png").is_file()


def test_bad_input_is_one_line(series_run, series_work, tmp_path):
    good = (series_work / "train.csv").read_text().splitlines()
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("\n".join(good[:3] + [good[3] + ",extra"] + good[4:]) + "\n")
    assert_one_line_error(gen("train", "series", "--data", ragged, cwd=tmp_path), "ragged.csv", "line 4", "ragged")
    text = tmp_path / "text.csv"
    text.write_text("\n".join(good[:5] + [good[5].replace(good[5].split(",")[1], "abc", 1)] + good[6:]) + "\n")
    assert_one_line_error(gen("train", "series", "--data", text, "--columns", "a,b", cwd=tmp_path),
                          "text.csv", "line 6", "'a'", "'abc' is not a number")
    assert_one_line_error(gen("train", "series", "--data", series_work / "train.csv", "--columns", "a,nope",
                              cwd=tmp_path), "--columns", "'nope'", "train.csv")
    assert_one_line_error(gen("train", "series", "--data", series_work / "train.csv", "--columns", "a",
                              "--time-column", "when", cwd=tmp_path), "--time-column", "'when'")
    assert_one_line_error(gen("train", "series", "--data", series_work / "train.csv", "--columns", "a",
                              "--window", "1000", cwd=tmp_path), "--window", "longer than the series")
    short = write_series(tmp_path / "short.csv", 10, seed=3)
    assert_one_line_error(gen("score", short, "-r", series_run, cwd=tmp_path), "window", "short.csv")
    # a real process: the exit code and the single line, for a file that lacks the run's columns
    (tmp_path / "other.csv").write_text("time,x\n1,2\n2,3\n")
    result = gen_subprocess("score", tmp_path / "other.csv", "-r", series_run, "-o", tmp_path / "o.csv",
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith("gen: error:")
    assert "'a'" in result.stderr and "Traceback" not in result.stderr and not (tmp_path / "o.csv").exists()


def test_training_leaves_out_windows_with_labelled_anomalies(series_work, tmp_path):
    from gencore.registry import get_domain

    domain = get_domain("series")
    options = {"columns": "a,b", "window": WINDOW, "stride": 1}
    plain = domain.load(str(series_work / "train.csv"), options)
    assert plain.items.shape == (800 - WINDOW + 1, 2, WINDOW) and plain.item_kind == "seq1d"
    labels = tmp_path / "labels.csv"
    labels.write_text("time,is_anomaly\n2024-01-02 00:00:00,1\n")  # step 24
    fewer = domain.load(str(series_work / "train.csv"), {**options, "label_file": str(labels)})
    assert plain.items.shape[0] - fewer.items.shape[0] == WINDOW  # every window through step 24
    strict = domain.load(str(series_work / "train.csv"), {**options, "max_gap": 0})
    assert strict.items.shape[0] < plain.items.shape[0]  # gaps no longer filled: no window crosses them


def test_default_window_fits_short_series(series_work, tmp_path):
    from gencore.registry import get_domain

    domain = get_domain("series")
    assert domain.load(str(series_work / "train.csv"), {"columns": "a,b"}).items.shape[-1] == 800 // 16
    write_series(tmp_path / "short.csv", 120, seed=4)
    assert domain.load(str(tmp_path / "short.csv"), {"columns": "a,b"}).items.shape[-1] == 16  # the floor
    assert domain.load(str(tmp_path / "short.csv"), {"columns": "a,b", "window": 10}).items.shape[-1] == 10


def test_default_method_is_the_suites_pick(series_run, series_work, tmp_path):
    from gencore.registry import get_domain

    assert get_domain("series").training_defaults == {"latent_dim": 4, "epochs": 10}  # bench/anomaly_suite.py
    result = gen("score", series_work / "test.csv", "-r", series_run, "--json", "-o", tmp_path / "d.csv",
                 cwd=series_work)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["method"] == "complexity" and report["step_roc_auc"] > 0.64  # 0.694 measured
