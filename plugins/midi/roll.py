"""Piano rolls: notes <-> (2, rows, steps) grids, 4/4 windows, transposition, and decoding.

Channel 0 holds onsets, channel 1 holds the frames where a note sounds (its onset included).
Row r is MIDI pitch `low + r`; with `--drums rows`, 8 drum rows follow the pitch rows. Keeping
onsets apart from frames is what lets two repeated notes survive: their frames touch, but the
second one has its own onset.

The model's items add channel 2, derived from the frames: the chroma, i.e. which pitch classes
sound at each step, repeated in every octave's row. It is redundant, but dense (about 27% of the
cells of a chorale roll are on, against 8% of the frames), and it gives the VAE a strong harmonic
signal: without it the default VAE sat on the collapsed marginal for 1,000-2,000 steps or more
(measured on the chorales); with it, the latent is in use within the first epoch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .midifile import FOUR_FOUR, OutNote, ParsedMidi, accent
from .options import DRUM_CHANNEL, DRUM_ROWS, Meter, WindowSpec, meter_supported

ONSET, FRAME, CHROMA = 0, 1, 2
CHANNELS = 3
MAX_EMPTY_BEATS = 0.5  # windows with more empty beats than this are not training material
_DRUM_ROW_OF = {note: row for row, (_, notes) in enumerate(DRUM_ROWS) for note in notes}


@dataclass
class FileRoll:
    roll: np.ndarray  # (2, rows, steps) uint8
    out_of_range: int  # pitched notes dropped for lying outside the pitch window
    drum_notes: int  # drum notes seen (kept as rows, or dropped)
    notes: int  # notes placed on the grid


def file_roll(parsed: ParsedMidi, spec: WindowSpec) -> FileRoll:
    steps = max(parsed.end_step, 1)
    roll = np.zeros((2, spec.rows, steps), dtype=np.uint8)
    out_of_range = drums = placed = 0
    for n in parsed.notes:
        if n.channel == DRUM_CHANNEL:
            drums += 1
            if spec.drums != "rows" or n.pitch not in _DRUM_ROW_OF:
                continue
            row = spec.pitch_rows + _DRUM_ROW_OF[n.pitch]
            end = n.start + 1  # drum hits are onsets; their length means nothing
        else:
            if not spec.low <= n.pitch <= spec.high:
                out_of_range += 1
                continue
            row = n.pitch - spec.low
            end = n.end
        roll[ONSET, row, n.start] = 1
        roll[FRAME, row, n.start:end] = 1
        placed += 1
    return FileRoll(roll, out_of_range, drums, placed)


@dataclass
class Window:
    meter: str  # the metre it was cut in, e.g. "6/8"
    roll: np.ndarray  # (2, rows, bars x the metre's steps per bar), not yet padded


def segments(parsed: ParsedMidi) -> list[tuple[int, int, Meter | None]]:
    """(start, stop, metre) per time-signature stretch; None for a metre off the 16th grid."""
    sigs = parsed.time_signatures
    out = []
    for i, (at, num, den) in enumerate(sigs):
        stop = sigs[i + 1][0] if i + 1 < len(sigs) else parsed.end_step
        out.append((at, stop, Meter(num, den) if meter_supported(num, den) else None))
    return out


def window_starts(parsed: ParsedMidi, spec: WindowSpec) -> list[tuple[int, str]]:
    """(start step, metre) of every window: whole bars of each stretch's own metre, from the
    stretch's start, every `hop` bars, whole windows only, in the metres the spec allows. A pickup
    written as a stretch of its own length (a time signature such as 2/16 before the tune's 4/4,
    as notation programs mark partial bars) gives no window, and the tune's windows start on its
    first full bar."""
    starts: list[tuple[int, str]] = []
    for at, stop, meter in segments(parsed):
        if meter is None or (spec.meters is not None and meter.name not in spec.meters):
            continue
        length = spec.meter_steps(meter.name)
        hop = min(spec.hop, spec.bars_of(meter.name)) * meter.steps_per_bar
        s = at
        while s + length <= stop:
            starts.append((s, meter.name))
            s += hop
    return starts


def empty_beat_fraction(window: np.ndarray, meter: Meter = FOUR_FOUR) -> float:
    frames = window[FRAME].reshape(window.shape[1], -1, meter.beat_steps)
    return float((frames.max(axis=(0, 2)) == 0).mean())


def windows_of(parsed: ParsedMidi, spec: WindowSpec) -> tuple[list[Window], FileRoll, int]:
    """All training windows of one file, the file roll, and how many windows were dropped as
    (mostly) empty."""
    fr = file_roll(parsed, spec)
    out, dropped = [], 0
    for s, name in window_starts(parsed, spec):
        meter = Meter.of(name)
        length = spec.meter_steps(name)
        w = fr.roll[:, :, s:s + length]
        if w.shape[2] < length:
            continue
        if not w[FRAME].any() or empty_beat_fraction(w, meter) > MAX_EMPTY_BEATS:
            dropped += 1
            continue
        out.append(Window(name, w))
    return out, fr, dropped


def padded(window: np.ndarray, steps: int) -> np.ndarray:
    """A window (..., length) followed by silence up to `steps`."""
    if window.shape[-1] == steps:
        return window
    out = np.zeros((*window.shape[:-1], steps), dtype=window.dtype)
    out[..., :window.shape[-1]] = window
    return out


def first_window(fr: FileRoll, parsed: ParsedMidi, spec: WindowSpec) -> tuple[np.ndarray, str]:
    """The window a single input file stands for (reconstruct, interpolate), padded to the item
    length, and its metre: the first window with notes in one of the run's metres, or else the
    file's start, read in the run's main metre."""
    for s, name in window_starts(parsed, spec):
        w = fr.roll[:, :, s:s + spec.meter_steps(name)]
        if w[FRAME].any():
            return padded(w, spec.steps), name
    main = (spec.meters or (FOUR_FOUR.name,))[0]
    take = min(spec.meter_steps(main), fr.roll.shape[2])
    w = np.zeros((2, fr.roll.shape[1], spec.steps), dtype=np.uint8)
    w[:, :, :take] = fr.roll[:, :, :take]
    return w, main


def meter_pattern(meter: str, spec: WindowSpec) -> np.ndarray:
    """The metre row's three channels (3, steps): bar starts, beat starts, the window's extent."""
    m = Meter.of(meter)
    steps = np.arange(spec.steps)
    inside = steps < spec.meter_steps(meter)
    return np.stack([inside & (steps % m.steps_per_bar == 0), inside & (steps % m.beat_steps == 0),
                     inside]).astype(np.uint8)


def with_meter_row(items: np.ndarray, meters: list[str], spec: WindowSpec) -> np.ndarray:
    """Items (n, 3, rows, steps) with the metre row of each item's metre filled in (a no-op for
    runs of one metre)."""
    if spec.meter_row is None:
        return items
    patterns = {m: meter_pattern(m, spec) for m in dict.fromkeys(meters)}
    for i, m in enumerate(meters):
        items[i, :, spec.meter_row] = patterns[m]
    return items


def meters_of(items: np.ndarray, spec: WindowSpec) -> list[str]:
    """Each item's metre, read from its metre row (decoded or probabilities alike): the run's
    metre whose pattern it matches best; the run's only metre when it has one."""
    names = list(spec.meters or (FOUR_FOUR.name,))
    if spec.meter_row is None or items.shape[-3] < 3:
        return [names[0]] * len(items)
    row = items[:, :, spec.meter_row].reshape(len(items), -1).astype(np.float64)  # (n, 3 x steps)
    patterns = np.stack([meter_pattern(m, spec).reshape(-1) for m in names]).astype(np.float64)
    distance = np.abs(row[:, None, :] - patterns[None]).sum(axis=2)  # (n, metres)
    return [names[i] for i in distance.argmin(axis=1)]


