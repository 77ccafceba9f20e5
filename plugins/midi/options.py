"""Parsing the midi domain's options. Pure Python: importing this never imports torch, mido or
music21. Every bad value is a GenError that names the option and gives an example."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from gencore.errors import GenError

STEPS_PER_BEAT = 4  # a 16th-note grid: 4 steps per quarter note
BEATS_PER_BAR = 4  # of 4/4, the MIDI default metre
STEPS_PER_BAR = STEPS_PER_BEAT * BEATS_PER_BAR  # of 4/4
DEFAULT_METER = "4/4"
METER_DENOMINATORS = (1, 2, 4, 8, 16)  # a bar must be whole 16th steps
MAX_METER_NUMERATOR = 32
BAR_CHOICES = (2, 4)  # window lengths a model trains on
MAX_SAMPLE_BARS = 64  # stitched samples
DEFAULT_BARS = 4
DEFAULT_PITCH_RANGE = "36-83"  # 48 rows
MIN_PITCH_ROWS = 12
MAX_TRANSPOSE = 11
DEFAULT_TRANSPOSE = 0  # the key frame already puts every piece in C; shifted copies would blur it (measured)
DEFAULT_TEMPO = 96
DEFAULT_VELOCITY = 80
DRUM_CHANNEL = 9  # channel index 9 = MIDI channel 10
# General MIDI drum notes folded into 8 rows, each written back as its first note.
DRUM_ROWS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("kick", (36, 35)),
    ("snare", (38, 40, 37, 39)),
    ("closed hat", (42, 44, 54, 69, 70)),
    ("open hat", (46,)),
    ("low tom", (45, 41, 43)),
    ("high tom", (48, 47, 50)),
    ("crash", (49, 52, 55, 57)),
    ("ride", (51, 53, 59, 56)),
)
OUTPUT_TPB = 480

__all__ = ["WindowSpec", "option", "parse_sample_options", "parse_train_options", "Meter"]


@dataclass(frozen=True)
class Meter:
    """A time signature on the 16th-note grid: 6/8 is 12 steps a bar in two beats of 6 steps."""

    numerator: int
    denominator: int

    @property
    def name(self) -> str:
        return f"{self.numerator}/{self.denominator}"

    @property
    def steps_per_bar(self) -> int:
        return self.numerator * 16 // self.denominator

    @property
    def compound(self) -> bool:
        """6/8, 9/8, 12/8 (and x/16): beats of three eighths."""
        return self.denominator >= 8 and self.numerator % 3 == 0 and self.numerator > 3

    @property
    def beat_steps(self) -> int:
        unit = 16 // self.denominator
        return 3 * unit if self.compound else unit

    @property
    def beats(self) -> int:
        return self.steps_per_bar // self.beat_steps

    @classmethod
    def of(cls, name: str) -> "Meter":
        num, den = name.split("/")
        return cls(int(num), int(den))


def meter_supported(numerator: int, denominator: int) -> bool:
    return denominator in METER_DENOMINATORS and 1 <= numerator <= MAX_METER_NUMERATOR \
        and numerator * 16 // denominator >= 2


def parse_meters(value: Any, flag: str = "--meter") -> tuple[str, ...] | None:
    """`all` -> None (every metre found); `6/8,3/4` -> ("6/8", "3/4")."""
    text = "all" if value is None else str(value).strip().lower()
    if text in ("all", ""):
        return None
    names = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        m = re.fullmatch(r"(\d{1,2})/(\d{1,2})", part)
        if not m or not meter_supported(int(m.group(1)), int(m.group(2))):
            raise GenError(f"bad metre {part!r}: expected a time signature such as 3/4 or 6/8 whose bar is whole "
                           f"16th notes", where=flag, hint="e.g. --meter 6/8, or --meter 3/4,6/8")
        names.append(f"{int(m.group(1))}/{int(m.group(2))}")
    return tuple(dict.fromkeys(names))


def option(options: dict[str, Any] | None, name: str, default: Any = None) -> Any:
    value = (options or {}).get(name)
    return default if value is None else value


@dataclass(frozen=True)
class WindowSpec:
    """How MIDI becomes training windows; stored in the run as config["data"]["meta"]["window"]."""

    bars: int = DEFAULT_BARS
    low: int = 36
    high: int = 83  # inclusive
    tracks: tuple[int, ...] | None = None  # None: all tracks merged
    drums: str = "exclude"  # or "rows"
    transpose: int = DEFAULT_TRANSPOSE
    hop: int = 1  # bars between window starts
    normalise_key: bool = True  # files transposed to tonic C (keyframe.py)
    # The metres windows are cut in, most windows first; None while loading: every metre found.
    meters: tuple[str, ...] | None = None
    # Metres cut in fewer bars than `bars` (a divisor of it), so that a metre too rare to teach its
    # long window does not widen every item: ((metre, bars), ...); see loader.short_meters.
    meter_bars: tuple[tuple[str, int], ...] = ()

    @property
    def pitch_rows(self) -> int:
        return self.high - self.low + 1

    @property
    def drum_rows(self) -> int:
        return len(DRUM_ROWS) if self.drums == "rows" else 0

    @property
    def meter_row(self) -> int | None:
        """With several metres, one more row says where the bars and beats of the window's metre
        fall (onset: bar starts, frame: beat starts, chroma: the window's own length)."""
        return self.pitch_rows + self.drum_rows if self.meters and len(self.meters) > 1 else None

    @property
    def rows(self) -> int:
        return self.pitch_rows + self.drum_rows + (self.meter_row is not None)

    def bars_of(self, meter: str) -> int:
        """Bars of a window in `meter`."""
        return dict(self.meter_bars).get(meter, self.bars)

    def meter_steps(self, meter: str) -> int:
        return self.bars_of(meter) * Meter.of(meter).steps_per_bar

    @property
    def steps(self) -> int:
        """Steps of an item: the longest window among the run's metres (shorter ones end in silence)."""
        return max(self.meter_steps(m) for m in (self.meters or (DEFAULT_METER,)))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["tracks"] = None if self.tracks is None else list(self.tracks)
        out["meters"] = None if self.meters is None else list(self.meters)
        out["meter_bars"] = dict(self.meter_bars)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "WindowSpec":
        data = dict(data)
        data.setdefault("meters", [DEFAULT_METER])  # runs made before metres were 4/4
        if data.get("tracks") is not None:
            data["tracks"] = tuple(data["tracks"])
        if data.get("meters") is not None:
            data["meters"] = tuple(data["meters"])
        data["meter_bars"] = tuple(sorted((data.get("meter_bars") or {}).items()))
        return cls(**data)


def _int(value: Any, flag: str, example: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise GenError(f"expects a whole number, got {value!r}", where=flag, hint=f"e.g. {example}") from None


def parse_bars(value: Any, flag: str = "--bars", choices: tuple[int, ...] = BAR_CHOICES) -> int:
    bars = _int(value, flag, "--bars 4")
    if bars not in choices:
        raise GenError(f"{bars} bars is not supported; windows are {' or '.join(map(str, choices))} bars",
                       where=flag, hint="e.g. --bars 4")
    return bars


def parse_pitch_range(value: Any) -> tuple[int, int]:
    text = str(value).strip()
    m = re.fullmatch(r"(\d{1,3})\s*(?:-|\.\.|:|,)\s*(\d{1,3})", text)
    if not m:
        raise GenError(f"bad pitch range {text!r}: expected LOW-HIGH MIDI note numbers", where="--pitch-range",
                       hint="e.g. --pitch-range 36-83 (48 rows, C2 to B5)")
    low, high = int(m.group(1)), int(m.group(2))
    if not (0 <= low < high <= 127):
        raise GenError(f"bad pitch range {text!r}: need 0 <= LOW < HIGH <= 127", where="--pitch-range",
                       hint="e.g. --pitch-range 36-83")
    if high - low + 1 < MIN_PITCH_ROWS:
        raise GenError(f"pitch range {text!r} has {high - low + 1} rows; at least {MIN_PITCH_ROWS} are needed",
                       where="--pitch-range", hint="e.g. --pitch-range 48-71 (two octaves)")
    return low, high


def parse_tracks(value: Any) -> tuple[int, ...] | None:
    text = "all" if value is None else str(value).strip().lower()
    if text in ("all", "merge", "merged", ""):
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise GenError(f"bad track list {value!r}", where="--tracks",
                       hint="give `all` (merge every track) or 0-based track numbers, e.g. --tracks 1,2")
    return tuple(sorted({int(p) for p in parts}))


def parse_drums(value: Any) -> str:
    text = "exclude" if value is None else str(value).strip().lower()
    if text not in ("exclude", "rows"):
        raise GenError(f"bad drum mode {value!r}", where="--drums",
                       hint="use exclude (drop channel 10) or rows (8 drum rows under the pitches)")
    return text


def parse_train_options(options: dict[str, Any] | None) -> tuple[WindowSpec, int | None]:
    """Train options -> the window spec and the file limit (--max-files)."""
    bars = parse_bars(option(options, "bars", DEFAULT_BARS))
    low, high = parse_pitch_range(option(options, "pitch_range", DEFAULT_PITCH_RANGE))
    transpose = _int(option(options, "transpose", DEFAULT_TRANSPOSE), "--transpose", "--transpose 2")
    if not 0 <= transpose <= MAX_TRANSPOSE:
        raise GenError(f"must be from 0 to {MAX_TRANSPOSE} semitones, got {transpose}", where="--transpose",
                       hint="e.g. --transpose 2 adds copies shifted by -2..+2 semitones; 0 turns it off")
    hop = _int(option(options, "hop", 1), "--hop", "--hop 1")
    if not 1 <= hop <= bars:
        raise GenError(f"must be from 1 to the window length ({bars} bars), got {hop}", where="--hop",
                       hint="e.g. --hop 1 starts a window at every bar")
    max_files = option(options, "max_files")
    if max_files is not None:
        max_files = _int(max_files, "--max-files", "--max-files 50")
        if max_files < 1:
            raise GenError(f"must be at least 1, got {max_files}", where="--max-files",
                           hint="e.g. --max-files 50, or leave it out to read every file")
    spec = WindowSpec(bars=bars, low=low, high=high, tracks=parse_tracks(option(options, "tracks")),
                      drums=parse_drums(option(options, "drums")), transpose=transpose, hop=hop,
                      normalise_key=bool(option(options, "normalise_key", True)),
                      meters=parse_meters(option(options, "meter")))
    return spec, max_files


@dataclass(frozen=True)
class SampleSettings:
    bars: int | None
    key: str | None
    tempo: float
    threshold: float | None
    velocity: int
    program: int
    wav: bool
    min_steps: int | None = None  # None: the run's own default (decode.default_min_steps)
    meter: str | None = None


def parse_sample_options(options: dict[str, Any] | None) -> SampleSettings:
    bars = option(options, "bars")
    if bars is not None:
        bars = _int(bars, "--bars", "--bars 4")
        if not 1 <= bars <= MAX_SAMPLE_BARS:
            raise GenError(f"must be from 1 to {MAX_SAMPLE_BARS}, got {bars}", where="--bars", hint="e.g. --bars 4")
    try:
        tempo = float(option(options, "tempo", DEFAULT_TEMPO))
    except (TypeError, ValueError):
        raise GenError(f"expects beats per minute, got {option(options, 'tempo')!r}", where="--tempo",
                       hint="e.g. --tempo 96") from None
    if not 20 <= tempo <= 400:
        raise GenError(f"must be from 20 to 400 beats per minute, got {tempo:g}", where="--tempo",
                       hint="e.g. --tempo 96")
    threshold = option(options, "threshold")
    if threshold is not None:
        try:
            threshold = float(threshold)
        except (TypeError, ValueError):
            raise GenError(f"expects a probability, got {threshold!r}", where="--threshold",
                           hint="e.g. --threshold 0.3; leave it out for the calibrated threshold") from None
        if not 0 < threshold < 1:
            raise GenError(f"must be between 0 and 1, got {threshold:g}", where="--threshold",
                           hint="e.g. --threshold 0.3; leave it out for the calibrated threshold")
    velocity = _int(option(options, "velocity", DEFAULT_VELOCITY), "--velocity", "--velocity 80")
    if not 1 <= velocity <= 127:
        raise GenError(f"must be from 1 to 127, got {velocity}", where="--velocity", hint="e.g. --velocity 80")
    program = _int(option(options, "program", 0), "--program", "--program 19 (church organ)")
    if not 0 <= program <= 127:
        raise GenError(f"must be a General MIDI program from 0 to 127, got {program}", where="--program",
                       hint="e.g. --program 0 (piano) or --program 52 (choir)")
    min_steps = option(options, "min_steps")
    if min_steps is not None:
        min_steps = _int(min_steps, "--min-steps", "--min-steps 2")
    if min_steps is not None and not 1 <= min_steps <= 16:
        raise GenError(f"must be from 1 to 16 steps, got {min_steps}", where="--min-steps",
                       hint="e.g. --min-steps 2 (an eighth note); 1 keeps one-step notes")
    key = option(options, "key")
    meters = parse_meters(option(options, "meter"))
    if meters is not None and len(meters) != 1:
        raise GenError(f"give one metre to sample, got {', '.join(meters)}", where="--meter", hint="e.g. --meter 6/8")
    return SampleSettings(meter=meters[0] if meters else None, bars=bars, key=None if key is None else str(key), tempo=tempo, threshold=threshold,
                          velocity=velocity, program=program, wav=bool(option(options, "wav", False)),
                          min_steps=min_steps)
