"""Attributes of phrases a musician can steer (`gen sample --attr density=+1`), measured per
window on the canonical rolls that `gen sample` writes (pitch rows only, drums ignored):

- `density`: notes started per beat;
- `pitch_range`: highest minus lowest sounding pitch, in semitones;
- `mean_pitch`: mean MIDI pitch of the notes started;
- `polyphony`: mean number of pitches sounding at the steps where any sounds;
- `syncopation`: share of notes that start off the beat.
NaN where a window has no notes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .decode import to_rolls
from .metrics import window_stats
from .options import STEPS_PER_BEAT, WindowSpec
from .roll import note_starts

if TYPE_CHECKING:
    import torch


def measure(items: "torch.Tensor", data_spec: dict[str, Any]) -> dict[str, np.ndarray]:
    meta = data_spec.get("meta") or {}
    spec = WindowSpec.from_json(meta["window"])
    rolls = to_rolls(items.detach().float().cpu().numpy(), meta)[:, :, :spec.pitch_rows]  # (N, 2, P, T)
    stats = window_stats(rolls, spec)
    _, starts = note_starts(rolls)  # (N, P, T) bool
    steps = rolls.shape[-1]
    counts = starts.sum(axis=(1, 2)).astype(np.float64)
    pitches = spec.low + np.arange(spec.pitch_rows, dtype=np.float64)
    off_beat = (np.arange(steps) % STEPS_PER_BEAT) != 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pitch = np.where(counts > 0, (starts.sum(axis=2) * pitches).sum(axis=1) / counts, np.nan)
        syncopation = np.where(counts > 0, starts[:, :, off_beat].sum(axis=(1, 2)) / counts, np.nan)
    return {"density": counts / (steps / STEPS_PER_BEAT), "pitch_range": stats["pitch_range"].astype(np.float64),
            "mean_pitch": mean_pitch, "polyphony": stats["polyphony"].astype(np.float64),
            "syncopation": syncopation}
