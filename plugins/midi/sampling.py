"""`gen sample` for piano rolls: temperature, decoding with a calibrated threshold, stitching,
and export to MIDI, PNG and WAV.

Decoding (decode.py) samples the onsets and lets notes last while the frame probability stays
above a threshold. That threshold is calibrated per class, once per opened run: 256 prior
samples at temperature 1 (a fixed seed) must sound as often as the class's training windows.
`--threshold P` overrides it.
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gencore.errors import GenError

from .decode import calibrate, class_density, decode, to_items, to_rolls
from .keyframe import parse_key, signature_name
from .metrics import analyse_keys, key_name
from .options import DEFAULT_TEMPO, DEFAULT_VELOCITY, WindowSpec, parse_sample_options

if TYPE_CHECKING:
    import torch

STITCH_RHO = 0.7  # latent correlation between neighbouring windows of a stitched sample
CALIBRATION_PER_CLASS = 256
CALIBRATION_SEED = 20_240_917


def window_spec(data_spec: dict[str, Any]) -> WindowSpec:
    return WindowSpec.from_json((data_spec.get("meta") or {})["window"])


def threshold_for(run, name: str | None, min_steps: int) -> float:
    """The calibrated frame threshold of one class, cached on the opened run."""
    import torch

    cache = run.__dict__.setdefault("_midi_thresholds", {})
    if (name, min_steps) in cache:
        return cache[name, min_steps]
    generator = torch.Generator().manual_seed(CALIBRATION_SEED)
    z = run.decoder.sample_latent(CALIBRATION_PER_CLASS, generator, 1.0).cpu()
    cond = None
    if run.conditional:
        cond = run.condition(name)[None].expand(CALIBRATION_PER_CLASS, -1)
    probs = run.decode(z, cond).numpy()
    density = class_density(run.config["data"]["meta"], name)
    cache[name, min_steps] = calibrate(probs, density, rng_seed=CALIBRATION_SEED, min_steps=min_steps)
    return cache[name, min_steps]


def generate(run, classes: list[str | None], conditions: "torch.Tensor | None", options: dict[str, Any],
             seed: int, temperature: float) -> "torch.Tensor":
    import torch

    settings = parse_sample_options(options)
    spec = window_spec(run.config["data"])
    bars = settings.bars or spec.bars
    if bars % spec.bars:
        raise GenError(f"this run was trained on {spec.bars}-bar windows, and {bars} bars is not a multiple of that",
                       where="--bars", hint=f"use --bars {spec.bars}, or a multiple such as --bars {2 * spec.bars} "
                                            f"to stitch windows, or train with --bars {bars}")
    pieces = bars // spec.bars
    n = len(classes)
    d = run.latent_dim
    generator = torch.Generator().manual_seed(seed)
    # The first window draws its noise exactly as the core's decoder.sample_latent does, so a
    # seed gives the same first window with or without stitching.
    eps = torch.randn(n, d, generator=generator)
    probs = []
    for piece in range(pieces):
        if piece:
            fresh = torch.randn(n, d, generator=generator)
            eps = STITCH_RHO * eps + math.sqrt(1 - STITCH_RHO ** 2) * fresh  # stays N(0, I)
        z = run.latent_from_noise(eps, generator, temperature, conditions)  # --attr/--prior apply here
        probs.append(run.decode(z, conditions).numpy())
    joined = np.concatenate(probs, axis=-1)  # (n, channels, rows, bars * 16)
    rolls = np.empty((n, 2, *joined.shape[2:]), dtype=np.uint8)
    rng = np.random.default_rng(seed)
    for name in dict.fromkeys(classes):
        sel = np.array([c == name for c in classes])
        threshold = settings.threshold if settings.threshold is not None else \
            threshold_for(run, name, settings.min_steps)
        rolls[sel] = decode(joined[sel], threshold, rng=rng, min_steps=settings.min_steps)
    return torch.from_numpy(to_items(rolls, spec).astype(np.float32))


def decoding_rules(data_spec: dict[str, Any], run=None) -> dict[str, Any]:
    """What a consumer of the exported decoder needs to write MIDI without gen: the grid, the
    pitch window and the decoding of decode.py, with the frame thresholds calibrated per class
    on this run's decoder (by name; "all" for an unconditional run)."""
    from .decode import DEFAULT_MIN_STEPS, ONSET_FLOOR
    from .options import BEATS_PER_BAR, DRUM_ROWS, OUTPUT_TPB, STEPS_PER_BEAT

    spec = window_spec(data_spec)
    thresholds = {}
    if run is not None:
        for name in (run.class_names if run.conditional else [None]):
            thresholds[name or "all"] = threshold_for(run, name, DEFAULT_MIN_STEPS)
    return {
        "channels": {"onset": 0, "frame": 1, "chroma": 2},
        "lowest_pitch": spec.low, "pitch_rows": spec.pitch_rows,
        "drum_rows": [{"row": spec.pitch_rows + i, "name": name, "note": notes[0]}  # drums on channel 10
                      for i, (name, notes) in enumerate(DRUM_ROWS[:spec.drum_rows])],
        "steps_per_beat": STEPS_PER_BEAT, "beats_per_bar": BEATS_PER_BAR, "bars": spec.bars,
        "tonic": "C" if spec.normalise_key else None,
        "onset_floor": ONSET_FLOOR, "frame_thresholds": thresholds, "min_steps": DEFAULT_MIN_STEPS,
        "decoding": ("a note starts where a uniform draw falls under the onset probability and that "
                     "probability is at least onset_floor; it sounds while the frame probability stays at or "
                     "above the class's frame threshold; a new onset on a sounding pitch restarts the note"),
        "ticks_per_beat": OUTPUT_TPB, "tempo_bpm": DEFAULT_TEMPO, "velocity": DEFAULT_VELOCITY,
    }


