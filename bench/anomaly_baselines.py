"""Anomaly detection: gen's score methods against IsolationForest and a PyOD-style autoencoder, on
the built-in series and tabular demos, on the same seeded splits, in one run.

    python bench/anomaly_baselines.py            # the full comparison (a few minutes on 2 CPU cores)
    python bench/anomaly_baselines.py --smoke    # tiny and fast, for CI: checks the pipeline only
    python bench/anomaly_baselines.py --domains tabular --seeds 0,1,2,3,4    # spread over seeds
    python bench/anomaly_baselines.py --domains tabular --seeds 5,6,7,8,9 --resplit    # fresh test sets

The seeds vary gen's training and the baselines' randomness; the built-in test set is one fixed
split. `--resplit` draws, per seed, a fresh split of breast cancer the built-in way (other benign
halves, other 14 malignant records), written as CSVs, so that the seeds vary the test set too.

gen trains through its own CLI (`gen train`, timed, run in this process) and scores with
`gen score --method M`. The
baselines see exactly the items gen sees: the run's training items (reloaded as gen prepared them,
with the run's normalisation) and the scored test items. Series are compared per window and per
time step (a step takes the lowest score of the windows covering it, as `gen score` does).

- IsolationForest: scikit-learn, 200 trees, on the flattened windows / feature vectors.
- PyOD-style AE: PyOD's AutoEncoder defaults (MLP 64-32-64, batch norm, dropout 0.2, Adam 1e-3,
  batch 32, score = Euclidean reconstruction error), with 50 epochs instead of 10 so that it
  converges; PyOD's own AutoEncoder joins when the package is installed.

Metrics: ROC AUC, and precision at k (the share of true anomalies among the k highest scores, k the
number of true anomalies). Results go to stdout and to OUT/anomaly_baselines.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METHODS = ("recon", "elbo", "mahalanobis", "kl")
FULL = {
    "series": ["--window", "64", "--stride", "2", "--epochs", "30", "--width", "16", "--latent", "8"],
    "tabular": [],  # the domain's defaults
}
SMOKE = {
    "series": ["--window", "32", "--stride", "16", "--epochs", "1", "--width", "8", "--latent", "2"],
    "tabular": ["--epochs", "2", "--width", "8", "--latent", "2"],
}
DEMOS = {"series": ("builtin:membrane", "builtin:membrane-test"),
         "tabular": ("builtin:breast-cancer", "builtin:breast-cancer-test")}


def gen(*args: str, cwd: Path) -> str:
    """Run a gen command in this process (no start-up cost per call); returns its stdout."""
    import contextlib
    import io
    import os

    import typer

    from gencore.cli import app

    stdout, stderr = io.StringIO(), io.StringIO()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = typer.main.get_command(app).main(list(args), prog_name="gen", standalone_mode=False)
    except SystemExit as exc:
        code = exc.code
    finally:
        os.chdir(old)
    if code not in (0, None):
        raise SystemExit(f"gen {' '.join(args)} failed:\n{stderr.getvalue()}")
    return stdout.getvalue()


def precision_at_k(scores: np.ndarray, labels: np.ndarray) -> float:
    k = int(labels.sum())
    return float(labels[np.argsort(-scores, kind="stable")[:k]].mean())


def metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    return {"roc_auc": float(roc_auc_score(labels, scores)), "precision_at_k": precision_at_k(scores, labels)}


def isolation_forest(train: np.ndarray, test: np.ndarray, seed: int, trees: int) -> np.ndarray:
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(n_estimators=trees, random_state=seed).fit(train)
    return -forest.score_samples(test)


def pyod_style_autoencoder(train: np.ndarray, test: np.ndarray, seed: int, epochs: int) -> np.ndarray:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    d = train.shape[1]

    def block(i, o):
        return [nn.Linear(i, o), nn.BatchNorm1d(o), nn.ReLU(), nn.Dropout(0.2)]

    model = nn.Sequential(*block(d, 64), *block(64, 32), *block(32, 64), nn.Linear(64, d))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.as_tensor(train, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x), generator=generator).split(32):
            if len(idx) < 2:
                continue
            loss = (model(x[idx]) - x[idx]).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        t = torch.as_tensor(test, dtype=torch.float32)
        return (model(t) - t).pow(2).sum(dim=1).sqrt().numpy()


def pyod_autoencoder(train: np.ndarray, test: np.ndarray) -> np.ndarray | str:
    try:
        from pyod.models.auto_encoder import AutoEncoder
    except ImportError:
        return "PyOD not installed"
    try:
        return np.asarray(AutoEncoder().fit(train).decision_function(test), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - report, never abort the comparison
        return f"PyOD failed: {type(exc).__name__}: {exc}"


def prepared(run: Path, test_source: str):
    """The run's own training items and the scored test items, as numpy arrays, plus the scored data."""
    from gencore.api import load_run
    from gencore.training.data import reload

    opened = load_run(run, device="cpu")
    train = reload(opened.config, opened.domain).items.numpy()
    scored = opened.domain.read_scored([test_source], opened.config["data"], None)
    return train, scored


