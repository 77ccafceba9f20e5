"""Would seed ensembles or a smaller network lift gen's tables above IsolationForest? The suite's
7 tables (bench/anomaly_data.py), scored by `elbo`:

- the tabular defaults (latent 16, auto epochs) trained with seeds 0-3, each alone and as ensembles
  (the mean of the members' scores, each standardised on its own run's held-out normal records);
- one smaller network, 64 hidden units instead of 256 (seed 0), and free bits 0 instead of 1;
- IsolationForest (200 trees) with seeds 0-4, to see how much of a gap its own seed explains.

    python bench/anomaly_tables_knobs.py --out knobs                              # trains 42 runs
    python bench/anomaly_tables_knobs.py --out knobs --suite suite --only iris    # reuse the suite's seed-0 runs
    python bench/anomaly_tables_knobs.py --out knobs --summarise                  # the table of the JSON in knobs
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import anomaly_data  # noqa: E402
import anomaly_pyod  # noqa: E402
import anomaly_suite as suite  # noqa: E402

SEEDS = (0, 1, 2, 3)
FOREST_SEEDS = range(5)
VARIANTS = {"hidden 64": {"hidden": 64}, "free bits 0": {"free_bits": 0.0}}


def train_default(folder: Path, train_csv: Path, seed: int, suite_run: Path | None) -> Path:
    if seed == 0 and suite_run is not None and (suite_run / "complete.json").is_file():
        return suite_run
    return suite.train("tabular", str(train_csv), folder / f"seed{seed}", seed, {})[0]


def train_variant(folder: Path, train_csv: Path, name: str, changes: dict) -> Path:
    """A seed-0 run at the tabular defaults but for `changes` (TrainSettings fields; `hidden` has no
    `gen train` option, so this goes through the training pipeline)."""
    from dataclasses import replace

    from gencore.registry import get_domain
    from gencore.training import pipeline
    from gencore.training.settings import TrainSettings

    out = folder / name.replace(" ", "-")
    if not (out / "complete.json").is_file():
        domain = get_domain("tabular")
        settings = replace(TrainSettings(seed=0, checkpoint_every=0), **domain.training_defaults, **changes)
        import torch

        pipeline.start(domain, str(train_csv), {}, settings, out, torch.device("cpu"), None)
    return out


def standardised_elbo(run_dir: Path, test_csv: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The run's elbo scores of the test records, standardised on its held-out normal records; the
    labels; and the run's normalised training and test records (for IsolationForest, as in the suite)."""
    from gencore import scoring
    from gencore.api import load_run
    from gencore.training.data import heldout, reload

    run = load_run(run_dir, device="cpu")
    scored = run.domain.read_scored([str(test_csv)], run.config["data"], None)
    data = reload(run.config, run.domain)
    held = scoring.score(run, heldout(run.config, data).items, "elbo", seed=suite.SEED)
    s = scoring.score(run, scored.items, "elbo", seed=suite.SEED)
    return ((s - held.mean()) / (held.std() or 1.0), scored.anomaly_labels.numpy(), data.items.numpy(),
            scored.items.numpy())


def table_row(t, work: Path, suite_dir: Path | None) -> dict:
    folder = work / t.name
    folder.mkdir(parents=True, exist_ok=True)
    train_csv, test_csv = folder / "train.csv", folder / "test.csv"
    train_csv.write_text(anomaly_data.table_csv(t.header, t.train))
    test_csv.write_text(anomaly_data.table_csv(t.header, t.test, t.labels))
    suite_run = suite_dir / "tables" / t.name / "run-latent=16-epochs=auto" if suite_dir else None
    members, labels, records = [], None, None
    row: dict = {"seeds": {}, "ensembles": {}, "variants": {}, "forest": {}}
    for seed in SEEDS:
        scores, labels, *items = standardised_elbo(train_default(folder, train_csv, seed, suite_run), test_csv)
        records = records or items
        members.append(scores)
        row["seeds"][seed] = suite.metrics(scores, labels)
        row["ensembles"][len(members)] = suite.metrics(np.mean(members, axis=0), labels)
    for name, changes in VARIANTS.items():
        scores, *_ = standardised_elbo(train_variant(folder, train_csv, name, changes), test_csv)
        row["variants"][name] = suite.metrics(scores, labels)
    for seed in FOREST_SEEDS:
        forest = anomaly_pyod.make("IsolationForest", seed, False).fit(records[0])
        row["forest"][seed] = suite.metrics(forest.decision_function(records[1]), labels)
    return row


def show(rows: dict) -> None:
    def auc(cell):
        return cell["roc_auc"]

    print("| table | elbo, seeds 0 / 1 / 2 / 3 | ensemble of 2 / 3 / 4 | hidden 64 | free bits 0 | "
          "IsolationForest, seeds 0-4 (mean) |")
    print("|---|---|---|---|---|---|")
    for name, row in rows.items():
        seeds = " / ".join(f"{auc(row['seeds'][s]):.3f}" for s in row["seeds"])
        ens = " / ".join(f"{auc(row['ensembles'][k]):.3f}" for k in list(row["ensembles"])[1:])
        forest = [auc(c) for c in row["forest"].values()]
        print(f"| {name} | {seeds} | {ens} | {auc(row['variants']['hidden 64']):.3f} | "
              f"{auc(row['variants']['free bits 0']):.3f} | {min(forest):.3f}-{max(forest):.3f} ({np.mean(forest):.3f}) |")
    mean = {k: np.mean([auc(r["seeds"][k]) for r in rows.values()]) for k in next(iter(rows.values()))["seeds"]}
    ens = {k: np.mean([auc(r["ensembles"][k]) for r in rows.values()]) for k in next(iter(rows.values()))["ensembles"]}
    var = {k: np.mean([auc(r["variants"][k]) for r in rows.values()]) for k in VARIANTS}
    forest = np.mean([np.mean([auc(c) for c in r["forest"].values()]) for r in rows.values()])
    print(f"| mean | {' / '.join(f'{v:.3f}' for v in mean.values())} | "
          f"{' / '.join(f'{v:.3f}' for v in list(ens.values())[1:])} | {var['hidden 64']:.3f} | "
          f"{var['free bits 0']:.3f} | ({forest:.3f}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="keep the runs and the JSON here, e.g. --out knobs")
    parser.add_argument("--suite", type=Path, default=None,
                        help="an anomaly_suite.py --out folder whose seed-0 default runs to reuse, e.g. --suite suite")
    parser.add_argument("--only", default=None, help="only these tables, e.g. --only iris,wine")
    parser.add_argument("--summarise", action="store_true", help="print the table of the JSON already in --out")
    args = parser.parse_args()
    if args.summarise:
        show(json.loads((args.out / "anomaly_tables_knobs.json").read_text()))
        return
    from gencore import console

    console.settings.quiet = True
    suite.REUSE = True  # a run already complete under --out is scored again, not retrained
    names = args.only.split(",") if args.only else None
    rows = {}
    for t in anomaly_data.tables():
        if names is None or t.name in names:
            rows[t.name] = table_row(t, args.out, args.suite)
            print(f"  {t.name}: done", flush=True)
    (args.out / "anomaly_tables_knobs.json").write_text(json.dumps(rows, indent=1))
    show(rows)


if __name__ == "__main__":
    main()
