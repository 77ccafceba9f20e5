"""Latent size for unseen digit classes: the suite's digits parts (bench/anomaly_suite.py) trained
again at other latent sizes, and the (latent, method) pair chosen by leave-one-class-out on 8x8
digits, then judged on 28x28 digits, which took no part in the choice.

    python bench/anomaly_digits_latent.py --out latent --suite suite        # latent 16 from the suite
    python bench/anomaly_digits_latent.py --out latent --summarise          # the tables from the JSON

Each latent size's runs and JSON go to OUT/latentL/ (anomaly_suite.py's layout and JSON, so
`anomaly_suite.py --summarise OUT/latentL` prints its full table); latent 16, the images default,
is read from the suite's --out folder.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import anomaly_suite as suite  # noqa: E402

LATENTS = (8, 16)  # 16 is the images default
DEFAULT_LATENT = 16
CLASSES = [str(k) for k in range(10)]


def measure(out: Path, latent: int, part: str, classes: list[str]) -> None:
    """Train and score one digits part at `latent` for the held-out `classes`, written as
    anomaly_suite.py writes it."""
    from gencore import console

    console.settings.quiet = True
    suite.REUSE = True
    suite.DIGIT_ARGS[part] = [*suite.DIGIT_ARGS[part], "--latent", str(latent)]
    started = time.perf_counter()
    rows = suite.digits_part(out, suite.SEED, False, part, classes)
    report = {"smoke": False, "seed": suite.SEED, "latent": latent,
              "parts": {part: {"tasks": rows, "seconds": time.perf_counter() - started}}}
    (out / f"anomaly_suite-{part}-{'-'.join(classes)}.json").write_text(json.dumps(report, indent=1))


def pairings(folder: Path, part: str) -> dict:
    """{held-out class: {method: {seen class: ROC AUC}}} of one latent size's part."""
    return {k: row["pairs"] for k, row in suite.merged(folder)[part]["tasks"].items()}


def summary(pairs: dict, choice: dict) -> tuple[float, float]:
    """Mean and worst pairing AUC when held-out class k is scored by choice[k] = (latent, method),
    over the held-out classes measured at every latent size."""
    measured = set.intersection(*(set(p) for p in pairs.values()))
    values = [v for k, (latent, method) in choice.items() if k in measured for v in pairs[latent][k][method].values()]
    return float(np.mean(values)), float(min(values))


def show(folders: dict[int, Path]) -> None:
    small = {latent: pairings(f, "digits") for latent, f in folders.items()}
    large = {latent: pairings(f, "digits28") for latent, f in folders.items()}
    options = [(latent, m) for latent in small for m in small[latent][CLASSES[0]]]

    def class_mean(pairs, k, option):
        return float(np.mean(list(pairs[option[0]][k][option[1]].values())))

    measured = sorted(set.intersection(*(set(p) for p in large.values())))
    print(f"28x28 columns over held-out classes {','.join(measured)} (measured at every latent size)")
    print("| latent | method | 8x8 mean | 8x8 worst | 28x28 mean | 28x28 worst |")
    print("|---|---|---|---|---|---|")
    for option in options:
        every = dict.fromkeys(CLASSES, option)
        print(f"| {option[0]} | {option[1]} | " + " | ".join(f"{v:.3f}" for v in (*summary(small, every),
                                                                               *summary(large, every))) + " |")
    picks = {k: max(options, key=lambda o: np.mean([class_mean(small, c, o) for c in CLASSES if c != k]))
             for k in CLASSES}
    default = max(options, key=lambda o: np.mean([class_mean(small, c, o) for c in CLASSES]))
    print("LODO over 8x8 classes (each class judged by the pick made on the other nine): "
          + ", ".join(f"{k}: {p[0]}/{p[1]}" for k, p in picks.items()))
    print("  8x8 LODO mean %.3f, worst %.3f" % summary(small, picks))
    print(f"pick on all ten 8x8 classes: latent {default[0]}, {default[1]}; on 28x28 (confirmation): "
          "mean %.3f, worst %.3f" % summary(large, dict.fromkeys(CLASSES, default)))
    for k in measured:
        print(f"28x28 held-out {k}, mean pairing AUC of ratio (the images default): "
              + ", ".join(f"latent {latent} {class_mean(large, k, (latent, 'ratio')):.3f}" for latent in large))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="runs and JSON per latent size, e.g. --out latent")
    parser.add_argument("--suite", type=Path, default=None,
                        help="the anomaly_suite.py --out folder with the latent-16 digits parts, e.g. --suite suite")
    parser.add_argument("--part", default=None, help="train and score only this part at --latent, e.g. --part digits")
    parser.add_argument("--latent", type=int, default=None, help="with --part: the latent size, e.g. --latent 8")
    parser.add_argument("--classes", default=",".join(CLASSES),
                        help="with --part: the held-out classes to measure, e.g. --classes 3,8")
    parser.add_argument("--summarise", action="store_true", help="print the tables of the JSON already in --out")
    args = parser.parse_args()
    folders = {latent: args.out / f"latent{latent}" for latent in LATENTS}
    if args.suite:
        folders[DEFAULT_LATENT] = args.suite
    if args.part:
        measure(folders[args.latent], args.latent, args.part, args.classes.split(","))
        return
    if not args.summarise:
        for latent, folder in folders.items():
            for part in ("digits", "digits28"):
                if part not in suite.merged(folder):
                    measure(folder, latent, part, CLASSES)
    show(folders)


if __name__ == "__main__":
    main()
