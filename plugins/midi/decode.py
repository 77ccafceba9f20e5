"""From decoder probabilities to piano rolls.

The decoder gives, per cell, the probability of an onset and of a sounding frame. Thresholding
every cell on its own picks only the safest notes of a blurry prediction (too few pitch classes,
the same rhythm in every bar) and breaks notes wherever a frame dips for one step. The decoding
here, after Onsets and Frames (Hawthorne et al. 2018), instead:

1. **samples the onsets**: each cell starts a note with its onset probability (a seeded draw),
   truncated as in min-p sampling: cells under ONSET_FLOOR never start one, so the rare far-off
   notes of a blurry prediction do not widen the range (measured: without the floor the pitch
   range and pitches used of the samples lay above the training windows' 90th percentile);
2. lets a note last while its frame probability stays above the frame threshold; a frame with
   no onset before it in its run starts nothing, and a new onset on a sounding pitch restarts
   it (a repeated note);
3. gives every note at least `min_steps` steps (default 2, an eighth note): a one-step note grows
   into a free next step, or else merges into the note sounding before it.

The frame threshold is **calibrated**: about 8.5% of a chorale roll's cells sound, so a 0.5
threshold would give nearly empty rolls; it is set so that the decoded rolls have the training
density of sounding cells (docs/midi.md).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .roll import FRAME, ONSET, note_lengths, note_starts, with_chroma

BISECTION_STEPS = 22
MIN_THRESHOLD, MAX_THRESHOLD = 1e-4, 0.995
DEFAULT_MIN_STEPS = 2
ONSET_FLOOR = 0.05
SHARED_NOISE_SEED = 12_345


def _draws(shape: tuple[int, ...], rng: np.random.Generator | None, shared: bool) -> np.ndarray:
    """Uniform draws for the onsets. `shared`: one field for the whole batch, so that similar
    probabilities decode alike (the steps of an interpolation path morph smoothly)."""
    if shared or rng is None:
        field = np.random.default_rng(SHARED_NOISE_SEED).random(shape[1:])
        return np.broadcast_to(field, shape)
    return rng.random(shape)


def decode(probs: np.ndarray, frame_threshold: float, *, rng: np.random.Generator | None = None,
           shared_noise: bool = False, min_steps: int = DEFAULT_MIN_STEPS) -> np.ndarray:
    """Probabilities (n, >=2, rows, steps) -> canonical binary rolls (n, 2, rows, steps), uint8:
    the onset channel holds note starts, the frame channel every sounding cell."""
    p_onset, p_frame = probs[:, ONSET], probs[:, FRAME]
    onset = (_draws(p_onset.shape, rng, shared_noise) < p_onset) & (p_onset >= ONSET_FLOOR)
    on = (p_frame >= frame_threshold) | onset
    run = np.cumsum(~on, axis=-1)  # runs of sounding cells share a number
    last_onset_run = np.maximum.accumulate(np.where(onset, run, -1), axis=-1)
    sounding = on & (last_onset_run == run)  # only from the first onset of a run onwards
    starts = sounding & onset
    if min_steps > 1:
        sounding, starts = fix_short(sounding, starts, min_steps)
    out = np.empty((probs.shape[0], 2, *probs.shape[2:]), dtype=np.uint8)
    out[:, ONSET] = starts
    out[:, FRAME] = sounding
    return out


def _canonical_cells(on: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return note_starts(np.stack([starts & on, on], axis=-3).astype(np.uint8))


def fix_short(on: np.ndarray, starts: np.ndarray, min_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Give every note at least `min_steps` steps: a short note grows into a free following
    step; one that cannot grow merges into the note sounding just before it, or else is dropped.
    Each pass grows by one step, so a few passes settle it; whatever is still short is dropped."""
    steps = on.shape[-1]
    on, starts = _canonical_cells(on, starts)
    for _ in range(4 * min_steps):
        lengths = np.zeros(on.shape, dtype=np.int64)
        lengths[starts] = note_lengths(on, starts)
        short = starts & (lengths < min_steps)
        if not short.any():
            return on, starts
        on, starts = on.copy(), starts.copy()
        idx = np.nonzero(short)
        lead = idx[:-1]
        after = idx[-1] + lengths[short]  # the step just after each short note
        inside = after < steps
        free = np.zeros(len(after), dtype=bool)
        free[inside] = ~on[(*[i[inside] for i in lead], after[inside])]
        on[(*[i[free] for i in lead], after[free])] = True
        stuck = ~free
        start = idx[-1]
        has_prev = stuck & (start > 0)
        prev_on = np.zeros(len(start), dtype=bool)
        prev_on[has_prev] = on[(*[i[has_prev] for i in lead], start[has_prev] - 1)]
        starts[(*[i[prev_on] for i in lead], start[prev_on])] = False  # joins the note before it
        drop = stuck & ~prev_on
        for k in range(int(lengths[short][drop].max()) if drop.any() else 0):
            sel = drop & (lengths[short] > k)
            on[(*[i[sel] for i in lead], start[sel] + k)] = False
        on, starts = _canonical_cells(on, starts)
    lengths = np.zeros(on.shape, dtype=np.int64)
    lengths[starts] = note_lengths(on, starts)
    ids = np.cumsum(starts, axis=-1)
    row = np.arange(int(np.prod(on.shape[:-1]))).reshape(on.shape[:-1])[..., None]
    keys = row * (steps + 1) + ids
    short_keys = keys[starts & (lengths < min_steps)]
    on = on & ~np.isin(keys, short_keys)
    return _canonical_cells(on, starts)


