"""Music statistics (MusPy-style, docs/metrics.md), the key-analysis judge, and the calibrated
threshold that turns decoder probabilities into piano rolls.

Every statistic is computed per window on binary rolls (2, rows, steps) over the pitch rows
only (drum rows are ignored, as MusPy ignores drum tracks), and generated windows are always
compared with training windows of the same length. All of it is vectorised numpy.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .decode import (
    DEFAULT_MIN_STEPS,
    calibrate,
    canonical,
    class_density,
    decode,
    is_binary,
)
from .options import STEPS_PER_BAR, STEPS_PER_BEAT, WindowSpec
from .roll import FRAME, ONSET, note_lengths, note_starts

if TYPE_CHECKING:
    import torch

    from gencore.plugin import LoadedData

# music21's analyze('key') is Aarden-Essen key weighting (music21.analysis.discrete.AardenEssen):
# the best Pearson correlation between a duration-weighted pitch-class histogram and the 24
# rotated profiles. Re-implemented here so that the judge needs no music21 and runs on arrays.
AARDEN_MAJOR = np.array([17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062,
                         0.145624, 8.15494, 0.232998, 4.95122])
AARDEN_MINOR = np.array([18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161,
                         4.56621, 1.93186, 7.37619, 1.75623])
MAJOR_SCALE = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], dtype=bool)
MINOR_SCALE = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0], dtype=bool)  # natural minor
MAJOR_KEYS = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
MINOR_KEYS = ["Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm"]

# The seven statistics of the acceptance table, then two more.
STATS = ("pitch_range", "pitch_classes", "polyphony", "scale_consistency", "pc_entropy",
         "empty_beat_rate", "groove_consistency")
EXTRA_STATS = ("qualified_note_rate", "pitches_used")
REFERENCE_CAP = 20_000  # training windows used for the reference statistics (seeded subset)


def _profiles() -> np.ndarray:
    """(24, 12) rotated profiles, centred: rows 0-11 major tonic 0..11, rows 12-23 minor."""
    rows = [np.roll(AARDEN_MAJOR, k) for k in range(12)] + [np.roll(AARDEN_MINOR, k) for k in range(12)]
    prof = np.array(rows)
    return prof - prof.mean(axis=1, keepdims=True)


_PROFILES = _profiles()


def pitch_class_weights(rolls: np.ndarray, low: int, pitch_rows: int) -> np.ndarray:
    """Duration-weighted pitch-class histograms (n, 12) of binary rolls (n, 2, rows, steps)."""
    sounding = ((rolls[:, FRAME, :pitch_rows] > 0) | (rolls[:, ONSET, :pitch_rows] > 0)).sum(axis=2)
    pcs = (low + np.arange(pitch_rows)) % 12
    hist = np.zeros((rolls.shape[0], 12))
    np.add.at(hist.T, pcs, sounding.T.astype(float))
    return hist


def keys_from_histograms(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Key analysis of duration-weighted pitch-class histograms (n, 12): (tonic pitch class,
    mode 0 = major / 1 = minor), -1 where a histogram is empty."""
    centred = hist - hist.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(centred, axis=1)[:, None] * np.linalg.norm(_PROFILES, axis=1)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = centred @ _PROFILES.T / norm  # (n, 24) Pearson correlations
    best = np.nan_to_num(corr, nan=-2.0).argmax(axis=1)
    empty = hist.sum(axis=1) == 0
    return np.where(empty, -1, best % 12), np.where(empty, -1, best // 12)


def analyse_keys(rolls: np.ndarray, low: int, pitch_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Key analysis per roll: (tonic pitch class, mode 0 = major / 1 = minor); -1 where empty."""
    return keys_from_histograms(pitch_class_weights(rolls, low, pitch_rows))


def key_name(roll: np.ndarray, spec: WindowSpec) -> str:
    tonic, mode = analyse_keys(roll[None], spec.low, spec.pitch_rows)
    if tonic[0] < 0:
        return "C"
    return (MAJOR_KEYS if mode[0] == 0 else MINOR_KEYS)[int(tonic[0])]


# -- statistics ---------------------------------------------------------------------------------
def window_stats(rolls: np.ndarray, spec: WindowSpec) -> dict[str, np.ndarray]:
    """Per-window statistics of binary rolls (n, 2, rows, steps); NaN where a window has no notes."""
    p = spec.pitch_rows
    rolls = rolls[:, :, :p]
    n, _, _, steps = rolls.shape
    on, starts = note_starts(rolls)  # (n, p, steps)
    has = on.any(axis=(1, 2))
    nan = np.full(n, np.nan)
    rows_on = on.any(axis=2)  # (n, p)
    idx = np.arange(p)
    lowest = np.where(rows_on, idx, p).min(axis=1)
    highest = np.where(rows_on, idx, -1).max(axis=1)
    pitch_range = np.where(has, highest - lowest, np.nan)
    pcs = (spec.low + idx) % 12
    pc_onehot = np.eye(12, dtype=bool)[pcs]  # (p, 12)
    pc_used = (rows_on[:, :, None] & pc_onehot[None]).any(axis=1)  # (n, 12)
    pitch_classes = np.where(has, pc_used.sum(axis=1), np.nan)
    pitches_used = np.where(has, rows_on.sum(axis=1), np.nan)
    voices = on.sum(axis=1)  # (n, steps)
    sounding_steps = (voices > 0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        polyphony = np.where(has, voices.sum(axis=1) / np.maximum(sounding_steps, 1), np.nan)
        note_pc = starts.sum(axis=2).astype(float) @ pc_onehot.astype(float)  # (n, 12) note counts
        total = note_pc.sum(axis=1)
        masks = np.array([np.roll(MAJOR_SCALE, k) for k in range(12)] + [np.roll(MINOR_SCALE, k) for k in range(12)])
        in_scale = note_pc @ masks.T.astype(float)  # (n, 24)
        scale_consistency = np.where(total > 0, in_scale.max(axis=1) / np.maximum(total, 1), np.nan)
        prob = note_pc / np.maximum(total, 1)[:, None]
        logs = np.where(prob > 0, np.log2(np.where(prob > 0, prob, 1.0)), 0.0)
        pc_entropy = np.where(total > 0, -(prob * logs).sum(axis=1), np.nan)
    beats = steps // STEPS_PER_BEAT
    beat_on = on.reshape(n, p, beats, STEPS_PER_BEAT).any(axis=(1, 3))  # (n, beats)
    empty_beat_rate = 1.0 - beat_on.mean(axis=1)
    bars = steps // STEPS_PER_BAR
    groove = starts.any(axis=1).reshape(n, bars, STEPS_PER_BAR)  # onset pattern per bar
    if bars > 1:
        hamming = (groove[:, 1:] != groove[:, :-1]).mean(axis=2).mean(axis=1)
        groove_consistency = np.where(has, 1.0 - hamming, np.nan)
    else:
        groove_consistency = nan.copy()
    lengths = note_lengths(on, starts)
    owner = np.nonzero(starts)[0]
    qualified = np.bincount(owner, weights=(lengths >= 2).astype(float), minlength=n)
    counts = np.bincount(owner, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        qualified_note_rate = np.where(counts > 0, qualified / np.maximum(counts, 1), np.nan)
    return {"pitch_range": pitch_range, "pitch_classes": pitch_classes, "polyphony": polyphony,
            "scale_consistency": scale_consistency, "pc_entropy": pc_entropy,
            "empty_beat_rate": empty_beat_rate, "groove_consistency": groove_consistency,
            "qualified_note_rate": qualified_note_rate, "pitches_used": pitches_used,
            "density": on.mean(axis=(1, 2)), "empty": (~has).astype(float)}


def compare(samples: np.ndarray, reference: np.ndarray, spec: WindowSpec) -> dict[str, Any]:
    """Sample means against the training windows' mean and 10th-90th percentile range."""
    s, r = window_stats(samples, spec), window_stats(reference, spec)
    table: dict[str, Any] = {}
    for name in (*STATS, *EXTRA_STATS):
        rv = r[name][np.isfinite(r[name])]
        sv = s[name][np.isfinite(s[name])]
        if not len(rv):
            continue
        p10, p90 = (float(v) for v in np.percentile(rv, [10, 90]))
        mean = float(sv.mean()) if len(sv) else float("nan")
        table[name] = {"samples": mean, "train": float(rv.mean()), "train_p10": p10, "train_p90": p90,
                       "inside": bool(len(sv) and p10 <= mean <= p90)}
    table["empty_windows"] = {"samples": float(s["empty"].mean()), "train": float(r["empty"].mean())}
    table["density"] = {"samples": float(s["density"].mean()), "train": float(r["density"].mean())}
    return table


# -- the metrics hook ---------------------------------------------------------------------------
def compute(samples: "torch.Tensor", sample_conditions: "torch.Tensor | None", reference: "LoadedData",
            data_spec: dict[str, Any], seed: int) -> dict[str, float]:
    import torch

    meta = data_spec.get("meta") or {}
    spec = WindowSpec.from_json(meta["window"])
    probs = samples.detach().float().cpu().numpy()
    names = list(reference.class_names)
    y_samp = None if sample_conditions is None else sample_conditions.detach().cpu().argmax(dim=1).numpy()
    raw = None
    if is_binary(probs):
        rolls = canonical(probs[:, :2].astype(np.uint8))
    else:  # decoded as `gen sample` decodes: per class, a frame threshold calibrated to the training density
        groups = [(np.ones(len(probs), dtype=bool), None)] if y_samp is None else \
            [(y_samp == k, name) for k, name in enumerate(names)]
        rolls = np.zeros((len(probs), 2, *probs.shape[2:]), dtype=np.uint8)
        raw = np.zeros_like(rolls)
        for sel, name in groups:
            if not sel.any():
                continue
            t = calibrate(probs[sel], class_density(meta, name), rng_seed=seed)
            rolls[sel] = decode(probs[sel], t, rng=np.random.default_rng(seed))
            # the same onsets and threshold without the minimum note length: how fragmented the
            # decoder's own output is
            raw[sel] = decode(probs[sel], t, rng=np.random.default_rng(seed), min_steps=1)
    rng = np.random.default_rng(seed)
    real = reference.items
    keep = np.sort(rng.choice(real.shape[0], REFERENCE_CAP, replace=False)) if real.shape[0] > REFERENCE_CAP \
        else np.arange(real.shape[0])
    ref = real[torch.from_numpy(keep)][:, :2].numpy().astype(np.uint8)
    table = compare(rolls, ref, spec)
    out: dict[str, float] = {}
    for name, row in table.items():
        for key, value in row.items():
            if key == "inside":
                continue
            out[f"{name}" if key == "samples" else f"{name}_{key}"] = float(value)
    out["stats_inside_p10_p90"] = float(sum(table[n]["inside"] for n in STATS if n in table))
    if raw is not None:
        q = window_stats(raw, spec)["qualified_note_rate"]
        out["qualified_note_rate_before_min_length"] = float(np.nanmean(q)) if np.isfinite(q).any() else float("nan")
        out["min_note_steps"] = float(DEFAULT_MIN_STEPS)
    if y_samp is not None and sorted(names) == ["major", "minor"]:
        y_real = reference.conditions[torch.from_numpy(keep)].argmax(dim=1).numpy()
        mode_of = {names.index("major"): 0, names.index("minor"): 1}
        _, mode_real = analyse_keys(ref, spec.low, spec.pitch_rows)
        _, mode_samp = analyse_keys(rolls, spec.low, spec.pitch_rows)
        out["mode_judge_accuracy"] = float((mode_real == np.vectorize(mode_of.get)(y_real)).mean())
        out["mode_control"] = float((mode_samp == np.vectorize(mode_of.get)(y_samp)).mean())
    return out
