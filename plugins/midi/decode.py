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

A **monophonic** corpus (one line, told from the data by the loader) decodes as one line
(`decode_line`): at each step a note starts with the summed onset probability of all pitches
above ONSET_FLOOR (the model's expected number of onsets there, scaled so that the samples have
the training phrases' notes per window), on a pitch drawn in proportion to the onset
probabilities above LINE_PITCH_FLOOR; it lasts at least `min_steps`, then while the summed frame
probability (the expected number of sounding pitches) stays above the threshold, until the next
onset. Where nothing sounds but that sum is above the threshold (a window that opens mid-note),
a note starts on a pitch drawn from the frames. No chords, no clusters. Measured on the `ryans`
fiddle tunes: with the pitch drawn only from onsets above 5%, samples used too few pitch classes
(5.5 against the training windows' [6, 8]) and left beats empty that real tunes never do.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .options import WindowSpec
from .roll import FRAME, ONSET, meters_of, note_lengths, note_starts, with_chroma, with_meter_row

BISECTION_STEPS = 22
MIN_THRESHOLD, MAX_THRESHOLD = 1e-4, 0.995
DEFAULT_MIN_STEPS = 2
ONSET_FLOOR = 0.05
SHARED_NOISE_SEED = 12_345
LINE_PITCH_FLOOR = 0.02


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


def decode_line(probs: np.ndarray, frame_threshold: float, onset_scale: float = 1.0, *,
                rng: np.random.Generator | None = None, shared_noise: bool = False,
                min_steps: int = DEFAULT_MIN_STEPS) -> np.ndarray:
    """Probabilities (n, >=2, rows, steps) -> rolls (n, 2, rows, steps) holding one line: at most
    one sounding pitch per step."""
    p_onset, p_frame = probs[:, ONSET], probs[:, FRAME]  # (n, rows, steps)
    n, rows, steps = p_onset.shape
    draws = _draws((n, 2, steps), rng, shared_noise)
    # when: the expected number of onsets at the step, over the cells above the onset floor
    start_total = np.where(p_onset >= ONSET_FLOOR, p_onset, 0.0).sum(axis=1)  # (n, steps)
    starts_here = draws[:, 0] < np.minimum(1.0, onset_scale * start_total)
    # which pitch: drawn from the onsets above the (lower) pitch floor, or for a note that fills a
    # silence the model says should sound, from the frames
    by_onset = _drawn_rows(np.where(p_onset >= LINE_PITCH_FLOOR, p_onset, 0.0), draws[:, 1])
    frame_weights = np.where(p_frame >= LINE_PITCH_FLOOR, p_frame, 0.0)
    by_frame = _drawn_rows(frame_weights, draws[:, 1])
    fillable = frame_weights.any(axis=1)  # (n, steps)
    sounding_total = p_frame.sum(axis=1)  # (n, steps): expected sounding pitches
    out = np.zeros((n, 2, rows, steps), dtype=np.uint8)
    current = np.full(n, -1)
    age = np.zeros(n, dtype=np.int64)
    items = np.arange(n)
    for t in range(steps):
        holding = current >= 0
        young = holding & (age < min_steps)  # a note lasts at least min_steps: no new onset yet
        expected = sounding_total[:, t] >= frame_threshold
        filled = ~holding & ~starts_here[:, t] & expected & fillable[:, t]
        new = (starts_here[:, t] | filled) & ~young
        keep = holding & ~new & (young | expected)
        pitch = np.where(filled, by_frame[:, t], by_onset[:, t])
        current = np.where(new, pitch, np.where(keep, current, -1))
        age = np.where(new, 1, age + 1)
        sounding = current >= 0
        out[items[sounding], FRAME, current[sounding], t] = 1
        out[items[new], ONSET, pitch[new], t] = 1
    return out


def _drawn_rows(weights: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Per item and step, the row drawn in proportion to `weights` (n, rows, steps) by the uniform
    `draws` (n, steps)."""
    cumulative = np.cumsum(weights, axis=1) / np.maximum(weights.sum(axis=1), 1e-12)[:, None]
    return np.minimum((cumulative < draws[:, None]).sum(axis=1), weights.shape[1] - 1)


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


def calibrate_line(probs: np.ndarray, frame_density: float, onset_density: float, *, rng_seed: int = 0,
                   shared_noise: bool = False, min_steps: int = DEFAULT_MIN_STEPS) -> tuple[float, float]:
    """For one line: the onset scale that gives the training phrases' notes per window (their
    share of onset cells), then the frame threshold that gives their share of sounding cells.
    Returns (threshold, scale)."""
    if not len(probs):
        return 0.5, 1.0
    rows, steps = probs.shape[2], probs.shape[3]
    target_notes = max(float(onset_density) * rows * steps, 0.5)

    def decoded(t: float, scale: float) -> np.ndarray:
        return decode_line(probs, t, scale, rng=np.random.default_rng(rng_seed), shared_noise=shared_noise,
                           min_steps=min_steps)

    lo, hi = np.log(1e-2), np.log(1e2)
    for _ in range(BISECTION_STEPS):  # notes per window rise with the scale
        mid = 0.5 * (lo + hi)
        notes = decoded(0.5, float(np.exp(mid)))[:, ONSET].sum(axis=(1, 2)).mean()
        lo, hi = (mid, hi) if notes < target_notes else (lo, mid)
    scale = float(np.exp(0.5 * (lo + hi)))
    target = min(max(float(frame_density), 1.0 / (rows * steps * 4)), 1.0 / rows)
    threshold = _bisect(lambda t: float(decoded(t, scale)[:, FRAME].mean()), target)
    return threshold, scale


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


def default_min_steps(meta: dict[str, Any]) -> int:
    """The shortest decoded note: 2 steps (an eighth), or 1 for a corpus whose training phrases
    hold many 16th notes (under 80% of their notes last 2 steps or more; the loader records
    it). Runs made before it was recorded keep 2."""
    return int(meta.get("min_steps", DEFAULT_MIN_STEPS))


def class_part(name: str | None, meta: dict[str, Any]) -> str | None:
    """The class of a `--class` value without its metre: `minor+6/8` -> `minor`; a metre alone -> None."""
    if name is None:
        return None
    parts = [p for p in str(name).split("+") if p in (meta.get("classes") or [])]
    return parts[0] if parts else (None if meta.get("meter_classes") else name)


def class_density(meta: dict[str, Any], name: str | None, channel: int = FRAME) -> float:
    """The training share of sounding cells (the frame channel) or of onsets, of one class or of all."""
    density = meta.get("density") or {}
    values = density.get(class_part(name, meta)) or density.get("all") or [0.02, 0.085]
    return float(values[channel])


def is_line(meta: dict[str, Any]) -> bool:
    return meta.get("texture") == "monophonic"


@dataclass(frozen=True)
class Rule:
    """How one group of windows (a class, in one metre) decodes."""

    meter: str
    threshold: float
    onset_scale: float = 1.0


def _body(probs: np.ndarray, spec: WindowSpec, meter: str) -> np.ndarray:
    """The note rows (pitches and drums) over the steps of the metre's window."""
    return probs[:, :, :spec.pitch_rows + spec.drum_rows, :spec.meter_steps(meter)]


def calibrate_rule(probs: np.ndarray, spec: WindowSpec, meta: dict[str, Any], name: str | None, meter: str, *,
                   rng_seed: int = 0, shared_noise: bool = False, min_steps: int = DEFAULT_MIN_STEPS) -> Rule:
    """The decoding rule at which `probs` (one class, one metre) decode to the training density."""
    body = _body(probs, spec, meter)
    density = class_density(meta, name)
    if is_line(meta):
        threshold, scale = calibrate_line(body[:, :, :spec.pitch_rows], density, class_density(meta, name, ONSET),
                                          rng_seed=rng_seed, shared_noise=shared_noise, min_steps=min_steps)
        return Rule(meter, threshold, scale)
    return Rule(meter, calibrate(body, density, rng_seed=rng_seed, shared_noise=shared_noise, min_steps=min_steps))


def decode_rule(probs: np.ndarray, spec: WindowSpec, meta: dict[str, Any], rule: Rule, *,
                rng: np.random.Generator | None = None, shared_noise: bool = False,
                min_steps: int = DEFAULT_MIN_STEPS) -> np.ndarray:
    """Probabilities (n, 3, rows, steps) -> rolls (n, 2, rows, steps): the metre's window decoded,
    silence after it, the metre row left empty (to_items fills it)."""
    body = _body(probs, spec, rule.meter)
    out = np.zeros((len(probs), 2, spec.rows, spec.steps), dtype=np.uint8)
    p, length = spec.pitch_rows, body.shape[-1]
    if is_line(meta):
        out[:, :, :p, :length] = decode_line(body[:, :, :p], rule.threshold, rule.onset_scale, rng=rng,
                                             shared_noise=shared_noise, min_steps=min_steps)
        if spec.drum_rows:
            out[:, :, p:p + spec.drum_rows, :length] = decode(body[:, :, p:], rule.threshold, rng=rng,
                                                              shared_noise=shared_noise, min_steps=min_steps)
    else:
        out[:, :, :body.shape[2], :length] = decode(body, rule.threshold, rng=rng, shared_noise=shared_noise,
                                                    min_steps=min_steps)
    return out


def to_rolls(items: np.ndarray, data_spec_meta: dict[str, Any], min_steps: int | None = None) -> np.ndarray:
    """Items from anywhere -> canonical 2-channel rolls. Probabilities with no run at hand
    (previews, reconstructions, interpolation paths) are decoded with one shared noise field and
    a rule calibrated on the batch itself (per metre) against the training density."""
    meta = data_spec_meta
    spec = WindowSpec.from_json(meta["window"])
    min_steps = min_steps or default_min_steps(meta)
    note_rows = spec.pitch_rows + spec.drum_rows
    if is_binary(items):
        out = np.zeros((len(items), 2, spec.rows, items.shape[-1]), dtype=np.uint8)
        out[:, :, :note_rows] = canonical(items[:, :2, :note_rows].astype(np.uint8))
        return out
    meters = np.array(meters_of(items, spec))
    out = np.zeros((len(items), 2, spec.rows, spec.steps), dtype=np.uint8)
    for meter in dict.fromkeys(meters.tolist()):
        sel = meters == meter
        rule = calibrate_rule(items[sel], spec, meta, None, meter, shared_noise=True, min_steps=min_steps)
        out[sel] = decode_rule(items[sel], spec, meta, rule, shared_noise=True, min_steps=min_steps)
    return out


def to_items(rolls: np.ndarray, spec: WindowSpec, meters: list[str]) -> np.ndarray:
    """Canonical rolls -> the model's items: onset, frame, the derived chroma channel, and (with
    several metres) the metre row."""
    return with_meter_row(with_chroma(rolls, spec), meters, spec)