def per_step(scored, window_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from gencore_series.report import step_scores

    steps, labels = [], []
    for k, s in enumerate(scored.series):
        mine = scored.window_series == k
        values = step_scores(s, scored.window_starts[mine], window_scores[mine], scored.window)
        keep = ~np.isnan(values)
        steps.append(values[keep])
        labels.append(s.labels[keep])
    return np.concatenate(steps), np.concatenate(labels)


def fresh_split(work: Path, seed: int) -> tuple[str, str]:
    """Breast cancer split the built-in way with another seed, as train and test CSVs in `work`."""
    from gencore_csv.table import csv_text
    from gencore_tabular.builtin import breast_cancer

    paths = []
    for test in (False, True):
        table = breast_cancer(test, seed)
        path = work / f"breast-cancer-split{seed}{'-test' if test else ''}.csv"
        path.write_text(csv_text(table.header, table.rows))
        paths.append(str(path))
    return paths[0], paths[1]


def run_domain(domain: str, work: Path, smoke: bool, seed: int, resplit: bool = False) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    train_source, test_source = fresh_split(work, seed) if resplit and domain == "tabular" else DEMOS[domain]
    run = work / f"{domain}-run"
    args = (SMOKE if smoke else FULL)[domain]
    started = time.perf_counter()
    gen("train", domain, "--data", train_source, *args, "--seed", str(seed), "--checkpoint-every", "0",
        "-o", str(run), cwd=work)
    train_s = time.perf_counter() - started
    rows: dict[str, dict] = {}
    for method in METHODS[::2] if smoke else METHODS:  # recon and mahalanobis in --smoke
        out = work / f"{domain}-{method}.csv"
        report = json.loads(gen("score", test_source, "-r", str(run), "--method", method, "--seed", str(seed),
                                "--json", "-o", str(out), cwd=work))
        row = {"roc_auc": report["roc_auc"], "precision_at_k": report["precision_at_k"]}
        if domain == "series":
            row.update(step_roc_auc=report["step_roc_auc"], step_precision_at_k=report["step_precision_at_k"])
        rows[f"gen {method}"] = row
    train, scored = prepared(run, test_source)
    labels = scored.anomaly_labels.numpy()
    flat_train, flat_test = train.reshape(len(train), -1), scored.items.numpy().reshape(len(scored.items), -1)
    baselines = {
        "IsolationForest": isolation_forest(flat_train, flat_test, seed, 50 if smoke else 200),
        "PyOD-style AE": pyod_style_autoencoder(flat_train, flat_test, seed, 2 if smoke else 50),
    }
    pyod = pyod_autoencoder(flat_train, flat_test) if not smoke else "skipped in --smoke"
    if isinstance(pyod, np.ndarray):
        baselines["PyOD AutoEncoder"] = pyod
    for name, scores in baselines.items():
        row = metrics(scores, labels)
        if domain == "series":
            step, step_labels = per_step(scored, scores)
            row.update({f"step_{k}": v for k, v in metrics(step, step_labels).items()})
        rows[name] = row
    return {"train": Path(train_source).name, "test": Path(test_source).name, "gen_train_args": args, "gen_train_seconds": train_s,
            "test_items": int(len(labels)), "test_anomalies": int(labels.sum()),
            "pyod": pyod if isinstance(pyod, str) else "used", "results": rows}


def mean_over_seeds(blocks: list[dict]) -> dict:
    """One block whose figures are the means over the seeds' blocks."""
    out = dict(blocks[0], gen_train_seconds=float(np.mean([b["gen_train_seconds"] for b in blocks])))
    if len({b["test"] for b in blocks}) > 1:
        out.update(train="a fresh split per seed", test="its test half")
    out["results"] = {name: {k: float(np.mean([b["results"][name][k] for b in blocks])) for k in row}
                      for name, row in blocks[0]["results"].items()}
    return out


def show(report: dict) -> None:
    for key, block in report["domains"].items():
        domain = key.split()[0]
        unit = "windows" if domain == "series" else "records"
        print(f"\n{key}: train {block['train']}, score {block['test']} ({block['test_items']} {unit}, "
              f"{block['test_anomalies']} anomalous); gen trained in {block['gen_train_seconds']:.1f} s "
              f"({' '.join(block['gen_train_args']) or 'defaults'}); PyOD: {block['pyod']}")
        step = domain == "series"
        print(f"  {'method':18s} {'ROC AUC':>8s} {'P@k':>6s}" + (f" {'step AUC':>9s} {'step P@k':>9s}" if step else ""))
        for name, row in block["results"].items():
            line = f"  {name:18s} {row['roc_auc']:8.3f} {row['precision_at_k']:6.3f}"
            if step:
                line += f" {row['step_roc_auc']:9.3f} {row['step_precision_at_k']:9.3f}"
            print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny models: checks the pipeline, not the figures")
    parser.add_argument("--seeds", default="0", help="training and baseline seeds, comma-separated; with "
                        "several, each seed's figures and their mean are shown, e.g. --seeds 0,1,2")
    parser.add_argument("--out", type=Path, default=None,
                        help="keep the runs, scores, plots and JSON report in this folder (default: a temporary one)")
    parser.add_argument("--domains", default="series,tabular", help="comma-separated: series, tabular")
    parser.add_argument("--resplit", action="store_true", help="tabular: score a fresh split of breast cancer "
                        "per seed instead of the fixed built-in one, e.g. --seeds 5,6,7,8,9 --resplit")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="anomaly-bench-") as scratch:
        work = args.out or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        seeds = [int(x) for x in args.seeds.split(",")]
        report = {"smoke": args.smoke, "seeds": seeds, "resplit": args.resplit, "domains": {}}
        for domain in args.domains.split(","):
            blocks = []
            for seed in seeds:
                blocks.append(run_domain(domain, work / f"seed-{seed}", args.smoke, seed, args.resplit))
                report["domains"][f"{domain} (seed {seed})" if len(seeds) > 1 else domain] = blocks[-1]
            if len(seeds) > 1:
                report["domains"][f"{domain} (mean of seeds {args.seeds})"] = mean_over_seeds(blocks)
        (work / "anomaly_baselines.json").write_text(json.dumps(report, indent=2))
        show(report)
        if args.out:
            print(f"\nwrote {work / 'anomaly_baselines.json'} and the runs, scores and plots beside it")


if __name__ == "__main__":
    main()
