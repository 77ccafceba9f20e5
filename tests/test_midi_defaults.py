"""MIDI defaults sized from the corpus (issue 23) and the domain's default prior (issue 20): a melody
corpus trains for fewer epochs and with FiLM, a polyphonic one keeps the chorales' schedule and
concat, and `gen sample` draws from the fitted mixture unless --prior says otherwise."""
from __future__ import annotations

import hashlib
import json

import pytest
from conftest import gen
from test_midi_domain import meter_notes, write_song

from gencore.runs import pretrained_runs
from gencore.training.settings import TrainSettings
from gencore_midi import plugin
from gencore_midi.loader import load_folder
from gencore_midi.options import WindowSpec
from gencore_midi.schedule import training_defaults


def test_the_chorale_default_schedule_is_unchanged():
    # the built-in corpus: 2,939 training windows of (3, 48, 64) trained 43 epochs with concat
    assert training_defaults((3, 48, 64), "polyphonic", TrainSettings(), 2939) == {"epochs": 43,
                                                                                 "conditioning": "concat"}


def test_epochs_follow_the_corpus_cost_by_texture():
    settings = TrainSettings()
    # the bench corpora's shapes and training windows (bench/results/midi_defaults-*.log)
    assert training_defaults((3, 49, 72), "monophonic", settings, 3373) == {"epochs": 13, "conditioning": "film"}
    assert training_defaults((3, 49, 64), "monophonic", settings, 3466)["epochs"] == 14  # airds, 9/8 in 2 bars
    # trecento: 96 steps since 7/4, 8/4 and 9/4 are cut in 2 bars (9 epochs; 6 at the 144 steps before)
    assert training_defaults((3, 49, 96), "polyphonic", settings, 9176) == {"epochs": 9, "conditioning": "concat"}
    assert training_defaults((3, 49, 144), "polyphonic", settings, 9158)["epochs"] == 6
    # twice the windows, about half the epochs; a tiny corpus keeps the engine's own step target
    assert training_defaults((3, 49, 72), "monophonic", settings, 6746)["epochs"] == 6
    assert training_defaults((3, 49, 72), "monophonic", settings, 40)["epochs"] == settings.resolved(40).epochs


def test_the_loaded_texture_chooses_the_layout(tmp_path):
    for i in range(3):
        write_song(tmp_path / "tunes" / f"t{i}.mid", [n for n in meter_notes("6/8", 8, i) if n[3] == 1],
                   time_signature=(6, 8))
        write_song(tmp_path / "songs" / f"s{i}.mid", meter_notes("3/4", 8, i), time_signature=(3, 4))
    tunes = load_folder(str(tmp_path / "tunes"), WindowSpec(), None)
    songs = load_folder(str(tmp_path / "songs"), WindowSpec(), None)
    assert (tunes.meta["texture"], songs.meta["texture"]) == ("monophonic", "polyphonic")
    assert plugin.data_training_defaults(tunes, TrainSettings(), 20)["conditioning"] == "film"
    assert plugin.data_training_defaults(songs, TrainSettings(), 20)["conditioning"] == "concat"


def test_train_records_the_sized_defaults_and_keeps_what_was_given(tmp_path):
    for i in range(4):
        write_song(tmp_path / "tunes" / f"t{i}.mid", [n for n in meter_notes("6/8", 8, i) if n[3] == 1],
                   time_signature=(6, 8))
    tiny = ["--width", "8", "--latent", "4", "--checkpoint-every", "0"]
    for given, want in (([], "film"), (["--conditioning", "concat"], "concat")):
        out = tmp_path / f"run-{want}"
        result = gen("train", "midi", "--data", tmp_path / "tunes", "--epochs", "1", *tiny, *given, "-o", out,
                     cwd=tmp_path)
        assert result.exit_code == 0, result.stderr
        config = json.loads((out / "config.json").read_text())
        assert config["train"]["conditioning"] == want and config["model"]["conditioning"] == want
        assert config["train"]["epochs"] == 1  # --epochs wins over the sized default


@pytest.mark.skipif("chorales" not in pretrained_runs(), reason="pretrained:chorales is not shipped in this checkout")
def test_sample_draws_from_the_mixture_by_default(tmp_path):
    digests = {}
    for name, flags in (("default", []), ("gmm", ["--prior", "gmm"]), ("normal", ["--prior", "normal"])):
        out = tmp_path / name
        result = gen("--seed", "2", "sample", "-r", "pretrained:chorales", "--class", "minor", "--n", "3", *flags,
                     "-o", out, cwd=tmp_path)
        assert result.exit_code == 0, result.stderr
        digests[name] = [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("*.mid"))]
    assert digests["default"] == digests["gmm"] != digests["normal"]
