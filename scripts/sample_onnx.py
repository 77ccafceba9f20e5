#!/usr/bin/env python3
"""Sample from a decoder exported by `gen export --format onnx`, without gen.

Needs only numpy, onnxruntime, and Pillow (images, level previews) or mido (MIDI). Everything
else comes from the metadata embedded in the model under the key "gencore".

    python scripts/sample_onnx.py digits.onnx --n 16 --class 7 -o out/
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort


def load(path: str):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["gencore"])
    return session, meta


def sample(session, meta, n: int, cls: str | None, seed: int, temperature: float) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    feeds = {"noise": (rng.standard_normal((n, meta["latent_dim"])) * temperature).astype(np.float32)}
    names = meta["class_names"]
    labels = [""] * n
    if meta["condition"]["dim"]:
        wanted = [cls] * n if cls is not None else [names[i % len(names)] for i in range(n)]
        cond = np.zeros((n, len(names)), np.float32)
        for i, name in enumerate(wanted):
            for part in name.split("+"):  # multi-label: "a+b"
                cond[i, names.index(part) if part in names else int(part)] = 1.0
        feeds["condition"], labels = cond, wanted
    return session.run(None, feeds)[0], labels


def write_images(items: np.ndarray, out: Path, labels: list[str]) -> None:
    from PIL import Image

    for i, item in enumerate(items):  # (C, H, W) in [0, 1]
        pixels = (np.clip(item, 0, 1) * 255 + 0.5).astype(np.uint8)
        image = Image.fromarray(pixels[0]) if pixels.shape[0] == 1 else Image.fromarray(pixels.transpose(1, 2, 0))
        image.save(out / f"{labels[i] or 'sample'}-{i:03d}.png")


def write_levels(items: np.ndarray, out: Path, labels: list[str], rules: dict) -> None:
    chars = rules.get("meta", rules)["tiles"]  # category index -> tile character
    for i, item in enumerate(items):
        index = item if item.ndim == 2 else item.argmax(axis=0)  # (H, W) after argmax
        text = "\n".join("".join(chars[k] for k in row) for row in index) + "\n"
        (out / f"{labels[i] or 'level'}-{i:03d}.txt").write_text(text)


def decode_notes(probs: np.ndarray, rules: dict, label: str, rng) -> list[tuple[int, int, int]]:
    """(channels, rows, steps) probabilities, or 0/1 cells from a thresholded export, -> notes
    (row, start step, end step), decoded as the embedded rules describe."""
    onset_p, frame_p = probs[rules["channels"]["onset"]], probs[rules["channels"]["frame"]]
    if probs.dtype == np.uint8:
        onset, on = onset_p.astype(bool), frame_p.astype(bool) | onset_p.astype(bool)
    else:
        thresholds = rules["frame_thresholds"]
        threshold = thresholds.get(label) or thresholds.get("all") or np.median(list(thresholds.values()) or [0.3])
        onset = (rng.random(onset_p.shape) < onset_p) & (onset_p >= rules["onset_floor"])
        on = (frame_p >= threshold) | onset
    notes = []
    for row in range(onset.shape[0]):
        t = 0
        while t < onset.shape[1]:
            if onset[row, t]:
                end = t + 1
                while end < onset.shape[1] and on[row, end] and not onset[row, end]:
                    end += 1
                notes.append((row, t, end))
                t = end
            else:
                t += 1
    return notes


def write_midi(items: np.ndarray, out: Path, labels: list[str], rules: dict, seed: int) -> None:
    import mido

    meters = list(rules.get("meters") or {"4/4": {}})
    if len(meters) != 1 or rules.get("texture") == "monophonic":
        sys.exit("sample_onnx: this run learnt several metres or a melody corpus, whose decoding this script does "
                 "not implement; sample it with `gen sample`")
    numerator, denominator = (int(x) for x in meters[0].split("/"))
    tpb, ticks = rules["ticks_per_beat"], rules["ticks_per_beat"] // rules["steps_per_beat"]
    drums = {d["row"]: d["note"] for d in rules["drum_rows"]}
    rng = np.random.default_rng(seed)
    for i, item in enumerate(items):
        events = []  # (tick, 0 = off before 1 = on, channel, note)
        for row, start, end in decode_notes(item, rules, labels[i], rng):
            channel, note = (9, drums[row]) if row in drums else (0, rules["lowest_pitch"] + row)
            events += [(start * ticks, 1, channel, note), (end * ticks, 0, channel, note)]
        meta = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(rules["tempo_bpm"]), time=0),
                               mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator,
                                                time=0)])
        if rules.get("tonic"):  # the model writes in C; chorale classes say the mode
            meta.append(mido.MetaMessage("key_signature", key="Cm" if labels[i] == "minor" else "C", time=0))
        meta.append(mido.MetaMessage("end_of_track", time=0))
        notes, now = mido.MidiTrack(), 0
        for tick, kind, channel, note in sorted(events):
            velocity = rules["velocity"] if kind else 0
            notes.append(mido.Message("note_on", channel=channel, note=note, velocity=velocity, time=tick - now))
            now = tick
        notes.append(mido.MetaMessage("end_of_track", time=0))
        mido.MidiFile(type=1, ticks_per_beat=tpb, tracks=[meta, notes]).save(out / f"{labels[i] or 'clip'}-{i:03d}.mid")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the .onnx file from `gen export`")
    parser.add_argument("--n", type=int, default=16, help="how many samples, e.g. --n 16")
    parser.add_argument("--class", dest="cls", default=None, help="class name (a+b for multi-label), e.g. --class 7")
    parser.add_argument("--seed", type=int, default=0, help="random seed, e.g. --seed 3")
    parser.add_argument("--temperature", type=float, default=1.0, help="noise scale, e.g. --temperature 0.8")
    parser.add_argument("-o", "--out", default="onnx-samples", help="output folder, e.g. -o out")
    args = parser.parse_args()
    session, meta = load(args.model)
    items, labels = sample(session, meta, args.n, args.cls, args.seed, args.temperature)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    writer = {"images": lambda: write_images(items, out, labels),
              "levels": lambda: write_levels(items, out, labels, meta["decoding"]),
              "midi": lambda: write_midi(items, out, labels, meta["decoding"], args.seed)}.get(meta["domain"])
    if writer is None:
        raise SystemExit(f"{args.model}: no writer for domain {meta['domain']!r}")
    writer()
    print(f"wrote {len(items)} {meta['domain']} samples to {out}")


if __name__ == "__main__":
    main()
