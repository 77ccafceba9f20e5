#!/usr/bin/env python3
"""Train the pretrained runs that ship under assets/pretrained/<name>/, measure them with their
domain's own metrics, and write each one's model card (card.json and MODEL_CARD.md).

    python scripts/train_pretrained.py digits            # ~1 min on 2 CPU cores
    python scripts/train_pretrained.py smb               # the real SMB corpus (builtin:smb)
    python scripts/train_pretrained.py chorales          # ~5 min on 2 idle cores, far longer under load
    python scripts/train_pretrained.py digits --measure-only   # re-measure the shipped run, rewrite its card

A shipped run holds what sampling, latent maps, `gen eval` and `gen score` need (config.json, the
encoder and decoder weights, metrics.jsonl, complete.json and the PNGs), not the train
checkpoints, nor model.safetensors (the encoder and decoder again; gencore puts the model together). The denoiser (`pretrained:denoiser`) has its own script, scripts/train_denoiser.py.
Leave the checkout alone while it trains: gencore imports some modules lazily, late in training,
and a checkout changed under a running training can stop it at the end.
The tests (tests/test_pretrained.py) measure the shipped runs with `measure` below.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHELF = ROOT / "assets" / "pretrained"
SEED = 0
KEEP = ("config.json", "encoder.safetensors", "decoder.safetensors", "metrics.jsonl",
        "complete.json", "samples.png", "loss.png", "decoding_rules.json")

RECIPES = {
    "digits": {
        "domain": "images", "train": ["train", "images"],
        "data": "scikit-learn's bundled copy of the UCI Optical Recognition of Handwritten Digits test set: "
                "1,797 real 8x8 gray-level digits (builtin:digits)",
        "licence": "data: BSD-3-Clause via scikit-learn (UCI, CC BY 4.0); weights: MIT, trained by the gen developers",
        "try": "gen sample -r pretrained:digits --class 7 --n 16",
    },
    "smb": {
        "domain": "levels", "train": ["train", "levels", "--data", "builtin:smb"],
        "data": "the Super Mario Bros levels of the Video Game Level Corpus (builtin:smb, TheVGLC, MIT)",
        "licence": "data: MIT (TheVGLC); weights: MIT, trained by the gen developers",
        "try": "gen sample -r pretrained:smb --class coin --n 4 --width 150 --playable",
        "attributes": ["attributes"],  # ships its directions: `gen attributes -r pretrained:smb` lists them
    },
    "chorales": {
        # 16 epochs, not the default 43: on the shared 2-core machine of its session an epoch took
        # about 3 minutes, and the default run keeps its best epoch near the 20th anyway
        "domain": "midi", "train": ["train", "midi", "--epochs", "16"],
        "data": "the Bach chorales of music21's corpus, transposed to tonic C, 4-bar windows labelled major or "
                "minor by key analysis",
        "licence": "data: public-domain compositions, encodings from music21's corpus (BSD-3-Clause); weights: MIT, "
                   "trained by the gen developers",
        "try": "gen sample -r pretrained:chorales --class minor --n 4",
        # `gen attributes` never writes into a shipped run, so the run is shipped with its directions
        "attributes": ["attributes", "--n", "200"],
        # one sample per class stores the calibrated decoding rules beside the decoder, so a user's
        # first `gen sample` skips the calibration (plugins/midi/rule_cache.py)
        "prepare": [["sample", "--class", "major", "--n", "1"], ["sample", "--class", "minor", "--n", "1"]],
    },
}


# -- measuring: one function per domain, shared with tests/test_pretrained.py -------------------------
def measure_digits(run_dir: Path, per_class: int = 100, seed: int = SEED) -> dict:
    """Class control (an RBF SVM judge trained on the real digits) and diversity of `per_class`
    samples of each digit."""
    from gencore import load_run
    from gencore_images.metrics import compute

    run = load_run(run_dir, device="cpu")
    samples, _, cond = run.sample_with_labels(per_class, run.class_names, seed=seed)
    reference = run.domain.load(None, {})
    found = compute(samples, cond, reference, seed)
    return {key: round(found[key], 4) for key in ("class_control", "judge_accuracy", "diversity_ratio")}


def measure_chorales(run_dir: Path, reference: dict | None = None, per_class: int = 64, seed: int = SEED) -> dict:
    """The 7 MusPy-style statistics of `per_class` samples of each class against the training
    windows' 10th-90th percentiles. With `reference` (a card's), no corpus is loaded."""
    from gencore import load_run
    from gencore_midi.metrics import STATS, analyse_keys, window_stats
    from gencore_midi.sampling import window_spec

    run = load_run(run_dir, device="cpu")
    spec = window_spec(run.config["data"])
    samples, labels = [], []
    for name in run.class_names:
        items, _, _ = run.sample_with_labels(per_class, name, seed=seed, options={})
        samples.append(items.numpy().astype(np.uint8))
        labels += [name] * per_class
    rolls = np.concatenate(samples)
    if reference is None:
        reference = chorale_reference(run)
    stats = window_stats(rolls, spec)
    table = {}
    for name in STATS:
        values = stats[name][np.isfinite(stats[name])]
        mean = float(values.mean()) if len(values) else float("nan")
        low, high = reference[name]["p10"], reference[name]["p90"]
        table[name] = {"samples": round(mean, 4), "p10": low, "p90": high, "inside": bool(low <= mean <= high)}
    _, modes = analyse_keys(rolls, spec.low, spec.pitch_rows)
    want = np.array([0 if name == "major" else 1 for name in labels])
    return {"statistics": table, "inside": sum(row["inside"] for row in table.values()),
            "mode_control": round(float((modes == want).mean()), 4), "samples_per_class": per_class}


def chorale_reference(run) -> dict:
    """The training windows' mean and 10th/90th percentiles of each statistic (loads the corpus)."""
    from gencore_midi.metrics import STATS, window_stats
    from gencore_midi.sampling import window_spec

    config = run.config
    data = run.domain.load(None, config["data"]["options"])
    train = np.ones(data.items.shape[0], dtype=bool)
    train[config["split"]["val_indices"]] = False
    stats = window_stats(data.items.numpy().astype(np.uint8)[train], window_spec(config["data"]))
    out = {}
    for name in STATS:
        values = stats[name][np.isfinite(stats[name])]
        p10, p90 = np.percentile(values, [10, 90])
        out[name] = {"mean": round(float(values.mean()), 4), "p10": round(float(p10), 4), "p90": round(float(p90), 4)}
    return out


