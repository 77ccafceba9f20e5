"""`gen sample` for piano rolls: temperature, the metre, decoding with a calibrated threshold,
stitching, and export to MIDI, PNG and WAV.

Decoding (decode.py) samples the onsets and lets notes last while the frame probability stays
above a threshold. That threshold is calibrated per class and metre, once per opened run: 256
prior samples at temperature 1 (a fixed seed) must sound as often as the class's training
windows. `--threshold P` overrides it. A run of several metres takes the metre from `--meter`
(or a `--class` such as `minor+6/8`); each sample is decoded and written in it: its time
signature, its bar-aware accents, its own length.
"""
from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gencore.errors import GenError

from .decode import Rule, calibrate_rule, decode_rule, default_min_steps, to_items, to_rolls
from .keyframe import parse_key, signature_name
from .metrics import analyse_keys, key_name
from .options import DEFAULT_TEMPO, DEFAULT_VELOCITY, Meter, WindowSpec, parse_sample_options
from .roll import meters_of, with_chroma
from .rule_cache import decoder_digest, rule_key, store_rules, stored_rules

if TYPE_CHECKING:
    import torch

STITCH_RHO = 0.7  # latent correlation between neighbouring windows of a stitched sample
CALIBRATION_PER_CLASS = 256
CALIBRATION_SEED = 20_240_917


def window_spec(data_spec: dict[str, Any]) -> WindowSpec:
    return WindowSpec.from_json((data_spec.get("meta") or {})["window"])


def rule_for(run, name: str | None, cond: "torch.Tensor | None", meter: str, min_steps: int) -> Rule:
    """The calibrated decoding rule of one condition (a class, in one metre), cached on the opened
    run and in its folder (rule_cache.py): 256 prior samples at temperature 1 (a fixed seed) must
    sound as often as the class's training windows (and, for one line, hold as many notes)."""
    import torch

    calibration = [CALIBRATION_PER_CLASS, CALIBRATION_SEED]
    cache = run.__dict__.get("_midi_rules")
    if cache is None:  # the decoder file is hashed once per opened run
        digest = run.__dict__["_midi_decoder_digest"] = decoder_digest(run.path)
        cache = run.__dict__["_midi_rules"] = stored_rules(run.path, calibration, digest)
    key = rule_key(name, meter, min_steps)
    if key in cache:
        return cache[key]
    generator = torch.Generator().manual_seed(CALIBRATION_SEED)
    z = run.decoder.sample_latent(CALIBRATION_PER_CLASS, generator, 1.0).cpu()
    conds = None if cond is None else cond[None].expand(CALIBRATION_PER_CLASS, -1)
    probs = run.decode(z, conds).numpy()
    meta = run.config["data"]["meta"]
    cache[key] = calibrate_rule(probs, window_spec(run.config["data"]), meta, name, meter,
                                rng_seed=CALIBRATION_SEED, min_steps=min_steps)
    store_rules(run.path, calibration, run.__dict__["_midi_decoder_digest"], cache)
    return cache[key]


def parse_class(text: str, class_names: list[str], multi_label: bool, plain) -> list[float]:
    """A `--class` value of a run whose class names end with its metres (multi-hot): the class
    and the metre given, the main metre (the first) when none is, every class alike when only a
    metre is."""
    meters = [n for n in class_names if re.fullmatch(r"\d+/\d+", n)]
    if not multi_label or not meters:
        return plain(text, class_names, multi_label)
    parts = [p.strip() for p in str(text).split("+") if p.strip()]
    vector = plain("+".join(parts), class_names, True)
    users = len(class_names) - len(meters)
    if not any(vector[users:]):
        vector[users] = 1.0
    if not any(vector[:users]):
        vector[:users] = [1.0 / users] * users
    return vector


def sample_meters(run, spec: WindowSpec, conditions: "torch.Tensor | None", asked: str | None, n: int) -> list[str]:
    """Each of the `n` samples' metre: --meter, else the metre in its condition, else the run's
    main metre. With several metres, the metre entries of `conditions` are set to it (in place)."""
    meters = list(spec.meters or ("4/4",))
    if asked is not None and asked not in meters:
        raise GenError(f"this run learned {', '.join(meters)}, not {asked}", where="--meter",
                       hint=f"use --meter {meters[0]}, or train on files in {asked}")
    if spec.meter_row is None or conditions is None:
        return [asked or meters[0]] * n
    first = len(run.class_names) - len(meters)
    part = conditions[:, first:]
    chosen = [asked] * n if asked else [meters[int(i)] if part[k].max() > 0 else meters[0]
                                        for k, i in enumerate(part.argmax(dim=1))]
    part.zero_()
    for k, m in enumerate(chosen):
        part[k, meters.index(m)] = 1.0
    return chosen


