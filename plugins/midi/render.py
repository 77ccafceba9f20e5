"""Pictures and sound of piano rolls: PNG previews, and a WAV preview from a small additive
synthesiser (numpy and the standard library's `wave`, no system dependency)."""
from __future__ import annotations

import wave
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .midifile import OutNote
from .options import DRUM_ROWS, STEPS_PER_BEAT, Meter, WindowSpec
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
LABEL_PX, HEADER_PX, FOOT_PX = 30, 12, 5  # room for the pitch names on the left and the bar numbers on top
LABEL_COLOUR = (60, 60, 60)
NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
SAMPLE_RATE = 22_050


def roll_image(roll: np.ndarray, spec: WindowSpec, meter: str = "4/4") -> "Image.Image":
    """One binary roll (2, rows, steps) as an RGB picture, high pitches at the top: the pitch name
    of every C (and of the lowest and highest row) on the left, bar numbers along the top, bar
    lines and beat lines of the roll's metre, drum rows named."""
    from PIL import Image, ImageDraw

    m = Meter.of(meter)
    roll = roll[:, :spec.pitch_rows + spec.drum_rows]  # not the metre row
    body = _cells(roll, spec, m)
    rows = roll.shape[1]
    image = Image.new("RGB", (LABEL_PX + body.shape[1], HEADER_PX + body.shape[0] + FOOT_PX), BACKGROUND)
    image.paste(Image.fromarray(np.ascontiguousarray(body), mode="RGB"), (LABEL_PX, HEADER_PX))
    draw = ImageDraw.Draw(image)
    for r, label in _row_labels(spec, rows).items():
        y = HEADER_PX + (rows - 1 - r) * ROW_PX + ROW_PX // 2
        draw.text((LABEL_PX - 3, y), label, fill=LABEL_COLOUR, anchor="rm", font=_font())
        draw.line([(LABEL_PX - 2, y), (LABEL_PX - 1, y)], fill=LABEL_COLOUR)
    for bar, s in enumerate(range(0, roll.shape[2], m.steps_per_bar)):
        x = LABEL_PX + s * STEP_PX
        draw.line([(x, 0), (x, HEADER_PX - 1)], fill=BAR_LINE)
        draw.text((x + 2, 1), str(bar + 1), fill=LABEL_COLOUR, anchor="la", font=_font())
    return image


def _font():
    from PIL import ImageFont

    return ImageFont.load_default()


def _row_labels(spec: WindowSpec, rows: int) -> dict[int, str]:
    """Row index -> name: every C, the lowest and highest pitch, and the drum rows."""
    labels = {}
    for r in range(spec.pitch_rows):
        pitch = spec.low + r
        if pitch % 12 == 0 or r in (0, spec.pitch_rows - 1):
            labels[r] = pitch_name(pitch)
    for i in range(spec.drum_rows):
        labels[spec.pitch_rows + i] = DRUM_ROWS[i][0]
    return {r: name for r, name in labels.items() if r < rows}


def pitch_name(pitch: int) -> str:
    """MIDI note -> scientific pitch name: 60 -> C4."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def _cells(roll: np.ndarray, spec: WindowSpec, meter: Meter) -> np.ndarray:
    """The notes on a keyboard background, with beat and bar lines on the empty cells."""
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
    canvas[frame] = np.array(FRAME_COLOUR, dtype=np.uint8)
    canvas[onset] = ONSET_COLOUR
    if spec.drum_rows:
        drums = frame | onset
        drums[:spec.pitch_rows] = False
        canvas[drums] = DRUM_COLOUR
    big = canvas[::-1].repeat(ROW_PX, axis=0).repeat(STEP_PX, axis=1)
    empty = ~(frame | onset)[::-1].repeat(ROW_PX, axis=0).repeat(STEP_PX, axis=1)
    for s in range(0, steps, meter.beat_steps):
        x = s * STEP_PX
        line = BAR_LINE if s % meter.steps_per_bar == 0 else BEAT_LINE
        big[:, x][empty[:, x]] = line
    return big


def preview(rolls: np.ndarray, spec: WindowSpec, columns: int, meters: list[str] | None = None) -> "Image.Image":
    from PIL import Image

    if len(rolls) == 0:
        return Image.new("RGB", (64, 64), (128, 128, 128))
    meters = meters or ["4/4"] * len(rolls)
    cells = [roll_image(r[..., :r.shape[-1] // spec.steps * spec.meter_steps(m) or r.shape[-1]], spec, m)
             for r, m in zip(rolls, meters)]
    columns = max(1, min(int(columns), len(cells)))
    n_rows = -(-len(cells) // columns)
    cw, ch = max(c.size[0] for c in cells), max(c.size[1] for c in cells)
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
