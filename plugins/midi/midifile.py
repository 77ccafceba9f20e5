"""MIDI files in and out, with mido (docs/format.md, "Input formats").

Reading turns a file into notes on the 16th-note grid plus its time-signature changes; every
way a file can be corrupt becomes a `MidiReadError` with a short reason, so the loader can skip
it by name and go on. Writing turns notes into a type-1 file at 480 ticks per beat with tempo,
time-signature (the sample's metre) and key-signature meta messages at tick 0 and a note-off for every note-on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .options import DRUM_CHANNEL, OUTPUT_TPB, STEPS_PER_BEAT, Meter

FOUR_FOUR = Meter(4, 4)

MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_STEPS = 16 * 4096  # 16,384 quarter notes; longer files are skipped


class MidiReadError(Exception):
    """One MIDI file could not be used; `reason` says why in a few words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class GridNote:
    start: int  # 16th-note steps from the start of the file
    end: int  # exclusive, > start
    pitch: int
    channel: int
    track: int
    velocity: int


@dataclass
class ParsedMidi:
    notes: list[GridNote]
    time_signatures: list[tuple[int, int, int]]  # (step, numerator, denominator), sorted, first at 0
    n_tracks: int
    ticks_per_beat: int
    midi_type: int
    end_step: int = 0
    tempo_changes: int = 0
    key_signatures: list[tuple[int, str]] = field(default_factory=list)  # (step, mido key name), sorted


def _corrupt_errors() -> tuple[type[BaseException], ...]:
    from mido.midifiles.meta import KeySignatureError

    return (EOFError, OSError, KeySignatureError, IndexError, KeyError, ValueError, TypeError,
            ZeroDivisionError, OverflowError, UnicodeDecodeError)


def _reason(exc: BaseException) -> str:
    name = type(exc).__name__
    text = " ".join(str(exc).split())[:120]
    if isinstance(exc, EOFError):
        return f"truncated or empty file ({name})"
    if name == "KeySignatureError":
        return f"bad key signature: {text} ({name})"
    return f"{text or 'unreadable'} ({name})"


def read_midi(path: Path, tracks: Sequence[int] | None = None) -> ParsedMidi:
    """Parse one file; raise MidiReadError when it is corrupt or unusable."""
    import mido

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MidiReadError(f"cannot read it ({exc.strerror or exc})") from None
    if size > MAX_FILE_BYTES:
        raise MidiReadError(f"it is {size / 1e6:.0f} MB, over the {MAX_FILE_BYTES // 2**20} MiB limit")
    try:
        mf = mido.MidiFile(path, clip=False)
        return _grid(mf, tracks)
    except MidiReadError:
        raise
    except _corrupt_errors() as exc:
        raise MidiReadError(_reason(exc)) from None


def _grid(mf, tracks: Sequence[int] | None) -> ParsedMidi:
    tpb = mf.ticks_per_beat
    if mf.type not in (0, 1, 2):
        raise MidiReadError(f"unknown MIDI file type {mf.type} (a corrupt header)")
    if not isinstance(tpb, int) or not 0 < tpb < 0x8000:
        raise MidiReadError(f"unsupported time division {tpb} (SMPTE or a corrupt header)")
    if not mf.tracks:
        raise MidiReadError("it has no tracks")

    def step(tick: int) -> int:
        return (tick * STEPS_PER_BEAT * 2 + tpb) // (2 * tpb)  # round half up, exact integers

    scan = _TrackScan()
    for index, track in enumerate(mf.tracks):
        scan.read(track, index, tracks is None or index in tracks)
    if step(scan.end_tick) > MAX_STEPS:
        raise MidiReadError(f"it is longer than {MAX_STEPS // 16:,} bars")
    notes = [GridNote(step(s), max(step(e), step(s) + 1), pitch, channel, track, velocity)
             for s, e, pitch, channel, track, velocity in scan.notes]
    grid_signatures: list[tuple[int, int, int]] = []
    for tick, num, den in sorted(scan.signatures, key=lambda s: s[0]):
        at = step(tick)
        if grid_signatures and grid_signatures[-1][0] == at:
            grid_signatures[-1] = (at, num, den)
        else:
            grid_signatures.append((at, num, den))
    if not grid_signatures or grid_signatures[0][0] > 0:
        grid_signatures.insert(0, (0, 4, 4))  # the MIDI default
    end_step = max([step(scan.end_tick)] + [n.end for n in notes])
    keys = [(step(tick), key) for tick, key in sorted(scan.keys, key=lambda k: k[0])]
    return ParsedMidi(notes, grid_signatures, len(mf.tracks), tpb, mf.type, end_step, scan.tempo_changes, keys)