def measure_smb(run_dir: Path, raw: int = 40, levels: int = 8, width: int = 150, seed: int = SEED) -> dict:
    """Structural validity (the issue-22 malformed-cell rules) and playability (the small-Mario
    checker) of raw windows and of `levels` full-length coin levels, both made exactly as
    `gen sample` makes them: raw windows with no --class, levels as the first command does
    (`gen sample --class coin --width 150 --playable`)."""
    from gencore import load_run
    from gencore_levels import structure
    from gencore_levels.playability import Physics, check

    meta = load_run(run_dir, device="cpu").config["data"]["meta"]
    physics, idx, tiles = Physics.from_meta(meta), structure.indices(meta), meta["tiles"]

    def sampled(*args: str) -> list[np.ndarray]:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "gencore", "-q", "--seed", str(seed), "sample", "-r", str(run_dir),
                            *args, "-o", tmp], check=True)
            texts = [p.read_text().splitlines() for p in sorted(Path(tmp).glob("*-[0-9]*.txt"))]
        return [np.array([[tiles.index(ch) for ch in row] for row in text], dtype=np.uint8) for text in texts]

    windows = sampled("--n", str(raw))
    grids = sampled("--class", "coin", "--n", str(levels), "--width", str(width), "--playable")
    whole = [int(structure.malformed(g[None], idx)[0]) == 0 for g in windows]
    whole_levels = [int(structure.malformed(g[None], idx)[0]) == 0 for g in grids]
    return {
        "raw_windows": len(windows),
        "raw_structure_valid": round(float(np.mean(whole)), 4),
        "raw_playable": round(float(np.mean([check(w, physics).passed for w in windows])), 4),
        "levels": len(grids), "level_width": int(grids[0].shape[1]) if grids else 0,
        "levels_playable": round(float(np.mean([check(g, physics).passed for g in grids])), 4),
        "levels_structure_valid": round(float(np.mean(whole_levels)), 4),
    }


def measure(name: str, run_dir: Path, card: dict | None = None) -> dict:
    if name == "digits":
        return measure_digits(run_dir)
    if name == "smb":
        return measure_smb(run_dir)
    return measure_chorales(run_dir, (card or {}).get("reference_percentiles"))


# -- training -------------------------------------------------------------------------------------------
def train(name: str, out: Path, threads: int | None) -> dict:
    recipe = RECIPES[name]
    flags = ["--seed", str(SEED)] + (["--threads", str(threads)] if threads else [])
    command = ["gen", *flags, *recipe["train"]]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_start = round(os.getloadavg()[0], 1)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gencore", *command[1:], "-o", str(out)], check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"command": " ".join(command), "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
            "load_average": {"start": load_start, "end": round(os.getloadavg()[0], 1)}}


def fit_attributes(name: str, run: Path, threads: int | None) -> str | None:
    """`gen attributes` on the trained run before it ships (directions and the mixture prior go
    into its decoder.safetensors); the response table it prints, or None for recipes without."""
    fit = RECIPES[name].get("attributes")
    if not fit:
        return None
    flags = ["--seed", str(SEED)] + (["--threads", str(threads)] if threads else [])
    command = [sys.executable, "-m", "gencore", *flags, *fit, "-r", str(run)]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def prepare(name: str, run: Path) -> None:
    """The recipe's `prepare` commands on the trained run, for what they store in its folder."""
    for args in RECIPES[name].get("prepare", []):
        with tempfile.TemporaryDirectory() as out:
            subprocess.run([sys.executable, "-m", "gencore", "-q", "--seed", str(SEED), *args, "-r", str(run),
                            "-o", out], check=True, capture_output=True)