def transpositions(windows: np.ndarray, spec: WindowSpec) -> np.ndarray:
    """Copies shifted by -T..+T semitones, each only where every note stays in the pitch window.
    Drum rows never move."""
    if spec.transpose == 0 or len(windows) == 0:
        return windows
    p = spec.pitch_rows
    occupied = windows[:, FRAME, :p].any(axis=2) | windows[:, ONSET, :p].any(axis=2)  # (n, p)
    rows = np.arange(p)
    lowest = np.where(occupied.any(1), np.where(occupied, rows, p).min(1), 0)
    highest = np.where(occupied.any(1), np.where(occupied, rows, -1).max(1), p - 1)
    out = [windows]
    for k in range(-spec.transpose, spec.transpose + 1):
        if k == 0:
            continue
        fits = (lowest + k >= 0) & (highest + k <= p - 1)
        chosen = windows[fits]
        if not len(chosen):
            continue
        shifted = np.zeros_like(chosen)
        if k > 0:
            shifted[:, :, k:p] = chosen[:, :, :p - k]
        else:
            shifted[:, :, :p + k] = chosen[:, :, -k:p]
        shifted[:, :, p:] = chosen[:, :, p:]
        out.append(shifted)
    return np.concatenate(out)


# -- decoding ------------------------------------------------------------------------------------
def note_starts(rolls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Binary rolls (..., 2, rows, steps) -> (sounding, starts), both (..., rows, steps) bool.

    A cell sounds when its frame or onset is on. A note starts where a cell sounds and either has
    an onset or the cell before it is silent, so a lone onset is a one-step note and a frame
    without an onset still starts a note."""
    on = (rolls[..., FRAME, :, :] > 0) | (rolls[..., ONSET, :, :] > 0)
    before = np.zeros_like(on)
    before[..., 1:] = on[..., :-1]
    starts = on & ((rolls[..., ONSET, :, :] > 0) | ~before)
    return on, starts


def note_lengths(on: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per start cell (in `np.nonzero(starts)` order), the note's length in steps."""
    steps = on.shape[-1]
    ids = np.cumsum(starts, axis=-1)  # note number along each row, 1-based
    row_index = np.arange(int(np.prod(on.shape[:-1]))).reshape(on.shape[:-1])[..., None]
    keys = row_index * (steps + 1) + ids
    counts = np.bincount(keys[on], minlength=int(keys.max()) + 1 if keys.size else 1)
    return counts[keys[starts]]


def roll_to_notes(roll: np.ndarray, spec: WindowSpec, velocity: int, meter: Meter = FOUR_FOUR) -> list[OutNote]:
    """One binary roll (2, rows, steps) -> notes for writing, with velocities accented by the bar."""
    on, starts = note_starts(roll[:, :spec.pitch_rows + spec.drum_rows])
    lengths = note_lengths(on, starts)
    notes = []
    for (row, step), length in zip(zip(*np.nonzero(starts)), lengths):
        row, step, length = int(row), int(step), int(length)
        if row < spec.pitch_rows:
            notes.append(OutNote(step, step + length, spec.low + row, accent(step, velocity, meter)))
        else:
            drum_note = DRUM_ROWS[row - spec.pitch_rows][1][0]
            notes.append(OutNote(step, step + 1, drum_note, accent(step, velocity, meter), drum=True))
    notes.sort(key=lambda n: (n.start, n.pitch))
    return notes


def with_chroma(rolls: np.ndarray, spec: WindowSpec) -> np.ndarray:
    """Rolls (n, 2, rows, steps) -> items (n, 3, rows, steps) with the derived chroma channel."""
    p = spec.pitch_rows
    pcs = (spec.low + np.arange(p)) % 12
    frames = rolls[:, FRAME, :p] > 0
    chroma = np.zeros((rolls.shape[0], 12, rolls.shape[-1]), dtype=bool)
    for pc in range(12):
        rows = pcs == pc
        if rows.any():
            chroma[:, pc] = frames[:, rows].any(axis=1)
    out = np.zeros((rolls.shape[0], CHANNELS, *rolls.shape[2:]), dtype=np.uint8)
    out[:, :2] = rolls[:, :2]
    out[:, CHROMA, :p] = chroma[:, pcs]
    return out