def _bisect(measure, target: float) -> float:
    """The threshold whose decoded density is closest to `target`; density falls as it rises."""
    lo, hi = np.log(MIN_THRESHOLD), np.log(MAX_THRESHOLD)
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if measure(float(np.exp(mid))) > target:
            lo = mid
        else:
            hi = mid
    return float(np.exp(0.5 * (lo + hi)))


def calibrate(probs: np.ndarray, frame_density: float, *, rng_seed: int = 0, shared_noise: bool = False,
              min_steps: int = DEFAULT_MIN_STEPS) -> float:
    """The frame threshold at which the decoded rolls of `probs` sound as often as the training
    rolls (the same onset draws at every trial)."""
    if not len(probs):
        return 0.5
    target = min(max(float(frame_density), 1e-5), 0.9)

    def density(t: float) -> float:
        rolls = decode(probs, t, rng=np.random.default_rng(rng_seed), shared_noise=shared_noise,
                       min_steps=min_steps)
        return float(rolls[:, FRAME].mean())

    return _bisect(density, target)


def is_binary(items: np.ndarray) -> bool:
    return bool(np.all((items == 0) | (items == 1)))


def canonical(rolls: np.ndarray) -> np.ndarray:
    """Binary rolls (onset and frame channels) made canonical: every note start carries an
    onset, every onset sounds."""
    on, starts = note_starts(rolls)
    out = np.empty((*rolls.shape[:-3], 2, *rolls.shape[-2:]), dtype=np.uint8)
    out[..., ONSET, :, :] = starts
    out[..., FRAME, :, :] = on
    return out


def class_density(meta: dict[str, Any], name: str | None) -> float:
    """The training share of sounding cells (the frame channel) of one class, or of all."""
    density = meta.get("density") or {}
    values = density.get(name) or density.get("all") or [0.02, 0.085]
    return float(values[FRAME])


def to_rolls(items: np.ndarray, meta: dict[str, Any], min_steps: int = DEFAULT_MIN_STEPS) -> np.ndarray:
    """Items from anywhere -> canonical 2-channel rolls. Probabilities with no run at hand
    (previews, reconstructions, interpolation paths) are decoded with one shared noise field and
    a frame threshold calibrated on the batch itself against the training density."""
    if is_binary(items):
        return canonical(items[:, :2].astype(np.uint8))
    t = calibrate(items, class_density(meta, None), shared_noise=True, min_steps=min_steps)
    return decode(items, t, shared_noise=True, min_steps=min_steps)


def to_items(rolls: np.ndarray, spec) -> np.ndarray:
    """Canonical rolls -> the model's items: onset, frame and the derived chroma channel."""
    return with_chroma(rolls, spec)