def install(run: Path, target: Path) -> None:
    staging = target.with_name(f".{target.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for filename in KEEP:
        if (run / filename).is_file():
            shutil.copy2(run / filename, staging / filename)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)


def write_card(name: str, target: Path, training: dict, metrics: dict, reference: dict | None,
               attributes: str | None = None) -> dict:
    import torch

    import gencore

    recipe = RECIPES[name]
    config = json.loads((target / "config.json").read_text())
    final = json.loads((target / "complete.json").read_text()).get("metrics", {})
    card = {
        "name": name, "run": f"pretrained:{name}", "domain": recipe["domain"], "arch": config["arch"],
        "classes": config.get("class_names", []), "data": recipe["data"], "licence": recipe["licence"],
        "script": f"python scripts/train_pretrained.py {name}", "seed": SEED, **training,
        "trained_on": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}, "
                      f"gencore {gencore.__version__}, {time.strftime('%Y-%m-%d')}",
        "training_final": {k: v for k, v in final.items() if isinstance(v, (int, float))},
        "metrics": metrics, "try": recipe["try"],
    }
    if reference is not None:
        card["reference_percentiles"] = reference
    if attributes is not None:
        card["attributes"] = {"command": "gen --seed 0 " + " ".join(RECIPES[name]["attributes"]), "response": attributes}
    (target / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (target / "MODEL_CARD.md").write_text(model_card_markdown(card))
    return card


def _load_text(load: dict) -> str:
    return ", ".join(f"{value} at the {when}" for when, value in load.items())


def model_card_markdown(card: dict) -> str:
    lines = [f"# pretrained:{card['name']}", "",
             f"A `{card['arch']}` run of the `{card['domain']}` domain, shipped with gencore. Try it:", "",
             f"    {card['try']}", "",
             "| | |", "|---|---|",
             f"| data | {card['data']} |", f"| licence | {card['licence']} |",
             f"| classes | {', '.join(card['classes']) or 'unconditional'} |",
             f"| made by | `{card['script']}`, which runs `{card['command']}` |",
             f"| seed | {card['seed']} |",
             f"| training time | {card['wall_seconds']:.0f} s wall, {card['cpu_seconds']:.0f} s CPU; 1-minute load "
             f"average {_load_text(card['load_average'])} (a shared machine) |",
             f"| trained on | {card['trained_on']} |", "", "## Measured", ""]
    metrics = card["metrics"]
    if "statistics" in metrics:
        lines += ["| statistic | samples: mean | training windows: p10 | p90 | inside |", "|---|---|---|---|---|"]
        for stat, row in metrics["statistics"].items():
            lines.append(f"| {stat} | {row['samples']:.3g} | {row['p10']:.3g} | {row['p90']:.3g} | "
                         f"{'yes' if row['inside'] else 'no'} |")
        lines += ["", f"{metrics['inside']} of {len(metrics['statistics'])} statistics inside; mode control "
                      f"{metrics['mode_control']:.2f} ({metrics['samples_per_class']} samples per class, seed {SEED})."]
    else:
        lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in metrics.items()]
    if "attributes" in card:
        lines += ["", f"Attribute directions for `gen sample --attr NAME=SHIFT`, fitted by `{card['attributes']['command']}` "
                      "before shipping (mean attribute of 200 samples at each shift):", "",
                  "```", card["attributes"]["response"].rstrip(), "```"]
    lines += ["", "The validation figures of the training run are in `complete.json` and `metrics.jsonl`.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument("--threads", type=int, help="CPU threads for training (default: gen's own choice)")
    parser.add_argument("--measure-only", action="store_true", help="re-measure the shipped run and rewrite its card")
    parser.add_argument("--work", type=Path, help="train into this folder and keep it (default: a temporary folder)")
    args = parser.parse_args()
    target = SHELF / args.name
    if args.measure_only:
        card = json.loads((target / "card.json").read_text())
        card["metrics"] = measure(args.name, target, card)
        training = {k: card[k] for k in ("command", "wall_seconds", "cpu_seconds", "load_average")}
        attributes = (card.get("attributes") or {}).get("response")
        card = write_card(args.name, target, training, card["metrics"], card.get("reference_percentiles"), attributes)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run = (args.work or Path(tmp)) / args.name
            training = train(args.name, run, args.threads)
            attributes = fit_attributes(args.name, run, args.threads)
            prepare(args.name, run)
            install(run, target)
        reference = None
        if args.name == "chorales":
            from gencore import load_run

            reference = chorale_reference(load_run(target, device="cpu"))
        metrics = measure(args.name, target, {"reference_percentiles": reference})
        card = write_card(args.name, target, training, metrics, reference, attributes)
    print(json.dumps({k: card[k] for k in ("run", "wall_seconds", "cpu_seconds", "metrics")}, indent=2))


if __name__ == "__main__":
    main()
