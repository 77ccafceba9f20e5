"""Training windows from a folder of .mid/.midi files (class = first-level subfolder), and single
input files for `gen reconstruct` / `gen interpolate`.

Corrupt files are skipped with one named warning each and counted; training goes on. Bad input
(an empty folder, no usable notes, every file corrupt) is a GenError: one line, exit code 2.
"""
from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from gencore import console
from gencore.datafiles import scan_class_folder
from gencore.errors import GenError
from gencore.plugin import LoadedData

from .keyframe import to_frame
from .midifile import MidiReadError, read_midi
from .options import STEPS_PER_BAR, WindowSpec
from .roll import FRAME, ONSET, first_window, transpositions, windows_of, with_chroma

MIDI_SUFFIXES = (".mid", ".midi")
MAX_FILES = 200_000
MAX_SKIP_WARNINGS = 20


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


def load_windows(root: Path, paths: Sequence[Path], owners: Sequence[int], class_names: list[str],
                 spec: WindowSpec, *, source_kind: str, what: str = "MIDI files") -> LoadedData:
    """Read every file, cut windows, augment by transposition, and build the LoadedData."""
    per_class: list[list[np.ndarray]] = [[] for _ in range(max(1, len(class_names)))]
    used: list[str] = []
    skipped: list[tuple[Path, str]] = []
    no_window: Counter[str] = Counter()
    out_of_range = notes = drum_notes = dropped_windows = base_windows = tempo_files = 0
    for path, owner in zip(paths, owners):
        try:
            parsed = read_midi(path, spec.tracks)
        except MidiReadError as exc:
            skipped.append((path, exc.reason))
            continue
        parsed, _ = to_frame(parsed, spec)
        windows, fr, dropped = windows_of(parsed, spec)
        out_of_range += fr.out_of_range
        notes += fr.notes
        drum_notes += fr.drum_notes
        dropped_windows += dropped
        tempo_files += parsed.tempo_changes > 1
        if not len(windows):
            if fr.notes == 0:
                no_window["have no notes in the pitch range (--pitch-range) and tracks (--tracks)"] += 1
            elif not any((n, d) == (4, 4) for _, n, d in parsed.time_signatures):
                no_window["have no 4/4 section"] += 1
            else:
                no_window[f"have no 4/4 stretch of {spec.bars} bars with notes"] += 1
            continue
        base_windows += len(windows)
        per_class[owner].append(transpositions(windows, spec))
        used.append(path.relative_to(root).as_posix() if root in path.parents else str(path))

    for path, reason in skipped[:MAX_SKIP_WARNINGS]:
        warn(f"{path}: skipped corrupt MIDI file, {reason}")
    if len(skipped) > MAX_SKIP_WARNINGS:
        warn(f"{root}: {len(skipped) - MAX_SKIP_WARNINGS} more corrupt MIDI files skipped")
    if len(skipped) == len(paths):
        path, reason = skipped[0]
        raise GenError(f"none of the {len(paths)} MIDI files could be read; {path.name}: {reason}",
                       where=str(root), hint="check that the files are standard MIDI files (.mid)")
    if no_window:
        parts = ", ".join(f"{n} {why}" for why, n in no_window.items())
        warn(f"{root}: {sum(no_window.values())} files gave no training window: {parts}")
    kept = [np.concatenate(chunks) if chunks else None for chunks in per_class]
    if not any(k is not None for k in kept):
        raise GenError(f"no usable {spec.bars}-bar 4/4 windows with notes in {len(paths) - len(skipped)} "
                       f"readable files", where=str(root),
                       hint=f"check --pitch-range ({spec.low}-{spec.high}), --tracks and --drums, or use "
                            f"--bars 2 for short files")
    if notes and out_of_range > 0.02 * (notes + out_of_range):
        warn(f"{root}: {out_of_range} of {notes + out_of_range} notes lie outside the pitch window "
             f"{spec.low}-{spec.high} and were dropped (hint: widen --pitch-range)")

    names = list(class_names)
    if names:
        empty = [names[i] for i, k in enumerate(kept) if k is None]
        for name in empty:
            warn(f"{root / name}: class dropped, none of its files gave a training window")
        names = [name for i, name in enumerate(names) if kept[i] is not None]
    arrays = [k for k in kept if k is not None]
    labels = np.concatenate([np.full(len(a), i, dtype=np.int64) for i, a in enumerate(arrays)])
    items = with_chroma(np.concatenate(arrays), spec)

    import torch

    n = items.shape[0]
    x = torch.from_numpy(items.astype(np.float32))
    conditions = None
    if names:
        conditions = torch.zeros((n, len(names)), dtype=torch.float32)
        conditions[torch.arange(n), torch.from_numpy(labels)] = 1.0
    density = {"all": _density(items)}
    for i, name in enumerate(names):
        density[name] = _density(items[labels == i])
    classes = ("; classes: " + ", ".join(f"{name} {int((labels == i).sum()):,}" for i, name in enumerate(names))
               if names else "; unlabelled")
    console.info(
        f"{len(used)} of {len(paths)} {what} gave {base_windows:,} windows of {spec.bars} bars "
        f"({spec.rows} rows x {spec.steps} steps){_aug_text(n, base_windows, spec)}; {len(skipped)} corrupt "
        f"files skipped; {density['all'][FRAME]:.1%} of cells sound{classes}")
    meta = {"window": spec.to_json(), "key_frame": "tonic C" if spec.normalise_key else None,
            "density": density, "source_kind": source_kind, "files_used": len(used), "files_skipped": len(skipped),
            "windows": base_windows, "notes_out_of_range": out_of_range, "windows_dropped_empty": dropped_windows,
            "steps_per_bar": STEPS_PER_BAR, "channels": ["onset", "frame", "chroma"]}
    return LoadedData(items=x, conditions=conditions, class_names=names, likelihood="bernoulli",
                      item_kind="grid2d", normalisation={"scale": "0..1", "channels": ["onset", "frame", "chroma"]},
                      sources=used, meta=meta)


def _density(items: np.ndarray) -> list[float]:
    """Share of cells on, per channel (onset, frame), over the pitch and drum rows."""
    if not len(items):
        return [0.0, 0.0]
    return [float(items[:, ONSET].mean()), float(items[:, FRAME].mean())]


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
        arrays.append(first_window(fr, parsed, spec))
        implied.append(path.parent.name or path.resolve().parent.name or None)

    import torch

    if not arrays:
        return torch.zeros((0, 3, spec.rows, spec.steps), dtype=torch.float32), implied
    return torch.from_numpy(with_chroma(np.stack(arrays), spec).astype(np.float32)), implied
