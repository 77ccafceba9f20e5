"""The midi domain's acceptance figures (issue 4), reproducibly.

    python bench/midi_quality.py                   # train the default run (gen train midi), then measure
    python bench/midi_quality.py --run runs/X      # measure an existing midi run
    python bench/midi_quality.py --run runs/X --json out.json

It generates `--n` samples per class the way `gen sample` does (the domain's generate hook: prior
samples at temperature 1, calibrated thresholds), then compares 7 MusPy-style statistics with the
training windows of the same length: the sample mean against the training windows' mean and
10th-90th percentile range. It reports the mode control (key analysis of the samples against the
class asked for) next to the same judge's accuracy on the run's held-out real windows, and checks
that every exported file opens in mido and music21 and reads back to the same piano roll.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def train_default(out: Path, extra: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gencore", "train", "midi", "-o", str(out), *extra], check=True)
    return time.perf_counter() - start


def measure(run_dir: Path, n: int, seed: int) -> dict:
    import torch

    from gencore import load_run
    from gencore_midi.metrics import STATS, analyse_keys, compare
    from gencore_midi.sampling import export, window_spec

    run = load_run(run_dir, device="cpu")
    config = run.config
    spec = window_spec(config["data"])
    domain = run.domain
    source = config["data"]["source"]
    data = domain.load(None if source == domain.default_data else source, config["data"]["options"])
    val = np.zeros(data.items.shape[0], dtype=bool)
    val[config["split"]["val_indices"]] = True
    real = data.items.numpy().astype(np.uint8)
    labels = data.conditions.argmax(1).numpy() if data.conditions is not None else np.zeros(len(real), int)
    classes = run.class_names or [None]

    samples, sample_labels = [], []
    for k, name in enumerate(classes):
        items, _, _ = run.sample_with_labels(n, name, seed=seed, options={})
        samples.append(items.numpy().astype(np.uint8))
        sample_labels += [k] * n
    samples = np.concatenate(samples)
    sample_labels = np.array(sample_labels)

    table = compare(samples, real[~val], spec)
    per_class = {name: compare(samples[sample_labels == k], real[~val & (labels == k)], spec)
                 for k, name in enumerate(classes) if name is not None}
    report = {"run": str(run_dir), "samples_per_class": n, "train_windows": int((~val).sum()),
              "held_out_windows": int(val.sum()), "table": table, "per_class": per_class,
              "inside": int(sum(table[s]["inside"] for s in STATS if s in table))}
    if sorted(c for c in classes if c) == ["major", "minor"]:
        mode_of = {classes.index("major"): 0, classes.index("minor"): 1}
        want_samples = np.vectorize(mode_of.get)(sample_labels)
        _, found = analyse_keys(samples, spec.low, spec.pitch_rows)
        report["mode_control"] = float((found == want_samples).mean())
        report["mode_control_per_class"] = {c: float((found[sample_labels == k] == mode_of[k]).mean())
                                            for k, c in enumerate(classes)}
        _, judged = analyse_keys(real[val], spec.low, spec.pitch_rows)
        report["judge_accuracy_held_out"] = float((judged == np.vectorize(mode_of.get)(labels[val])).mean())

    # every exported file opens in mido and music21 and reads back to the same roll
    import mido

    music21 = None
    try:
        import music21
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        stems = [f"s{i:03d}" for i in range(len(samples))]
        export(torch.from_numpy(samples.astype(np.float32)), Path(tmp), stems, config["data"], {})
        files = sorted(Path(tmp).glob("*.mid"))
        back, _ = domain.load_files(files, config["data"], {})
        ok_mido = sum(mido.MidiFile(f).type == 1 for f in files)
        ok_m21 = sum(len(music21.converter.parse(str(f)).flatten().notes) > 0 or not samples[i].any()
                     for i, f in enumerate(files)) if music21 else None
        report["files"] = {"written": len(files), "mido": ok_mido, "music21": ok_m21,
                           "round_trip_identical": int(sum((back.numpy()[i] == samples[i]).all()
                                                           for i in range(len(files))))}
    return report


def markdown(report: dict) -> str:
    from gencore_midi.metrics import STATS

    names = {"pitch_range": "pitch range (semitones)", "pitch_classes": "pitch classes used",
             "polyphony": "polyphony (mean simultaneous pitches)", "scale_consistency": "scale consistency",
             "pc_entropy": "pitch-class entropy (bits)", "empty_beat_rate": "empty-beat rate",
             "groove_consistency": "groove consistency", "qualified_note_rate": "qualified-note rate (>= 2 steps)",
             "pitches_used": "pitches used", "density": "sounding cells", "empty_windows": "empty windows"}
    lines = ["| statistic | training windows: mean [p10, p90] | samples: mean | inside |", "|---|---|---|---|"]
    for key, row in report["table"].items():
        spread = f" [{row['train_p10']:.3g}, {row['train_p90']:.3g}]" if "train_p10" in row else ""
        train = f"{row['train']:.3g}{spread}"
        inside = ("yes" if row["inside"] else "no") if "inside" in row else ""
        label = names.get(key, key) + ("" if key in STATS else " (extra)")
        lines.append(f"| {label} | {train} | {row['samples']:.3g} | {inside} |")
    lines.append(f"\n{report['inside']} of 7 statistics inside the training 10th-90th percentile range "
                 f"({report['samples_per_class']} samples per class, {report['train_windows']:,} training windows).")
    if "mode_control" in report:
        per = ", ".join(f"{k} {v:.2f}" for k, v in report["mode_control_per_class"].items())
        lines.append(f"Mode control by key analysis: {report['mode_control']:.2f} ({per}); the same judge on "
                     f"{report['held_out_windows']:,} held-out real windows: {report['judge_accuracy_held_out']:.2f}.")
    f = report["files"]
    lines.append(f"Exported files: {f['written']} written, {f['mido']} open in mido, {f['music21']} parse in music21 "
                 f"with notes, {f['round_trip_identical']} read back to the identical roll.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an existing midi run; default: train `gen train midi` first")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-midi-default"), help="run folder to train into")
    parser.add_argument("--n", type=int, default=16, help="samples per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument("train_args", nargs="*", help="extra `gen train midi` arguments, after --")
    args = parser.parse_args()
    run_dir = args.run
    seconds = None
    if run_dir is None:
        run_dir = args.out
        seconds = train_default(run_dir, args.train_args)
    report = measure(run_dir, args.n, args.seed)
    if seconds is not None:
        report["train_seconds"] = seconds
    print(markdown(report))
    if seconds is not None:
        print(f"Training took {seconds / 60:.1f} min (gen train midi, data conversion excluded if cached).")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
