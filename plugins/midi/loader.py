"""Training windows from a folder of .mid/.midi files (class = first-level subfolder), and single
input files for `gen reconstruct` / `gen interpolate`.

Corrupt files are skipped with one named warning each and counted; training goes on. Bad input
(an empty folder, no usable notes, every file corrupt) is a GenError: one line, exit code 2.
"""
from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from gencore import console
from gencore.datafiles import scan_class_folder
from gencore.errors import GenError
from gencore.plugin import LoadedData

from .keyframe import to_frame
from .midifile import MidiReadError, read_midi
from .options import Meter, WindowSpec
from .roll import (
    FRAME,
    ONSET,
    Window,
    first_window,
    segments,
    transpositions,
    windows_of,
    with_chroma,
    with_meter_row,
)

MIDI_SUFFIXES = (".mid", ".midi")
MAX_FILES = 200_000
MAX_SKIP_WARNINGS = 20
# The item grid is as wide as the longest window that at least this many windows (before
# transposition) fill; a rarer, longer metre is cut in fewer bars. On `trecento` the 8 windows in
# 7/4, 8/4 and 9/4 (of 10,176) widened every item from 96 to 144 steps, and the samples in those
# metres fell silent past step 96, where 99.9% of the training items hold only padding; the 115
# windows reaching step 96 taught that stretch (no empty beat in the samples of their metres).
# 32 lies between (bench/results/midi_short_meters-trecento-empty-beats-before-2026-11-29.log).
MIN_WIDE_WINDOWS = 32
SHORT_NOTES_OK = 0.8  # with fewer of the notes lasting 2 steps or more, samples may hold 16th notes
MONOPHONIC_SHARE = 0.1  # below this share of sounding steps with a chord, a corpus is one line (a melody)


class MidiWarning(UserWarning):
    """A file skipped or a value guessed while reading MIDI."""


