"""The midi domain's acceptance figures (issues 4 and 23), reproducibly.

    python bench/midi_quality.py                   # train the default run (gen train midi), then measure
    python bench/midi_quality.py --corpus ryans    # a bench corpus (bench/midi_corpora.py), at defaults
    python bench/midi_quality.py --run runs/X      # measure an existing midi run
    python bench/midi_quality.py --run runs/X --json out.json

It generates `--n` samples per class the way `gen sample` does (the domain's generate hook: prior
samples at temperature 1, calibrated rules), split over the run's metres as its training windows
are, then compares 7 MusPy-style statistics with the training windows of the same metre: the
sample mean against the training windows' mean and 10th-90th percentile range. It reports the
empty-phrase rate (fewer than 4 notes) of samples and real windows, whether each written file
carries the metre asked for, and class control: a logistic-regression classifier trained on the
real training windows (pitch-class, onset-position and texture features) judges the samples, and
its accuracy on the run's held-out real windows is the ceiling. For major/minor runs it also
reports the key-analysis mode control, and it checks that every exported file opens in mido and
music21 and reads back to the same piano roll.
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
sys.path.insert(0, str(ROOT / "bench"))


def train_default(out: Path, extra: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system of the training process) of `gen train midi`."""
    import resource

    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gencore", "train", "midi", "-o", str(out), *extra], check=True)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def phrase_features(rolls: np.ndarray, meters: list[str], spec) -> np.ndarray:
    """Per window: duration-weighted pitch-class shares (12), onset shares by 16th position in the
    bar (24 bins), notes and sounding cells per step, chord share, mean pitch and range, mean note
    length, and the metre (one-hot over the run's metres)."""
    from gencore_midi.metrics import pitch_class_weights
    from gencore_midi.options import Meter
    from gencore_midi.roll import note_lengths, note_starts

    names = list(spec.meters or ("4/4",))
    out = []
    for roll, meter in zip(rolls, meters):
        m = Meter.of(meter)
        r = roll[None, :2, :spec.pitch_rows, :spec.meter_steps(meter)]
        on, starts = note_starts(r)
        steps = on.shape[-1]
        pcs = pitch_class_weights(r, spec.low, spec.pitch_rows)[0]
        positions = np.nonzero(starts[0])[1] % m.steps_per_bar
        position_hist = np.bincount(np.minimum(positions * 24 // m.steps_per_bar, 23), minlength=24)
        rows = np.nonzero(on[0].any(axis=1))[0]
        voices = on[0].sum(axis=0)
        lengths = note_lengths(on, starts)
        notes = max(1, int(starts.sum()))
        out.append(np.concatenate([
            pcs / max(1.0, pcs.sum()), position_hist / notes,
            [starts.sum() / steps, on.sum() / steps, (voices > 1).sum() / max(1, (voices > 0).sum()),
             rows.mean() / spec.pitch_rows if len(rows) else 0, np.ptp(rows) / spec.pitch_rows if len(rows) else 0,
             lengths.mean() / 16 if len(lengths) else 0],
            np.eye(len(names))[names.index(meter)]]))
    return np.array(out)


def class_judge(real: np.ndarray, real_meters: list[str], labels: np.ndarray, val: np.ndarray, spec, seed: int):
    """A classifier of the class from real phrases: fitted on the training windows; returns it and
    its accuracy on the held-out real windows (the ceiling of class control)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = phrase_features(real, real_meters, spec)
    judge = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=1.0, random_state=seed))
    judge.fit(features[~val], labels[~val])
    return judge, float((judge.predict(features[val]) == labels[val]).mean())


def sample_plan(classes: list, labels: np.ndarray, meters: list[str], train: np.ndarray, n: int) -> list[tuple]:
    """(class index, class name, metre, count): `n` samples per class, split over the metres as the
    class's training windows are (at least one of each metre the class has)."""
    plan = []
    meters_arr = np.array(meters)
    for k, name in enumerate(classes):
        mine = meters_arr[train & (labels == k)]
        names, counts = np.unique(mine, return_counts=True)
        shares = counts / counts.sum()
        sizes = np.maximum(1, np.round(shares * n).astype(int))
        sizes[np.argmax(sizes)] += n - sizes.sum()
        plan += [(k, name, str(m), int(c)) for m, c in zip(names, sizes) if c > 0]
    return plan


def use_prior(run, prior: str) -> None:
    """Sample under `prior` as `gen sample --prior` does; a run without a mixture gets one fitted
    on its training codes first, as `gen attributes` fits it (seed 0; the run is not written)."""
    from gencore.steering import SamplerSettings

    if prior == "gmm" and run.steering.gmm_weights is None:
        from gencore.attribute_fit import fit_all

        run._steering, _, _ = fit_all(run, seed=0)
    run.sampler = SamplerSettings({}, prior) if prior == "gmm" else None


def measure(run_dir: Path, n: int, seed: int, prior: str | None = None) -> dict:
    import torch

    from gencore import load_run
    from gencore_midi.metrics import STATS, analyse_keys, compare
    from gencore_midi.midifile import read_midi
    from gencore_midi.roll import meters_of
    from gencore_midi.sampling import export, window_spec

    run = load_run(run_dir, device="cpu")
    use_prior(run, prior or run.default_prior)
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

    meta = config["data"]["meta"]
    users = list(meta.get("classes") or ([] if meta.get("meter_classes") else (run.class_names or [])))
    classes = users or [None]
    if data.conditions is not None and users:
        labels = data.conditions[:, :len(users)].argmax(1).numpy()
    real_meters = meters_of(real, spec)
    plan = sample_plan(classes, labels, real_meters, ~val, n)
    samples, sample_labels, sample_meters, asked = [], [], [], []
    for k, name, meter, count in plan:
        options = {"meter": meter} if spec.meter_row is not None else {}
        items, _, _ = run.sample_with_labels(count, name, seed=seed + k, options=options)
        samples.append(items.numpy().astype(np.uint8))
        sample_labels += [k] * count
        sample_meters += [meter] * count
        asked.append((name, meter, count))
    samples = np.concatenate(samples)
    sample_labels = np.array(sample_labels)

    train = ~val
    table = compare(samples, real[train], spec, sample_meters, [m for m, t in zip(real_meters, train) if t])
    per_class = {}
    for k, name in enumerate(classes):
        if name is None:
            continue
        mine, theirs = sample_labels == k, train & (labels == k)
        per_class[name] = compare(samples[mine], real[theirs], spec, [m for m, s in zip(sample_meters, mine) if s],
                                  [m for m, t in zip(real_meters, theirs) if t])
    report = {"run": str(run_dir), "prior": "gmm" if run.sampler is not None else "normal", "samples_per_class": n, "train_windows": int(train.sum()),
              "held_out_windows": int(val.sum()), "table": table, "per_class": per_class,
              "inside": int(sum(table[s]["inside"] for s in STATS if s in table)),
              "texture": meta.get("texture", "polyphonic"), "meters": meta.get("meters", {"4/4": len(real)}),
              "plan": asked}
    if len(users) > 1:
        judge, ceiling = class_judge(real, real_meters, labels, val, spec, seed)
        judged = judge.predict(phrase_features(samples, sample_meters, spec))
        report["class_control"] = float((judged == sample_labels).mean())
        report["class_control_per_class"] = {c: float((judged[sample_labels == k] == k).mean())
                                             for k, c in enumerate(users)}
        report["class_judge_ceiling"] = ceiling
        report["class_control_ratio"] = report["class_control"] / ceiling
    if sorted(c for c in classes if c) == ["major", "minor"]:
        mode_of = {classes.index("major"): 0, classes.index("minor"): 1}
        want_samples = np.vectorize(mode_of.get)(sample_labels)
        _, found = analyse_keys(samples, spec.low, spec.pitch_rows)
        report["mode_control"] = float((found == want_samples).mean())
        report["mode_control_per_class"] = {c: float((found[sample_labels == k] == mode_of[k]).mean())
                                            for k, c in enumerate(classes)}
        _, judged_keys = analyse_keys(real[val], spec.low, spec.pitch_rows)
        report["judge_accuracy_held_out"] = float((judged_keys == np.vectorize(mode_of.get)(labels[val])).mean())

    # every exported file opens in mido and music21 and reads back to the same roll
    import mido

    music21 = None
    try:
        import music21
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        stems = [f"s{i:03d}" for i in range(len(samples))]
        names = [None if classes[k] is None else f"{classes[k]}+{m}" for k, m in zip(sample_labels, sample_meters)]
        # the metre of each file comes from the sample itself (its metre row), as for any item
        export(torch.from_numpy(samples.astype(np.float32)), Path(tmp), stems, config["data"],
               {"generated": {"classes": names}})
        files = sorted(Path(tmp).glob("*.mid"))
        written = [read_midi(f).time_signatures[0][1:] for f in files]
        report["right_meter"] = int(sum(f"{a}/{b}" == m for (a, b), m in zip(written, sample_meters)))
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
             "pitches_used": "pitches used", "density": "sounding cells", "empty_windows": "empty windows",
             "beat_onset_share": "onsets on the metre's beats", "empty_phrases": "empty phrases (< 4 notes)",
             "notes": "notes per window (median)", "chord_share": "sounding steps with a chord"}
    lines = ["| statistic | training windows: mean [p10, p90] | samples: mean | inside |", "|---|---|---|---|"]
    for key, row in report["table"].items():
        spread = f" [{row['train_p10']:.3g}, {row['train_p90']:.3g}]" if "train_p10" in row else ""
        train = f"{row['train']:.3g}{spread}"
        inside = ("yes" if row["inside"] else "no") if "inside" in row else ""
        label = names.get(key, key) + ("" if key in STATS else " (extra)")
        lines.append(f"| {label} | {train} | {row['samples']:.3g} | {inside} |")
    lines.append(f"\n{report['inside']} of 7 statistics inside the training 10th-90th percentile range "
                 f"({report['samples_per_class']} samples per class, {report['train_windows']:,} training windows).")
    lines.append(f"Prior: {report.get('prior', 'normal')}. Texture: {report['texture']}; metres of the training windows: "
                 + ", ".join(f"{m} {c:,}" for m, c in report["meters"].items())
                 + f"; {report['right_meter']} of {report['files']['written']} written files carry the metre asked for.")
    if "class_control" in report:
        per = ", ".join(f"{k} {v:.2f}" for k, v in report["class_control_per_class"].items())
        lines.append(f"Class control by a classifier of real phrases: {report['class_control']:.2f} ({per}); its "
                     f"accuracy on {report['held_out_windows']:,} held-out real windows (the ceiling): "
                     f"{report['class_judge_ceiling']:.2f}; ratio {report['class_control_ratio']:.2f}.")
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
    parser.add_argument("--corpus", help="train on a bench corpus of bench/midi_corpora.py (ryans, airds, trecento), "
                                         "built first if needed")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-midi-default"), help="run folder to train into")
    parser.add_argument("--n", type=int, default=16, help="samples per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument("--prior", choices=("normal", "gmm"), help="the latent prior of the samples; default: the "
                        "one `gen sample` uses (gmm where the run has a mixture, else normal); gmm on a run without "
                        "one fits it first")
    parser.add_argument("train_args", nargs="*", help="extra `gen train midi` arguments, after --")
    args = parser.parse_args()
    run_dir = args.run
    seconds = cpu = None
    extra = list(args.train_args)
    if args.corpus:
        from midi_corpora import build

        extra = ["--data", str(build(args.corpus, workers=2)), *extra]
    if run_dir is None:
        run_dir = args.out
        seconds, cpu = train_default(run_dir, extra)
    report = measure(run_dir, args.n, args.seed, args.prior)
    if seconds is not None:
        report["train_seconds"], report["train_cpu_seconds"] = seconds, cpu
    print(markdown(report))
    if seconds is not None:
        print(f"Training took {seconds / 60:.1f} min of wall time and {cpu / 60:.1f} min of CPU time (gen train midi "
              f"{' '.join(extra)}; data conversion excluded if cached).")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