def generate(run, classes: list[str | None], conditions: "torch.Tensor | None", options: dict[str, Any],
             seed: int, temperature: float) -> "torch.Tensor":
    import torch

    settings = parse_sample_options(options)
    spec = window_spec(run.config["data"])
    bars = settings.bars
    if bars is not None and bars % spec.bars:
        raise GenError(f"this run was trained on {spec.bars}-bar windows, and {bars} bars is not a multiple of that",
                       where="--bars", hint=f"use --bars {spec.bars}, or a multiple such as --bars {2 * spec.bars} "
                                            f"to stitch windows, or train with --bars {bars}")
    n = len(classes)
    conditions = None if conditions is None else conditions.clone()
    meters = sample_meters(run, spec, conditions, settings.meter, n)
    # one window of its metre by default; --bars stitches windows (more of them in a metre cut in fewer bars)
    pieces_of = {m: 1 if bars is None else bars // spec.bars_of(m) for m in meters}
    pieces = max(pieces_of.values())
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
    rolls = np.zeros((n, 2, spec.rows, spec.steps * pieces), dtype=np.uint8)
    rng = np.random.default_rng(seed)
    groups = dict.fromkeys(zip(classes, meters))
    min_steps = settings.min_steps or default_min_steps(run.config["data"]["meta"])
    for name, meter in groups:
        sel = np.array([(c, m) == (name, meter) for c, m in zip(classes, meters)])
        cond = None if conditions is None else conditions[int(np.argmax(sel))]
        rule = rule_for(run, name, cond, meter, min_steps)
        if settings.threshold is not None:
            rule = replace(rule, threshold=settings.threshold)
        for piece, part in enumerate(probs[:pieces_of[meter]]):  # each window decoded in its metre, then joined
            length = spec.meter_steps(meter)
            window = decode_rule(part[sel], spec, run.config["data"]["meta"], rule, rng=rng,
                                 min_steps=min_steps)
            rolls[sel, :, :, piece * length:(piece + 1) * length] = window[..., :length]
    # for export: key signature, metre and length
    options["generated"] = {"classes": list(classes), "meters": meters, "bars": bars}
    if pieces == 1:
        return torch.from_numpy(to_items(rolls, spec, meters).astype(np.float32))
    return torch.from_numpy(with_chroma(rolls, spec).astype(np.float32))


def decoding_rules(data_spec: dict[str, Any], run=None) -> dict[str, Any]:
    """What a consumer of the exported decoder needs to write MIDI without gen: the grid, the
    pitch window, the metres and the decoding of decode.py, with the rules calibrated per class
    (and metre) on this run's decoder (by name; "all" for an unconditional run)."""
    from .decode import LINE_PITCH_FLOOR, ONSET_FLOOR
    from .options import DRUM_ROWS, OUTPUT_TPB, STEPS_PER_BEAT

    spec = window_spec(data_spec)
    meta = data_spec.get("meta") or {}
    thresholds, scales = {}, {}
    if run is not None:
        user = meta.get("classes") if meta.get("meter_classes") else run.class_names
        for name in (user or [None]) if run.conditional else [None]:
            for meter in spec.meters or ("4/4",):
                label = "+".join(x for x in (name, meter if spec.meter_row is not None else None) if x) or "all"
                cond = run.condition(label) if run.conditional else None
                rule = rule_for(run, label if run.conditional else None, cond, meter, default_min_steps(meta))
                thresholds[label], scales[label] = rule.threshold, rule.onset_scale
    return {
        "channels": {"onset": 0, "frame": 1, "chroma": 2},
        "lowest_pitch": spec.low, "pitch_rows": spec.pitch_rows,
        "drum_rows": [{"row": spec.pitch_rows + i, "name": name, "note": notes[0]}  # drums on channel 10
                      for i, (name, notes) in enumerate(DRUM_ROWS[:spec.drum_rows])],
        "meter_row": spec.meter_row, "meters": {m: {"steps": spec.meter_steps(m), "bars": spec.bars_of(m)}
                                                for m in spec.meters or ("4/4",)},
        "steps_per_beat": STEPS_PER_BEAT, "bars": spec.bars, "texture": meta.get("texture", "polyphonic"),
        "tonic": "C" if spec.normalise_key else None,
        "onset_floor": ONSET_FLOOR, "line_pitch_floor": LINE_PITCH_FLOOR, "frame_thresholds": thresholds, "onset_scales": scales,
        "min_steps": default_min_steps(meta),
        "decoding": ("a note starts where a uniform draw falls under the onset probability and that "
                     "probability is at least onset_floor; it sounds while the frame probability stays at or "
                     "above the class's frame threshold; a new onset on a sounding pitch restarts the note. "
                     "monophonic runs start at most one note per step, with probability onset_scale times the "
                     "summed onset probabilities at least onset_floor, on a pitch drawn in proportion to the onset "
                     "probabilities at least line_pitch_floor; the note holds while the summed frame probabilities "
                     "stay at or above the threshold, and where none sounds but they are, a note starts on a pitch "
                     "drawn from the frames"),
        "ticks_per_beat": OUTPUT_TPB, "tempo_bpm": DEFAULT_TEMPO, "velocity": DEFAULT_VELOCITY,
    }


def item_meters(items: np.ndarray, spec: WindowSpec, options: dict[str, Any] | None) -> list[str]:
    """Each item's metre: as `generate` recorded it, else read from the metre row."""
    generated = (options or {}).get("generated") or {}
    if len(generated.get("meters") or []) == len(items):
        return list(generated["meters"])
    if items.shape[-1] != spec.steps:
        return [(spec.meters or ("4/4",))[0]] * len(items)
    return meters_of(items, spec)


def item_modes(rolls: np.ndarray, spec: WindowSpec, options: dict[str, Any] | None) -> list[bool]:
    """Minor or not, per item: the class asked for when it names a mode, else key analysis."""
    _, analysed = analyse_keys(rolls, spec.low, spec.pitch_rows)
    classes = ((options or {}).get("generated") or {}).get("classes") or []
    out = []
    for i in range(len(rolls)):
        asked = str(classes[i]).split("+") if i < len(classes) and classes[i] is not None else []
        if "minor" in asked or "major" in asked:
            out.append("minor" in asked)
        else:
            out.append(bool(analysed[i] == 1))
    return out


def export(items: "torch.Tensor", out_dir: Path, stems: list[str], data_spec: dict[str, Any],
           options: dict[str, Any] | None) -> list[Path]:
    from .midifile import build_midi
    from .render import roll_image, synthesise, write_wav
    from .roll import roll_to_notes

    if len(stems) != items.shape[0]:
        raise ValueError(f"{items.shape[0]} items but {len(stems)} file stems")
    settings = parse_sample_options(options)
    spec = window_spec(data_spec)
    array = items.detach().float().cpu().numpy()
    meters = item_meters(array, spec, options)
    rolls = to_rolls(array, data_spec.get("meta") or {}, settings.min_steps)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    shift = parse_key(settings.key)
    if shift and not spec.normalise_key:
        raise GenError("this run keeps the written pitches (trained with --no-normalise-key), so it has no key "
                       "frame to move", where="--key", hint="leave --key out, or train without --no-normalise-key")
    minor = item_modes(rolls, spec, options)
    stitched_bars = ((options or {}).get("generated") or {}).get("bars")
    for roll, stem, meter, is_minor in zip(rolls, stems, meters, minor):
        # the window(s) in their own metre
        steps = (stitched_bars * Meter.of(meter).steps_per_bar if stitched_bars
                 else roll.shape[-1] // spec.steps * spec.meter_steps(meter))
        roll = roll[:, :, :steps]
        notes = roll_to_notes(roll, spec, settings.velocity, Meter.of(meter))
        if spec.normalise_key:
            key = signature_name(shift, minor=is_minor)
            notes = [n if n.drum else replace(n, pitch=n.pitch + shift) for n in notes]
            notes = [n for n in notes if 0 <= n.pitch <= 127]
        else:
            key = key_name(roll, spec)
        mf = build_midi(notes, steps, tempo_bpm=settings.tempo, key=key, program=settings.program, name=stem,
                        meter=Meter.of(meter))
        target = out_dir / f"{stem}.mid"
        mf.save(target)
        written.append(target)
        picture = out_dir / f"{stem}.png"
        roll_image(shifted(roll, shift, spec) if spec.normalise_key else roll, spec, meter).save(picture, format="PNG")
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


def preview(items: "torch.Tensor", data_spec: dict[str, Any], columns: int, options: dict[str, Any] | None = None):
    from .render import preview as grid

    spec = window_spec(data_spec)
    array = items.detach().float().cpu().numpy()
    meters = item_meters(array, spec, options)
    rolls = to_rolls(array, data_spec.get("meta") or {})
    return grid(rolls, spec, columns, meters)
