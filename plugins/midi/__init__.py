"""The `midi` domain: piano rolls of 2- or 4-bar windows, in each piece's own metre, as 2-D grids
(N, 3, rows, steps).

Channel 0 holds onsets, channel 1 the sounding frames on a 16th-note grid, channel 2 the chroma
derived from them (roll.py); rows are MIDI pitches (36-83 by default), every file transposed to
tonic C (keyframe.py). A run of several metres pads the shorter windows with silence, adds a
metre row and makes the metre part of the condition. The built-in corpus is the Bach chorales of music21's corpus, labelled
major or minor by key analysis; `--data DIR` reads a folder of .mid files with mido. Sampling
decodes probabilities into notes with a calibrated threshold (decode.py). Importing this module
is cheap: torch, numpy, mido and music21 load inside the methods. See docs/midi.md.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gencore.errors import GenError
from gencore.plugin import Domain, DomainOption, LoadedData

from .options import (
    DEFAULT_PITCH_RANGE,
    DEFAULT_TEMPO,
    DEFAULT_TRANSPOSE,
    DEFAULT_VELOCITY,
)

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = ["MidiDomain", "plugin"]

BUILTIN = "builtin:chorales"
_STATS = ("pitch_range", "pitch_classes", "polyphony", "scale_consistency", "pc_entropy", "empty_beat_rate",
          "groove_consistency", "qualified_note_rate", "pitches_used", "beat_onset_share", "density", "empty_windows",
          "empty_phrases", "notes", "chord_share")


def _goals() -> dict[str, str]:
    """How `gen eval` reads the metrics: a sample statistic is judged against the training
    windows, which differ per run, so only the summaries are marked."""
    goals = {f"{s}{suffix}": "info" for s in _STATS for suffix in ("", "_train", "_train_p10", "_train_p90")}
    goals.update({"stats_inside_p10_p90": "max", "mode_control": "max", "mode_judge_accuracy": "info",
                  "qualified_note_rate": "max", "empty_windows": "min", "empty_phrases": "min"})
    return goals


class MidiDomain(Domain):
    name = "midi"
    description = ("Piano rolls of 2- or 4-bar MIDI windows in any metre (onset + sustain channels); built in: "
                   "music21's Bach chorales, major/minor")
    item_kind = "grid2d"
    default_data = BUILTIN
    metric_goals = _goals()
    # With a fitted mixture (`gen attributes`), samples come from it: it kept the class under
    # steering on the chorales and on `ryans` (docs/midi.md, "Steering and the mixture prior").
    sampling_defaults = {"prior": "gmm"}
    options = (
        DomainOption("bars", "window length in bars of each piece's metre: 2 or 4 (train, default 4); for sample, the length "
                             "of each sample: one window (default; a metre too rare to fill 4-bar windows has 2), or a multiple "
                             "of the run's window to stitch windows, e.g. --bars 4", type=int, commands=("train", "sample")),
        DomainOption("meter", "train: the metres to cut windows in, all (the default; the chorales: 4/4) or a list, "
                              "e.g. --meter 6/8,3/4; sample: the metre of the samples, one the run learned (default: "
                              "its most common), e.g. --meter 6/8", commands=("train", "sample")),
        DomainOption("pitch_range", "MIDI notes LOW-HIGH that get a row; notes outside are dropped, "
                                    "e.g. --pitch-range 36-83 (48 rows)", default=DEFAULT_PITCH_RANGE),
        DomainOption("tracks", "which tracks to read: all (merged) or 0-based track numbers, e.g. --tracks 1,2",
                     default="all"),
        DomainOption("drums", "drums (channel 10): exclude them, or keep them as 8 rows of their own, "
                              "e.g. --drums rows", default="exclude", choices=("exclude", "rows")),
        DomainOption("transpose", "augment with copies shifted by up to this many semitones each way (0, the "
                                  "default, turns it off; useful with --no-normalise-key), e.g. --transpose 2",
                     type=int, default=DEFAULT_TRANSPOSE),
        DomainOption("normalise_key", "transpose each file so that its tonic is C (C major or C minor; from its "
                                      "key signature and key analysis); --no-normalise-key keeps the written "
                                      "pitches", type=bool, default=True),
        DomainOption("hop", "bars between the starts of neighbouring windows, e.g. --hop 2", type=int, default=1),
        DomainOption("max_files", "read only the first N files (or chorales, converting only those), "
                                  "e.g. --max-files 40", type=int),
        DomainOption("key", "tonic of the written files: samples (made with tonic C) are transposed to it and "
                            "keep their mode, e.g. --key D gives D major or D minor", commands=("sample",)),
        DomainOption("tempo", "tempo of the written MIDI in beats per minute, e.g. --tempo 96", type=float,
                     default=DEFAULT_TEMPO, commands=("sample",)),
        DomainOption("threshold", "frame probability above which a started note keeps sounding; default: "
                                  "calibrated so that samples sound as often as the training windows, "
                                  "e.g. --threshold 0.3", type=float,
                     commands=("sample",)),
        DomainOption("min_steps", "shortest note in 16th steps when decoding (shorter ones grow or merge); default: "
                                  "2, or 1 when under 80% of the training notes last 2 steps (fiddle tunes), "
                                  "e.g. --min-steps 2", type=int,
                     commands=("sample",)),
        DomainOption("velocity", "base note velocity 1-127 (downbeats a little louder), e.g. --velocity 80",
                     type=int, default=DEFAULT_VELOCITY, commands=("sample",)),
        DomainOption("program", "General MIDI program of the notes track, e.g. --program 19 (church organ)",
                     type=int, default=0, commands=("sample",)),
        DomainOption("wav", "also write a WAV preview per sample (a small built-in synthesiser), e.g. --wav",
                     type=bool, default=False, commands=("sample",)),
    )

    # -- data ---------------------------------------------------------------------------------
    def load(self, source: str | None, options: dict[str, Any]) -> LoadedData:
        from .options import parse_train_options

        spec, max_files = parse_train_options(options)
        if source is None or source == BUILTIN:
            from dataclasses import replace

            from . import chorales

            if options.get("meter") is None:  # the chorale figures are those of its 4/4 windows
                spec = replace(spec, meters=("4/4",))
            return chorales.load(spec, max_files)
        if source.startswith("builtin:"):
            raise GenError(f"unknown built-in dataset {source[len('builtin:'):]!r}; available: {BUILTIN} "
                           f"(music21's Bach chorales)", where="--data", hint="give builtin:chorales or a folder")
        from .loader import load_folder

        return load_folder(source, spec, max_files)

    def data_training_defaults(self, data: LoadedData, settings: Any, n_train: int) -> dict[str, Any]:
        """Epochs within a compute budget and the conditioning layout, by texture (schedule.py)."""
        from .schedule import training_defaults

        return training_defaults(tuple(data.items.shape[1:]), data.meta.get("texture", "polyphonic"), settings,
                                 n_train)

    def load_files(self, paths: list[Path], spec: dict[str, Any],
                   options: dict[str, Any]) -> tuple["torch.Tensor", list[str | None]]:
        from .loader import load_user_files

        return load_user_files(paths, spec)

    def parse_class(self, text: str, class_names: list[str], multi_label: bool) -> list[float]:
        """Runs of several metres condition on the metre too: `minor+6/8`, `minor` (the run's main
        metre) or `6/8` (every class alike)."""
        from .sampling import parse_class

        return parse_class(text, class_names, multi_label, super().parse_class)

    # -- generation ---------------------------------------------------------------------------
    def generate(self, run: Any, classes: list[str | None], conditions: "torch.Tensor | None",
                 options: dict[str, Any], seed: int, temperature: float) -> "torch.Tensor":
        from .sampling import generate

        return generate(run, classes, conditions, options, seed, temperature)

    # -- output -------------------------------------------------------------------------------
    def export(self, items: "torch.Tensor", out_dir: Path, stems: list[str], spec: dict[str, Any],
               options: dict[str, Any] | None = None) -> list[Path]:
        from .sampling import export

        return export(items, out_dir, stems, spec, options)

    def decoding_rules(self, spec: dict[str, Any], run: Any = None) -> dict[str, Any]:
        from .sampling import decoding_rules

        return decoding_rules(spec, run)

    def preview(self, items: "torch.Tensor", spec: dict[str, Any], columns: int,
                options: dict[str, Any] | None = None) -> "Image.Image":
        from .sampling import preview

        return preview(items, spec, columns, options)

    # -- training helpers ---------------------------------------------------------------------
    def corrupt(self, items: "torch.Tensor", generator: "torch.Generator",
                spec: dict[str, Any] | None = None) -> "torch.Tensor":
        """For --arch dae: drop 10% of the notes' cells and add 1% stray cells."""
        import torch

        drop = (torch.rand(items.shape, generator=generator) < 0.10).to(items.device)
        add = (torch.rand(items.shape, generator=generator) < 0.01).to(items.device)
        return torch.where(drop, torch.zeros_like(items), torch.where(add, torch.ones_like(items), items))

    def attributes(self, items: "torch.Tensor", spec: dict[str, Any]) -> dict[str, Any]:
        from .attributes import measure

        return measure(items, spec)

    def metrics(self, samples: "torch.Tensor", sample_conditions: "torch.Tensor | None", reference: LoadedData,
                spec: dict[str, Any], seed: int) -> dict[str, float]:
        from .metrics import compute

        return compute(samples, sample_conditions, reference, spec, seed)


plugin = MidiDomain()