def warn(message: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always", MidiWarning)  # the same file skipped twice warns twice
        warnings.warn(message, MidiWarning, stacklevel=3)


def folder_files(root: Path, max_files: int | None) -> tuple[list[Path], list[int], list[str]]:
    """(paths, class index per path, class names); no class names for an unlabelled folder."""
    if not root.exists():
        raise GenError("no such file or folder", where=str(root),
                       hint="point --data at a folder of .mid files (one subfolder per class), or leave "
                            "--data out for the built-in Bach chorales")
    if not root.is_dir():
        raise GenError("this is a file, not a folder", where=str(root),
                       hint="point --data at a folder of .mid files, one subfolder per class")
    top, classes, other = scan_class_folder(root, MIDI_SUFFIXES, MAX_FILES)
    if top and classes:
        raise GenError(f"MIDI files both at the top level ({len(top)}, e.g. {top[0].name}) and in class "
                       f"subfolders ({len(classes)}, e.g. {sorted(classes)[0]}/)", where=str(root),
                       hint="move the top-level files into a class subfolder, or all files out of the "
                            "subfolders for an unlabelled set")
    if not top and not classes:
        what = "folder is empty" if other == 0 else f"no .mid or .midi files ({other} other files)"
        raise GenError(what, where=str(root), hint="put .mid files in it, one subfolder per class")
    if classes:
        names = sorted(classes)
        pairs = [(p, i) for i, name in enumerate(names) for p in classes[name]]
    else:
        names, pairs = [], [(p, 0) for p in top]
    if max_files is not None and len(pairs) > max_files:
        pairs = sorted(pairs, key=lambda pair: pair[0].relative_to(root).as_posix())[:max_files]
    return [p for p, _ in pairs], [c for _, c in pairs], names


@dataclass
class _Reading:
    """What reading a folder found, before the windows become items."""

    windows: list[list[Window]]  # per class
    files_by_meter: dict[str, list[tuple[Path, int]]] = field(default_factory=dict)  # (path, class) with windows
    used: list[str] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    no_window: Counter = field(default_factory=Counter)
    out_of_range: int = 0
    notes: int = 0
    dropped_windows: int = 0


def _read_files(root: Path, paths: Sequence[Path], owners: Sequence[int], n_classes: int,
                spec: WindowSpec) -> _Reading:
    found = _Reading(windows=[[] for _ in range(max(1, n_classes))])
    for path, owner in zip(paths, owners):
        try:
            parsed = read_midi(path, spec.tracks)
        except MidiReadError as exc:
            found.skipped.append((path, exc.reason))
            continue
        parsed, _ = to_frame(parsed, spec)
        windows, fr, dropped = windows_of(parsed, spec)
        found.out_of_range += fr.out_of_range
        found.notes += fr.notes
        found.dropped_windows += dropped
        if not windows:
            found.no_window[_why_no_window(parsed, fr, spec)] += 1
            continue
        found.windows[owner] += windows
        for meter in dict.fromkeys(w.meter for w in windows):
            found.files_by_meter.setdefault(meter, []).append((path, owner))
        found.used.append(path.relative_to(root).as_posix() if root in path.parents else str(path))
    return found


def _why_no_window(parsed, fr, spec: WindowSpec) -> str:
    if fr.notes == 0:
        return "have no notes in the pitch range (--pitch-range) and tracks (--tracks)"
    metres = {m.name for _, _, m in segments(parsed) if m is not None}
    if not metres:
        return "have only metres off the 16th-note grid"
    if spec.meters is not None and not metres & set(spec.meters):
        return f"have no section in {', '.join(spec.meters)} (--meter)"
    return f"have no stretch of {spec.bars} bars of one metre with notes"


def _report_problems(root: Path, found: _Reading, total: int, spec: WindowSpec) -> None:
    for path, reason in found.skipped[:MAX_SKIP_WARNINGS]:
        warn(f"{path}: skipped corrupt MIDI file, {reason}")
    if len(found.skipped) > MAX_SKIP_WARNINGS:
        warn(f"{root}: {len(found.skipped) - MAX_SKIP_WARNINGS} more corrupt MIDI files skipped")
    if len(found.skipped) == total:
        path, reason = found.skipped[0]
        raise GenError(f"none of the {total} MIDI files could be read; {path.name}: {reason}",
                       where=str(root), hint="check that the files are standard MIDI files (.mid)")
    if found.no_window:
        parts = ", ".join(f"{n} {why}" for why, n in found.no_window.items())
        warn(f"{root}: {sum(found.no_window.values())} files gave no training window: {parts}")
    if not any(found.windows):
        raise GenError(f"no usable {spec.bars}-bar windows with notes in {total - len(found.skipped)} "
                       f"readable files", where=str(root),
                       hint=f"check --pitch-range ({spec.low}-{spec.high}), --tracks, --drums and --meter, or use "
                            f"--bars 2 for short files")
    if found.notes and found.out_of_range > 0.02 * (found.notes + found.out_of_range):
        warn(f"{root}: {found.out_of_range} of {found.notes + found.out_of_range} notes lie outside the pitch "
             f"window {spec.low}-{spec.high} and were dropped (hint: widen --pitch-range)")


def load_windows(root: Path, paths: Sequence[Path], owners: Sequence[int], class_names: list[str],
                 spec: WindowSpec, *, source_kind: str, what: str = "MIDI files") -> LoadedData:
    """Read every file, cut windows in each stretch's own metre, augment by transposition, and
    build the LoadedData. With several metres, each item's metre is part of its condition."""
    found = _read_files(root, paths, owners, len(class_names), spec)
    _report_problems(root, found, len(paths), spec)
    names = list(class_names)
    if names:
        for i, name in enumerate(names):
            if not found.windows[i]:
                warn(f"{root / name}: class dropped, none of its files gave a training window")
        names = [name for i, name in enumerate(names) if found.windows[i]]
    short = short_meters(Counter(w.meter for ws in found.windows for w in ws), spec)
    if short:
        found.windows = _recut(found, spec, short)
        spec = replace(spec, meter_bars=tuple(sorted(short.items())))
    per_class = [w for w in found.windows if w]
    meter_counts = Counter(w.meter for ws in per_class for w in ws)
    spec = replace(spec, meters=tuple(m for m, _ in meter_counts.most_common()))
    base_windows = sum(meter_counts.values())
    rolls, labels, meters = [], [], []
    for k, windows in enumerate(per_class):
        for name in spec.meters:
            chosen = [w.roll for w in windows if w.meter == name]
            if not chosen:
                continue
            chosen = np.stack([_fit(w, spec) for w in chosen])
            shifted = transpositions(chosen, spec)
            rolls.append(shifted)
            labels += [k] * len(shifted)
            meters += [name] * len(shifted)
    items = with_meter_row(with_chroma(np.concatenate(rolls), spec), meters, spec)
    labels = np.array(labels, dtype=np.int64)
    texture = _texture(items, spec)
    texture.update(_note_lengths(items, spec))
    data_names, conditions, multi_label = _conditions(names, labels, meters, spec)
    density = {"all": _density(items, meters, spec)}
    notes_per_window = {"all": _notes_per_window(items, spec)}
    for i, name in enumerate(names):
        sel = labels == i
        density[name] = _density(items[sel], [m for m, s in zip(meters, sel) if s], spec)
        notes_per_window[name] = _notes_per_window(items[sel], spec)
    classes = ("; classes: " + ", ".join(f"{name} {int((labels == i).sum()):,}" for i, name in enumerate(names))
               if names else "; unlabelled")
    metres = ", ".join(f"{m} {n:,}" + (f" in {spec.bars_of(m)} bar{'s' * (spec.bars_of(m) > 1)}" if spec.bars_of(m) != spec.bars else "")
                       for m, n in meter_counts.most_common())
    console.info(
        f"{len(found.used)} of {len(paths)} {what} gave {base_windows:,} windows of {spec.bars} bars "
        f"({spec.rows} rows x {spec.steps} steps; metres: {metres}){_aug_text(len(items), base_windows, spec)}; "
        f"{len(found.skipped)} corrupt files skipped; {density['all'][FRAME]:.1%} of cells sound; "
        f"{texture['texture']}{classes}")
    meta = {"window": spec.to_json(), "key_frame": "tonic C" if spec.normalise_key else None,
            "density": density, "source_kind": source_kind, "files_used": len(found.used),
            "files_skipped": len(found.skipped), "windows": base_windows, "notes_out_of_range": found.out_of_range,
            "windows_dropped_empty": found.dropped_windows, "steps_per_bar": spec.steps // spec.bars,
            "channels": ["onset", "frame", "chroma"], "meters": dict(meter_counts.most_common()),
            "classes": names, "meter_classes": bool(spec.meter_row is not None),
            "notes_per_window": notes_per_window, **texture}
    import torch

    return LoadedData(items=torch.from_numpy(items.astype(np.float32)), conditions=conditions,
                      class_names=data_names, likelihood="bernoulli", item_kind="grid2d",
                      normalisation={"scale": "0..1", "channels": ["onset", "frame", "chroma"]},
                      sources=found.used, meta=meta, multi_label=multi_label)


def short_meters(counts: Counter, spec: WindowSpec) -> dict[str, int]:
    """{metre: bars} for the metres whose window is longer than the widest one that at least
    MIN_WIDE_WINDOWS windows fill: each gets the most bars, halving spec.bars, that fit it."""
    steps = {m: spec.meter_steps(m) for m in counts}
    wide_enough = [L for L in set(steps.values()) if sum(c for m, c in counts.items() if steps[m] >= L) >= MIN_WIDE_WINDOWS]
    if not wide_enough:
        return {}
    width = max(wide_enough)
    out = {}
    for meter, length in steps.items():
        bars = spec.bars
        while length > width and bars > 1 and bars % 2 == 0:
            bars //= 2
            length = bars * Meter.of(meter).steps_per_bar
        if bars != spec.bars:
            out[meter] = bars
    return out


def _recut(found: _Reading, spec: WindowSpec, short: dict[str, int]) -> list[list[Window]]:
    """The windows with those of the `short` metres cut again, in their fewer bars, from the files
    that had them."""
    windows = [[w for w in ws if w.meter not in short] for ws in found.windows]
    shorter = replace(spec, meters=tuple(short), meter_bars=tuple(sorted(short.items())))
    files = list(dict.fromkeys(pair for m in short for pair in found.files_by_meter.get(m, [])))
    for path, owner in files:
        parsed, _ = to_frame(read_midi(path, spec.tracks), spec)
        windows[owner] += windows_of(parsed, shorter)[0]
    return windows


def _fit(window: np.ndarray, spec: WindowSpec) -> np.ndarray:
    """A window (2, note rows, its metre's steps) on the item grid: silence after it, and the
    metre row (empty here) when the run has several metres."""
    out = np.zeros((2, spec.rows, spec.steps), dtype=window.dtype)
    out[:, :window.shape[1], :window.shape[2]] = window
    return out


def _conditions(names: list[str], labels: np.ndarray, meters: list[str], spec: WindowSpec):
    """Class names, condition vectors and whether they are multi-hot: the classes, then (with
    several metres) one entry per metre, so `--class minor+6/8` or `--meter 6/8` chooses both."""
    import torch

    n = len(labels)
    meter_names = list(spec.meters) if spec.meter_row is not None else []
    all_names = names + meter_names
    if not all_names:
        return [], None, False
    conditions = torch.zeros((n, len(all_names)), dtype=torch.float32)
    if names:
        conditions[torch.arange(n), torch.from_numpy(labels)] = 1.0
    if meter_names:
        index = torch.tensor([len(names) + meter_names.index(m) for m in meters])
        conditions[torch.arange(n), index] = 1.0
    return all_names, conditions, bool(names and meter_names)


def _texture(items: np.ndarray, spec: WindowSpec) -> dict[str, Any]:
    """Monophonic (one line) or polyphonic, from the data: the share of sounding steps where more
    than one pitch sounds."""
    voices = items[:, FRAME, :spec.pitch_rows].sum(axis=1)  # (n, steps)
    sounding = int((voices > 0).sum())
    share = float((voices > 1).sum() / max(1, sounding))
    return {"texture": "monophonic" if share < MONOPHONIC_SHARE else "polyphonic", "chord_share": share}


def _note_lengths(items: np.ndarray, spec: WindowSpec) -> dict[str, Any]:
    """The share of notes lasting 2 steps or more, and the decoding's shortest note from it."""
    from .decode import DEFAULT_MIN_STEPS
    from .roll import note_lengths, note_starts

    on, starts = note_starts(items[:, :2, :spec.pitch_rows])
    lengths = note_lengths(on, starts)
    share = float((lengths >= 2).mean()) if len(lengths) else 1.0
    return {"long_note_share": share, "min_steps": DEFAULT_MIN_STEPS if share >= SHORT_NOTES_OK else 1}


def _notes_per_window(items: np.ndarray, spec: WindowSpec) -> float:
    return float(items[:, ONSET, :spec.pitch_rows].sum(axis=(1, 2)).mean()) if len(items) else 0.0


def _density(items: np.ndarray, meters: list[str], spec: WindowSpec) -> list[float]:
    """Share of cells on, per channel (onset, frame), over the pitch and drum rows and the steps
    inside each window's own metre."""
    if not len(items):
        return [0.0, 0.0]
    rows = spec.pitch_rows + spec.drum_rows
    active = sum(spec.meter_steps(m) for m in meters) * rows
    return [float(items[:, ONSET, :rows].sum() / active), float(items[:, FRAME, :rows].sum() / active)]


def _aug_text(n: int, base: int, spec: WindowSpec) -> str:
    if spec.transpose == 0 or n == base:
        return ""
    return f", {n:,} with transpositions of up to ±{spec.transpose} semitones"


def load_folder(source: str, spec: WindowSpec, max_files: int | None) -> LoadedData:
    root = Path(source).expanduser()
    paths, owners, names = folder_files(root, max_files)
    return load_windows(root, paths, owners, names, spec, source_kind="folder")


# -- single files ---------------------------------------------------------------------------------
def load_user_files(paths: Iterable[Path], data_spec: dict[str, Any]):
    spec = WindowSpec.from_json((data_spec.get("meta") or {})["window"])
    arrays: list[np.ndarray] = []
    meters: list[str] = []
    implied: list[str | None] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise GenError("no such file", where=str(raw), hint="give the path of a .mid file")
        if path.is_dir():
            raise GenError("this is a folder, not a MIDI file", where=str(raw), hint="give .mid files")
        try:
            parsed = read_midi(path, spec.tracks)
        except MidiReadError as exc:
            raise GenError(f"cannot read the MIDI file: {exc.reason}", where=str(raw),
                           hint="give a standard MIDI file (.mid)") from None
        from .roll import file_roll

        parsed, _ = to_frame(parsed, spec)
        fr = file_roll(parsed, spec)
        if fr.notes == 0:
            raise GenError(f"no notes in the run's pitch window {spec.low}-{spec.high}", where=str(raw),
                           hint="give a file with notes in that range")
        window, meter = first_window(fr, parsed, spec)
        arrays.append(window)
        meters.append(meter)
        implied.append(_implied_class(path, meter, data_spec))

    import torch

    if not arrays:
        return torch.zeros((0, 3, spec.rows, spec.steps), dtype=torch.float32), implied
    items = with_meter_row(with_chroma(np.stack(arrays), spec), meters, spec)
    return torch.from_numpy(items.astype(np.float32)), implied


def _implied_class(path: Path, meter: str, data_spec: dict[str, Any]) -> str | None:
    """The folder name; for a run whose only classes are its metres, the file's metre. (The core
    takes a file's class from the run's class names, so a labelled run of several metres conditions
    on the folder's class in its main metre unless `--class minor+6/8` says otherwise.)"""
    folder = path.parent.name or path.resolve().parent.name or None
    meta = data_spec.get("meta") or {}
    if meta.get("meter_classes") and not meta.get("classes"):
        return meter
    return folder
