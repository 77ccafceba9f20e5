"""The key frame: every file is transposed so that its tonic is C (C major or C minor). Pieces
then share one frame, so the model learns harmony relative to the key, and major and minor
differ in their pitch classes (E/Eb, A/Ab, B/Bb), which the mode condition can use. The
pitch-class statistics, the key judge and the mode labels do not change under transposition.

The tonic comes from the file's first key-signature message (its sharps and flats) and key
analysis of its notes (major, or the relative minor); without a key signature, from key
analysis alone. Written files carry the frame's key signature (C or Cm, or the tonic asked for
with `gen sample --key`), so reading them back undoes the shift exactly.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from gencore.errors import GenError

from .midifile import ParsedMidi
from .options import DRUM_CHANNEL, WindowSpec

PITCH_CLASS = {"C": 0, "B#": 0, "C#": 1, "Db": 1, "D": 2, "D#": 3, "Eb": 3, "E": 4, "Fb": 4, "E#": 5, "F": 5,
               "F#": 6, "Gb": 6, "G": 7, "G#": 8, "Ab": 8, "A": 9, "A#": 10, "Bb": 10, "B": 11, "Cb": 11}
MAJOR_NAMES = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]  # by the tonic's pitch class
MINOR_NAMES = ["Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm"]  # by the tonic too


def signature_pitch_class(key: str) -> int | None:
    """A mido key name ('Bb', 'F#m', ...) -> pitch class of the major key with that signature."""
    minor = key.endswith("m")
    pc = PITCH_CLASS.get(key[:-1] if minor else key)
    if pc is None:
        return None
    return (pc + 3) % 12 if minor else pc


def _down(k: int) -> int:
    """k modulo 12 in -6..5: the loader's shift."""
    k %= 12
    return k - 12 if k > 5 else k


def _up(k: int) -> int:
    """k modulo 12 in -5..6: the writer's shift, so that _down(-_up(k)) == -_up(k) exactly."""
    k %= 12
    return k - 12 if k > 6 else k


def frame_of(parsed: ParsedMidi) -> int | None:
    """Pitch class of the file's tonic, or None without pitched notes."""
    from .metrics import keys_from_histograms

    hist = np.zeros((1, 12))
    for n in parsed.notes:
        if n.channel != DRUM_CHANNEL:
            hist[0, n.pitch % 12] += n.end - n.start
    tonic, mode = keys_from_histograms(hist)
    if tonic[0] < 0:
        return None
    for _, key in parsed.key_signatures[:1]:
        major = signature_pitch_class(key)
        if major is not None:  # the signature's accidentals, the analysis's mode
            return (major + 9) % 12 if mode[0] == 1 else major
    return int(tonic[0])


def to_frame(parsed: ParsedMidi, spec: WindowSpec) -> tuple[ParsedMidi, int]:
    """The file transposed so that its tonic is C (the nearest shift that keeps the most notes in
    the pitch window), and the shift in semitones."""
    pc = frame_of(parsed) if spec.normalise_key else None
    if not pc:
        return parsed, 0
    k0 = _down(-pc)
    pitched = [n.pitch for n in parsed.notes if n.channel != DRUM_CHANNEL]

    def outside(k: int) -> int:
        return sum(not spec.low <= p + k <= spec.high for p in pitched)

    shift = min((k0, k0 - 12, k0 + 12), key=lambda k: (outside(k), abs(k), k))
    return transpose(parsed, shift), shift


def transpose(parsed: ParsedMidi, shift: int) -> ParsedMidi:
    if shift == 0:
        return parsed
    notes = [n if n.channel == DRUM_CHANNEL else replace(n, pitch=n.pitch + shift) for n in parsed.notes]
    return replace(parsed, notes=[n for n in notes if 0 <= n.pitch <= 127])


def parse_key(value: str | None) -> int:
    """`gen sample --key D` -> the writer's shift from the C frame (0 for None or C). The key
    names the tonic; the mode is the sample's own, so `D` and `Dm` both mean tonic D."""
    if value is None:
        return 0
    text = str(value).strip()
    name = text[:1].upper() + text[1:]
    if name.endswith("m") and name[:-1] in PITCH_CLASS:
        name = name[:-1]
    pc = PITCH_CLASS.get(name)
    if pc is None:
        raise GenError(f"unknown key {value!r}", where="--key",
                       hint="give a tonic such as C, D, Bb or F# (a minor sample becomes D minor, and so on)")
    return _up(pc)


def signature_name(shift: int, minor: bool) -> str:
    """The key signature of the C frame moved by `shift` semitones, in the sample's mode."""
    pc = shift % 12
    return MINOR_NAMES[pc] if minor else MAJOR_NAMES[pc]
