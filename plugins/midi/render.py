"""Pictures and sound of piano rolls: PNG previews, and a WAV preview from a small additive
synthesiser (numpy and the standard library's `wave`, no system dependency)."""
from __future__ import annotations

import wave
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .midifile import OutNote
from .options import STEPS_PER_BAR, STEPS_PER_BEAT, WindowSpec
from .roll import FRAME, ONSET

if TYPE_CHECKING:
    from PIL import Image

ROW_PX, STEP_PX = 3, 4
BACKGROUND = (250, 250, 247)
BLACK_KEY_ROW = (236, 236, 232)
C_ROW = (222, 226, 236)
BEAT_LINE = (214, 214, 210)
BAR_LINE = (150, 150, 150)
FRAME_COLOUR = (62, 112, 178)
ONSET_COLOUR = (16, 40, 92)
DRUM_COLOUR = (186, 84, 48)
GUTTER = 4
SAMPLE_RATE = 22_050


def roll_image(roll: np.ndarray, spec: WindowSpec) -> "Image.Image":
    """One binary roll (2, rows, steps) as an RGB picture, high pitches at the top."""
    from PIL import Image

    rows, steps = roll.shape[1], roll.shape[2]
    canvas = np.empty((rows, steps, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    for r in range(spec.pitch_rows):
        pc = (spec.low + r) % 12
        if pc in (1, 3, 6, 8, 10):
            canvas[r] = BLACK_KEY_ROW
        elif pc == 0:
            canvas[r] = C_ROW
    frame = roll[FRAME] > 0
    onset = roll[ONSET] > 0
    colour = np.array(FRAME_COLOUR, dtype=np.uint8)
    canvas[frame] = colour
    canvas[onset] = ONSET_COLOUR
    if spec.drum_rows:
        drums = (frame | onset)
        drums[:spec.pitch_rows] = False
        canvas[drums] = DRUM_COLOUR
    big = canvas[::-1].repeat(ROW_PX, axis=0).repeat(STEP_PX, axis=1)
    # grid lines on the empty cells only, so notes stay solid
    empty = ~np.concatenate([frame | onset])[::-1].repeat(ROW_PX, axis=0).repeat(STEP_PX, axis=1)
    for s in range(0, steps, STEPS_PER_BEAT):
        x = s * STEP_PX
        line = BAR_LINE if s % STEPS_PER_BAR == 0 else BEAT_LINE
        big[:, x][empty[:, x]] = line
    # the first pixel of every note is darker: onsets read as note starts
    return Image.fromarray(np.ascontiguousarray(big), mode="RGB")


def preview(rolls: np.ndarray, spec: WindowSpec, columns: int) -> "Image.Image":
    from PIL import Image

    if len(rolls) == 0:
        return Image.new("RGB", (64, 64), (128, 128, 128))
    cells = [roll_image(r, spec) for r in rolls]
    columns = max(1, min(int(columns), len(cells)))
    n_rows = -(-len(cells) // columns)
    cw, ch = cells[0].size
    canvas = Image.new("RGB", (columns * cw + (columns - 1) * GUTTER, n_rows * ch + (n_rows - 1) * GUTTER),
                       (96, 96, 96))
    for i, cell in enumerate(cells):
        r, c = divmod(i, columns)
        canvas.paste(cell, (c * (cw + GUTTER), r * (ch + GUTTER)))
    return canvas


def synthesise(notes: Sequence[OutNote], total_steps: int, tempo_bpm: float) -> np.ndarray:
    """A mono 16-bit WAV signal: a soft organ-like tone per note (three harmonics with a short
    attack and release), drum hits as decaying noise."""
    step_s = 60.0 / tempo_bpm / STEPS_PER_BEAT
    length = int((total_steps * step_s + 0.5) * SAMPLE_RATE)
    out = np.zeros(length, dtype=np.float64)
    rng = np.random.default_rng(0)
    for n in notes:
        start = int(n.start * step_s * SAMPLE_RATE)
        dur = max(1, int((n.end - n.start) * step_s * SAMPLE_RATE))
        amp = n.velocity / 127.0
        if n.drum:
            size = min(int(0.15 * SAMPLE_RATE), length - start)
            if size <= 0:
                continue
            env = np.exp(-np.arange(size) / (0.03 * SAMPLE_RATE))
            out[start:start + size] += 0.3 * amp * env * rng.uniform(-1, 1, size)
            continue
        release = int(0.05 * SAMPLE_RATE)
        size = min(dur + release, length - start)
        if size <= 0:
            continue
        t = np.arange(size) / SAMPLE_RATE
        freq = 440.0 * 2.0 ** ((n.pitch - 69) / 12.0)
        tone = np.sin(2 * np.pi * freq * t) + 0.35 * np.sin(4 * np.pi * freq * t) + 0.12 * np.sin(6 * np.pi * freq * t)
        env = np.minimum(1.0, t / 0.01)
        tail = np.arange(size) >= dur
        env[tail] *= np.clip(1.0 - (np.arange(size)[tail] - dur) / release, 0.0, 1.0)
        out[start:start + size] += 0.18 * amp * env * tone
    peak = np.abs(out).max() if len(out) else 0.0
    if peak > 0.95:
        out *= 0.95 / peak
    return (out * 32767).astype("<i2")


def write_wav(path: Path, signal: np.ndarray) -> None:
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(SAMPLE_RATE)
        fh.writeframes(signal.tobytes())
