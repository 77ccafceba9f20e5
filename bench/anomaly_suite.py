"""Anomaly detection on data gen never tuned on: 7 tables, 5 series and every unseen digit class,
with defaults chosen by leave-one-dataset-out, against PyOD's detectors on the same splits.

    python bench/anomaly_suite.py                    # everything (see the README for the time)
    python bench/anomaly_suite.py --parts tables     # tables, series, digits, digits28 (comma-separated)
    python bench/anomaly_suite.py --smoke            # tiny and fast, for CI: checks the pipeline only

The datasets ship inside pip packages (bench/anomaly_data.py documents each split and injection).

Protocol. For tables and series, gen trains once per training configuration (latent size x epochs,
at most 3 values per knob), and every score method scores the same trained model. A default
(configuration and method) is judged only on datasets that did not choose it: for each dataset,
the pair with the best mean ROC AUC over the *other* datasets is picked, and its figure on the
left-out dataset is reported ("LODO"). The shipped default is the pair picked on all datasets; its
per-dataset figures ("at default") are therefore in-sample, and shown beside the LODO ones. For
digits, each held-out class is a dataset: gen trains at the images defaults with `--drop-class K`,
and scores every K against the run's held-out items of each seen class (ROC AUC per pairing). The
score method is chosen by LODO over the ten classes on 8x8 digits; 28x28 digits (`--resize 28,28
--epochs 8`) only confirm it.

PyOD's IsolationForest, ECOD, KNN, AutoEncoder and VAE (anomaly_pyod.py) fit on the run's own
normalised training items and score the same items as gen. Series are scored per time step: a step
takes the lowest score of the windows covering it, for gen and for every baseline alike.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import anomaly_data  # noqa: E402
import anomaly_pyod  # noqa: E402
from anomaly_report import show_digits, show_task  # noqa: E402

SEED = 0
GRIDS = {"tables": {"latent": (4, 8, 16), "epochs": (30, None)},
         "series": {"latent": (4, 16), "epochs": (10, 30)}}
SMOKE_GRID = {"latent": (2,), "epochs": (2,)}
METHODS = ("recon", "elbo", "mahalanobis", "kl", "complexity", "ratio", "knn", "elbo+knn", "complexity+knn",
           "ratio+knn")
DIGIT_METHODS = METHODS + ("posterior",)
DIGIT_ARGS = {"digits": [], "digits28": ["--resize", "28,28", "--epochs", "8"]}


def gen(*args: str) -> None:
    """Run a gen command in this process (no start-up cost per call)."""
    import contextlib
    import io

    import typer

    from gencore.cli import app

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr):
            code = typer.main.get_command(app).main(["-q", *map(str, args)], prog_name="gen", standalone_mode=False)
    except SystemExit as exc:
        code = exc.code
    if code not in (0, None):
        raise SystemExit(f"gen {' '.join(map(str, args))} failed:\n{stderr.getvalue()[-2000:]}")


REUSE = False  # --reuse: score runs already trained in --out again (new methods), no retraining


def train(domain: str, data: str, out: Path, seed: int, knobs: dict, extra=()) -> tuple[Path, float]:
    timing = out / "bench_train_seconds.txt"
    if REUSE and (out / "complete.json").is_file():
        return out, float(timing.read_text()) if timing.is_file() else float("nan")
    args = ["train", domain, "--seed", seed, "--checkpoint-every", 0, "-o", out, *extra]
    if data:
        args += ["--data", data]
    if knobs.get("latent") is not None:
        args += ["--latent", knobs["latent"]]
    if knobs.get("epochs") is not None:
        args += ["--epochs", knobs["epochs"]]
    started = time.perf_counter()
    gen(*args)
    seconds = time.perf_counter() - started
    timing.write_text(f"{seconds:.2f}\n")
    return out, seconds


def metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from gencore.scoring import precision_at_k, roc_auc

    return {"roc_auc": roc_auc(scores, labels), "precision_at_k": precision_at_k(scores, labels)}


def config_key(knobs: dict) -> str:
    return ",".join(f"{k}={'auto' if v is None else v}" for k, v in knobs.items())


def grid_configs(grid: dict) -> list[dict]:
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def steps_of(scored, window_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-time-step scores (the lowest of the covering windows) and labels, scored steps only."""
    from gencore_series.report import step_scores

    steps, labels = [], []
    for k, s in enumerate(scored.series):
        mine = scored.window_series == k
        values = step_scores(s, scored.window_starts[mine], window_scores[mine], scored.window)
        keep = ~np.isnan(values)
        steps.append(values[keep])
        labels.append(s.labels[keep])
    return np.concatenate(steps), np.concatenate(labels)