class _TrackScan:
    """Notes (in ticks) and meta events of every track, in file order."""

    def __init__(self) -> None:
        self.notes: list[tuple[int, int, int, int, int, int]] = []  # start, end, pitch, channel, track, velocity
        self.signatures: list[tuple[int, int, int]] = []
        self.keys: list[tuple[int, str]] = []
        self.tempo_changes = 0
        self.end_tick = 0

    def read(self, track, index: int, use: bool) -> None:
        tick = 0
        active: dict[tuple[int, int], tuple[int, int]] = {}  # (channel, pitch) -> (start tick, velocity)
        for msg in track:
            tick += msg.time
            if msg.is_meta:
                self._meta(msg, tick)
            elif use and msg.type in ("note_on", "note_off"):
                key = (msg.channel, msg.note)
                if key in active:  # a note-off, or a repeated note before its note-off: the old one ends here
                    self._close(active, key, tick, index)
                if msg.type == "note_on" and msg.velocity > 0:
                    active[key] = (tick, msg.velocity)
        for key in list(active):  # notes never switched off end with their track
            self._close(active, key, tick, index)
        self.end_tick = max(self.end_tick, tick)

    def _meta(self, msg, tick: int) -> None:
        if msg.type == "time_signature":
            self.signatures.append((tick, msg.numerator, msg.denominator))
        elif msg.type == "set_tempo":
            self.tempo_changes += 1
        elif msg.type == "key_signature":
            self.keys.append((tick, msg.key))

    def _close(self, active: dict, key: tuple[int, int], at: int, index: int) -> None:
        start, velocity = active.pop(key)
        self.notes.append((start, at, key[1], key[0], index, velocity))


# -- writing ---------------------------------------------------------------------------------------
@dataclass
class OutNote:
    start: int  # steps
    end: int  # steps, exclusive
    pitch: int
    velocity: int
    drum: bool = False


def accent(step: int, base: int, meter: Meter = FOUR_FOUR) -> int:
    """A gentle accent that follows the bar: strong downbeats, a lighter accent on the middle beat
    of bars with an even number of beats (beat 3 of 4/4, the second dotted quarter of 6/8), plain
    beats, then lighter off-beat eighths and 16ths."""
    position = step % meter.steps_per_bar
    beat, inside = divmod(position, meter.beat_steps)
    if position == 0:
        delta = 12
    elif inside == 0 and meter.beats % 2 == 0 and meter.beats > 2 and beat == meter.beats // 2:
        delta = 6
    elif inside == 0:
        delta = 0
    elif inside % 2 == 0:
        delta = -6
    else:
        delta = -10
    return max(1, min(127, base + delta))


def build_midi(notes: Iterable[OutNote], total_steps: int, *, tempo_bpm: float, key: str | None,
               program: int = 0, name: str = "gen", meter: Meter = FOUR_FOUR):
    """A type-1 mido.MidiFile: a conductor track with the meta messages at tick 0, a pitched track
    (channel 1) and, when there are drum notes, a drum track (channel 10)."""
    import mido

    per_step = OUTPUT_TPB // STEPS_PER_BEAT
    mf = mido.MidiFile(type=1, ticks_per_beat=OUTPUT_TPB)
    end_tick = max(0, total_steps) * per_step
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("track_name", name=name, time=0))
    clocks = 24 * 4 // meter.denominator * (3 if meter.compound else 1)  # MIDI clocks per beat
    conductor.append(mido.MetaMessage("time_signature", numerator=meter.numerator, denominator=meter.denominator,
                                      clocks_per_click=clocks, notated_32nd_notes_per_beat=8, time=0))
    conductor.append(mido.MetaMessage("key_signature", key=key or "C", time=0))
    conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm), time=0))
    conductor.append(mido.MetaMessage("end_of_track", time=end_tick))
    mf.tracks.append(conductor)
    notes = list(notes)
    for drum in (False, True):
        part = [n for n in notes if n.drum == drum]
        if drum and not part:
            continue
        channel = DRUM_CHANNEL if drum else 0
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name="drums" if drum else "notes", time=0))
        if not drum:
            track.append(mido.Message("program_change", channel=channel, program=program, time=0))
        events = []  # (tick, 0 = off first, pitch, message)
        for n in part:
            events.append((n.start * per_step, 1, n.pitch,
                           mido.Message("note_on", channel=channel, note=n.pitch, velocity=n.velocity)))
            events.append((n.end * per_step, 0, n.pitch,
                           mido.Message("note_off", channel=channel, note=n.pitch, velocity=0)))
        events.sort(key=lambda e: (e[0], e[1], e[2]))
        now = 0
        for tick, _, _, msg in events:
            track.append(msg.copy(time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
        mf.tracks.append(track)
    return mf