def export(items: "torch.Tensor", out_dir: Path, stems: list[str], data_spec: dict[str, Any],
           options: dict[str, Any] | None) -> list[Path]:
    from .midifile import build_midi
    from .render import roll_image, synthesise, write_wav
    from .roll import roll_to_notes

    if len(stems) != items.shape[0]:
        raise ValueError(f"{items.shape[0]} items but {len(stems)} file stems")
    settings = parse_sample_options(options)
    spec = window_spec(data_spec)
    rolls = to_rolls(items.detach().float().cpu().numpy(), data_spec.get("meta") or {}, settings.min_steps)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    shift = parse_key(settings.key)
    if shift and not spec.normalise_key:
        raise GenError("this run keeps the written pitches (trained with --no-normalise-key), so it has no key "
                       "frame to move", where="--key", hint="leave --key out, or train without --no-normalise-key")
    for roll, stem in zip(rolls, stems):
        steps = roll.shape[-1]
        notes = roll_to_notes(roll, spec, settings.velocity)
        _, mode = analyse_keys(roll[None], spec.low, spec.pitch_rows)
        if spec.normalise_key:
            key = signature_name(shift, minor=bool(mode[0] == 1))
            notes = [n if n.drum else replace(n, pitch=n.pitch + shift) for n in notes]
            notes = [n for n in notes if 0 <= n.pitch <= 127]
        else:
            key = key_name(roll, spec)
        mf = build_midi(notes, steps, tempo_bpm=settings.tempo, key=key, program=settings.program, name=stem)
        target = out_dir / f"{stem}.mid"
        mf.save(target)
        written.append(target)
        picture = out_dir / f"{stem}.png"
        roll_image(shifted(roll, shift, spec) if spec.normalise_key else roll, spec).save(picture, format="PNG")
        written.append(picture)
        if settings.wav:
            sound = out_dir / f"{stem}.wav"
            write_wav(sound, synthesise(notes, steps, settings.tempo))
            written.append(sound)
    return written


def shifted(roll: np.ndarray, shift: int, spec: WindowSpec) -> np.ndarray:
    """A roll's pitch rows moved by `shift` semitones (for the PNG of a file written with --key);
    notes pushed out of the window are left out of the picture, not out of the file."""
    if not shift:
        return roll
    p = spec.pitch_rows
    out = roll.copy()
    out[:, :p] = 0
    if shift > 0:
        out[:, shift:p] = roll[:, :p - shift]
    else:
        out[:, :p + shift] = roll[:, -shift:p]
    return out


def preview(items: "torch.Tensor", data_spec: dict[str, Any], columns: int):
    from .render import preview as grid

    rolls = to_rolls(items.detach().float().cpu().numpy(), data_spec.get("meta") or {})
    return grid(rolls, window_spec(data_spec), columns)