def csv_task(domain: str, name: str, train_csv: str, test_csv: str, work: Path, grid: dict, seed: int,
             smoke: bool) -> dict:
    """Train every configuration, score with every method, and run the baselines on the same items."""
    from gencore import scoring
    from gencore.api import load_run
    from gencore.training.data import reload

    work.mkdir(parents=True, exist_ok=True)
    (work / "train.csv").write_text(train_csv)
    (work / "test.csv").write_text(test_csv)
    results, seconds, opened = {}, {}, None
    for knobs in grid_configs(grid):
        key = config_key(knobs)
        run, seconds[key] = train(domain, str(work / "train.csv"), work / f"run-{key.replace(',', '-')}", seed, knobs)
        opened = load_run(run, device="cpu")
        scored = opened.domain.read_scored([str(work / "test.csv")], opened.config["data"], None)
        labels = scored.anomaly_labels.numpy()
        by_method = scoring.score_many(opened, scored.items, list(METHODS), seed=seed)
        results[key] = {}
        for method, s in by_method.items():
            if domain == "series":
                s, step_labels = steps_of(scored, s)
                results[key][method] = metrics(s, step_labels)
            else:
                results[key][method] = metrics(s, labels)
    train_items = reload(opened.config, opened.domain).items.numpy()
    flat_train = train_items.reshape(len(train_items), -1)
    flat_test = scored.items.numpy().reshape(len(scored.items), -1)
    baselines = {}
    for detector, s in anomaly_pyod.scores(flat_train, flat_test, seed, smoke).items():
        if domain == "series":
            s, step_labels = steps_of(scored, s)
            baselines[detector] = metrics(s, step_labels)
        else:
            baselines[detector] = metrics(s, labels)
    return {"name": name, "train_items": int(len(train_items)), "test_items": int(len(scored.items)),
            "anomalies": int(labels.sum()), "train_seconds": seconds, "gen": results, "baselines": baselines}


def chosen(sets: list, names: list[str] | None, smoke: bool, smoke_default: str) -> list:
    """The datasets named by --only; else all of them, or just `smoke_default` in smoke mode."""
    wanted = names or ([smoke_default] if smoke else None)
    return [d for d in sets if wanted is None or d.name in wanted]


def tables_part(work: Path, seed: int, smoke: bool, names: list[str] | None) -> list[dict]:
    sets = chosen(anomaly_data.tables(), names, smoke, "wine")
    out = []
    for t in sets:
        print(f"  table {t.name}: {len(t.train)} training records, {len(t.test)} scored "
              f"({int(t.labels.sum())} anomalies), {t.train.shape[1]} features", flush=True)
        out.append(csv_task("tabular", t.name, anomaly_data.table_csv(t.header, t.train),
                            anomaly_data.table_csv(t.header, t.test, t.labels), work / "tables" / t.name,
                            SMOKE_GRID if smoke else GRIDS["tables"], seed, smoke))
    return out


def series_part(work: Path, seed: int, smoke: bool, names: list[str] | None) -> list[dict]:
    sets = chosen(anomaly_data.series(), names, smoke, "macro-infl")
    out = []
    for s in sets:
        print(f"  series {s.name}: {len(s.train)} training steps, {len(s.test)} scored steps with "
              f"{len(s.events)} events ({int(s.labels.sum())} anomalous steps)", flush=True)
        out.append(csv_task("series", s.name, anomaly_data.series_csv(s.train),
                            anomaly_data.series_csv(s.test, s.labels), work / "series" / s.name,
                            SMOKE_GRID if smoke else GRIDS["series"], seed, smoke))
    return out


def digits_part(work: Path, seed: int, smoke: bool, part: str, names: list[str] | None) -> dict:
    """Every digit class held out in turn; ROC AUC of that class against each seen class."""
    from gencore import scoring
    from gencore.api import load_run
    from gencore.training.data import heldout, reload

    classes = [int(n) for n in names] if names else ([9] if smoke else list(range(10)))
    extra = ["--epochs", "1", "--width", "8", "--latent", "4", "--limit", "400"] if smoke else DIGIT_ARGS[part]
    rows = {}
    for k in classes:
        run, secs = train("images", "", work / part / f"no{k}", seed, {}, [*extra, "--drop-class", str(k)])
        opened = load_run(run, device="cpu")
        full = opened.domain.load(None, opened.config["data"]["options"])
        unseen = full.items[full.conditions[:, full.class_names.index(str(k))] == 1]
        held = heldout(opened.config, reload(opened.config, opened.domain))
        held_class = np.array([opened.class_names[i] for i in held.conditions.argmax(dim=1).numpy()])
        items = np.concatenate([unseen.numpy(), held.items.numpy()])
        import torch

        by_method = scoring.score_many(opened, torch.from_numpy(items), list(DIGIT_METHODS), seed=seed)
        pairs = {}
        for method, s in by_method.items():
            s_unseen, s_held = s[:len(unseen)], s[len(unseen):]
            pairs[method] = {}
            for j in sorted(set(held_class), key=int):
                normal = s_held[held_class == j]
                labels = np.concatenate([np.ones(len(s_unseen)), np.zeros(len(normal))])
                pairs[method][j] = metrics(np.concatenate([s_unseen, normal]), labels)["roc_auc"]
        rows[str(k)] = {"train_seconds": secs, "unseen_items": int(len(unseen)), "heldout_items": int(len(held_class)),
                        "pairs": pairs}
        best = max(pairs, key=lambda m: np.mean(list(pairs[m].values())))
        print(f"    held out {k}: trained in {secs:.0f} s; mean pairing AUC elbo "
              f"{np.mean(list(pairs['elbo'].values())):.3f}, best {best} {np.mean(list(pairs[best].values())):.3f}",
              flush=True)
    return rows


def run_part(part: str, work: Path, seed: int, smoke: bool, only: list[str] | None):
    if part == "tables":
        return tables_part(work, seed, smoke, only)
    if part == "series":
        return series_part(work, seed, smoke, only)
    if part in DIGIT_ARGS:
        return digits_part(work, seed, smoke, part, only)
    raise SystemExit(f"unknown part {part!r}: use tables, series, digits or digits28")


def merged(folder: Path) -> dict:
    """The parts of every anomaly_suite-*.json in `folder` (runs split over processes), joined."""
    parts: dict = {}
    for path in sorted(folder.glob("anomaly_suite-*.json")):
        for part, block in json.loads(path.read_text())["parts"].items():
            joined = parts.setdefault(part, {"tasks": [] if part not in DIGIT_ARGS else {}, "seconds": 0.0})
            joined["seconds"] += block["seconds"]
            if part in DIGIT_ARGS:
                joined["tasks"].update(block["tasks"])
            else:
                joined["tasks"] += block["tasks"]
    return parts


def show(parts: dict) -> None:
    for part, block in parts.items():
        if part in DIGIT_ARGS:
            show_digits(part, dict(sorted(block["tasks"].items())), chosen_on=parts.get("digits", {}).get("tasks"))
        else:
            show_task(part, block["tasks"])
        print(f"  ({part}: {block['seconds']:.0f} s of wall time in all, summed over processes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny models and few datasets: checks the pipeline only")
    parser.add_argument("--parts", default="tables,series,digits,digits28",
                        help="comma-separated parts: tables, series, digits, digits28, e.g. --parts tables,series")
    parser.add_argument("--only", default=None, help="only these datasets (or held-out digit classes) of the parts, "
                        "to split the suite over processes, e.g. --parts digits --only 0,1,2")
    parser.add_argument("--seed", type=int, default=SEED, help="training and baseline seed, e.g. --seed 1")
    parser.add_argument("--out", type=Path, default=None, help="keep runs and anomaly_suite-*.json here, e.g. --out suite")
    parser.add_argument("--summarise", type=Path, default=None,
                        help="print the tables of every anomaly_suite-*.json in this folder, e.g. --summarise suite")
    parser.add_argument("--reuse", action="store_true",
                        help="score the runs already trained under --out again instead of retraining, e.g. --reuse")
    args = parser.parse_args()
    global REUSE
    REUSE = args.reuse
    if args.summarise:
        show(merged(args.summarise))
        return
    import tempfile

    from gencore import console

    console.settings.quiet = True  # the domains' notes on reloaded data would drown the tables
    only = args.only.split(",") if args.only else None
    parts = args.parts
    if args.smoke and parts == parser.get_default("parts"):
        parts = "tables,series,digits"  # digits28 differs from digits only in size

    with tempfile.TemporaryDirectory(prefix="anomaly-suite-") as scratch:
        work = args.out or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        for part in parts.split(","):
            started = time.perf_counter()
            print(f"{part}:", flush=True)
            tasks = run_part(part, work, args.seed, args.smoke, only)
            tag = f"{part}-{'-'.join(only)}" if only else part
            report = {"smoke": args.smoke, "seed": args.seed, "grids": GRIDS,
                      "parts": {part: {"tasks": tasks, "seconds": time.perf_counter() - started}}}
            (work / f"anomaly_suite-{tag}.json").write_text(json.dumps(report, indent=1))
        show(merged(work))


if __name__ == "__main__":
    main()
