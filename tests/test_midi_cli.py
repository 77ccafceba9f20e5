"""The midi domain end to end through the CLI: a folder of MIDI files the tests write themselves
(with corrupt ones among them), the built-in chorales on a small subset converted into a private
cache, sampling that writes MIDI real tools open, stitching, interpolation, and the one-line
errors. Two tiny runs, trained once per session."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
from conftest import assert_one_line_error, gen
from PIL import Image
from test_midi_domain import corrupt_files, song_notes, write_corpus, write_song, write_waltzes_and_a_slow_tune

from gencore import load_run
from gencore_midi.metrics import analyse_keys

TINY_MIDI = ["--epochs", "2", "--width", "8", "--latent", "4", "--checkpoint-every", "0"]
CHORALES = 15  # the first 15 chorales include bwv277, the one music21 cannot write as MIDI
CORRUPT = ("truncated.mid", "random.mid", "databyte.mid", "keysig.mid")


@pytest.fixture(scope="session")
def midi_corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("midi-corpus"))


@pytest.fixture(scope="session")
def midi_run(workdir, midi_corpus):
    out = workdir / "runs" / "midi-folder"
    result = gen("train", "midi", "--data", midi_corpus, *TINY_MIDI, "-o", out, cwd=workdir)
    assert result.exit_code == 0, result.stderr
    return out, result.stderr


@pytest.fixture(scope="session")
def chorale_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gencore-cache")


@pytest.fixture(scope="session")
def chorale_run(workdir, chorale_cache):
    out = workdir / "runs" / "midi-chorales"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENCORE_CACHE", str(chorale_cache))
        result = gen("train", "midi", "--max-files", CHORALES, *TINY_MIDI, "-o", out, cwd=workdir)
    assert result.exit_code == 0, result.stderr
    return out, result.stderr


def agreeing(items, minor: bool) -> list[int]:
    """The samples whose key analysis gives the mode of the class asked for. Their files carry that
    mode's key signature and read back to the identical roll; a sample the analysis hears in the
    other mode carries the class's signature (issue 18) and reads back in its relative key's frame."""
    _, modes = analyse_keys(items[:, :2].numpy().astype(np.uint8), 36, 48)
    return [i for i, m in enumerate(modes) if m == int(minor)]


def test_user_folder_trains_and_skips_each_corrupt_file_once(midi_run):
    run_dir, err = midi_run
    for name in CORRUPT:
        lines = [line for line in err.splitlines() if name in line]
        assert len(lines) == 1 and lines[0].startswith("warning:") and "skipped corrupt MIDI file" in lines[0], err
    assert "4 corrupt files skipped" in err
    config = json.loads((run_dir / "config.json").read_text())
    # the 3/4, 6/8 and changing files all train: the metres join the classes, and a metre row joins the pitches
    assert config["class_names"] == ["major", "minor", "4/4", "3/4", "6/8"] and config["model"]["item_shape"] == [3, 49, 64]
    assert config["condition"]["type"] == "multi-hot"
    # the domain's own default layout (training_defaults), recorded where the run rebuilds from
    assert config["model"]["conditioning"] == "concat" and config["train"]["conditioning"] == "concat"
    assert config["data"]["meta"]["files_skipped"] == 4 and config["data"]["meta"]["files_used"] == 15
    assert "gave no training window" not in err
    final = json.loads((run_dir / "complete.json").read_text())["metrics"]
    for key in ("pitch_range", "pitch_range_train_p10", "polyphony", "groove_consistency", "qualified_note_rate",
                "stats_inside_p10_p90", "mode_control", "mode_judge_accuracy"):
        assert isinstance(final[key], float), key
    assert final["mode_judge_accuracy"] >= 0.9  # the synthetic major/minor songs are clear-cut


def test_mode_control_measures_control(midi_run):
    """The metric behind the README's mode-control figure, on windows whose mode is known: real
    windows asked for as their own mode score the judge's accuracy (1.0 on these clear-cut songs),
    and asked for as the other mode score its complement. A metric that ignored the conditions,
    or read them from the wrong axis, would give about 0.5 to both."""
    import torch

    from gencore.training.data import reload

    run = load_run(midi_run[0], device="cpu")
    data = reload(run.config, run.domain)
    modes, meters = data.conditions[:, :2], data.conditions[:, 2:]  # major, minor | 4/4, 3/4, 6/8
    own = run.domain.metrics(data.items, data.conditions, data, run.config.data, 0)
    flipped = run.domain.metrics(data.items, torch.cat([modes.flip(1), meters], 1), data, run.config.data, 0)
    assert own["mode_control"] >= 0.95 and own["mode_control"] == pytest.approx(own["mode_judge_accuracy"])
    assert flipped["mode_control"] <= 0.05
    assert torch.equal(modes.sum(1), torch.ones(len(data.conditions)))
    assert torch.equal(meters.sum(1), torch.ones(len(data.conditions)))


def test_sample_writes_midi_that_real_tools_open_and_the_loader_reads_back(midi_run, workdir, tmp_path):
    run_dir, _ = midi_run
    out = tmp_path / "minor"
    result = gen("sample", "-r", run_dir, "--class", "minor", "--n", "4", "--tempo", "96", "--seed", "3", "--wav",
                 "--key", "D", "-o", out, cwd=workdir)
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["grid.png"] + [f"minor-{i:04d}.{ext}" for i in range(4) for ext in ("mid", "png", "wav")]
    run = load_run(run_dir, device="cpu")
    items, _, _ = run.sample_with_labels(4, "minor", seed=3, options={"tempo": 96.0})
    assert set(items.unique().tolist()) <= {0.0, 1.0} and items[:, 1].mean() > 0.005  # neither empty nor 0.5-blank
    back, implied = run.domain.load_files(sorted(out.glob("*.mid")), run.config["data"], {})
    assert implied == ["minor"] * 4
    same = agreeing(items, minor=True)
    assert same, "no sample in the mode asked for"
    np.testing.assert_array_equal(back.numpy()[same], items.numpy()[same])
    for path in sorted(out.glob("*.mid")):
        mf = mido.MidiFile(path)
        assert mf.type == 1 and mf.ticks_per_beat == 480
        at_zero = {m.type for m in mf.tracks[0] if m.is_meta and m.time == 0}
        assert {"set_tempo", "time_signature", "key_signature"} <= at_zero
        assert next(m.key for m in mf.tracks[0] if m.type == "key_signature") == "Dm"  # --key D, --class minor
        on = sum(m.type == "note_on" and m.velocity > 0 for t in mf.tracks for m in t)
        off = sum(m.type == "note_off" for t in mf.tracks for m in t)
        assert on == off
    music21 = pytest.importorskip("music21")
    score = music21.converter.parse(str(out / "minor-0000.mid"))
    assert len(score.flatten().notes) > 0
    assert Image.open(out / "minor-0000.png").size[0] > 64


def test_sample_bars_stitches_multiples_and_refuses_others(midi_run, workdir, tmp_path):
    run_dir, _ = midi_run
    out = tmp_path / "long"
    result = gen("sample", "-r", run_dir, "--class", "major", "--n", "2", "--bars", "8", "-o", out, cwd=workdir)
    assert result.exit_code == 0, result.stderr
    mf = mido.MidiFile(out / "major-0000.mid")
    assert mf.length == pytest.approx(8 * 4 * 60 / 96, abs=0.01)  # 8 bars at the default 96 bpm
    result = gen("sample", "-r", run_dir, "--class", "major", "--bars", "2", "-o", tmp_path / "short", cwd=workdir)
    assert_one_line_error(result, "--bars", "4-bar")
    assert not (tmp_path / "short").exists()
    result = gen("sample", "-r", run_dir, "--class", "major", "--threshold", "1.5", "-o", tmp_path / "t", cwd=workdir)
    assert_one_line_error(result, "--threshold")
    # a fixed frame threshold and the temperature are honoured
    run = load_run(run_dir, device="cpu")
    sounding = {t: run.sample_with_labels(8, "major", seed=1, options={"threshold": t})[0][:, 1].sum()
                for t in (0.02, 0.999)}
    assert sounding[0.999] < sounding[0.02]
    seen = []
    decode = run.decode
    run.decode = lambda z, cond=None: seen.append(z) or decode(z, cond)
    for t in (0.1, 3.0):
        run.sample_with_labels(64, "major", seed=1, temperature=t, options={})
    cold, hot = [z for z in seen if z.shape[0] == 64]  # (the calibration decodes 256 latents at temperature 1)
    assert hot.std() > 10 * cold.std()  # the latent noise is scaled by the temperature


@pytest.mark.parametrize("meter", ["3/4", "6/8"])
def test_sample_in_another_metre_round_trips_through_the_loader(midi_run, workdir, tmp_path, meter):
    run_dir, _ = midi_run
    out = tmp_path / meter.replace("/", "-")
    result = gen("sample", "-r", run_dir, "--class", "major", "--meter", meter, "--n", "3", "--seed", "2", "-o", out,
                 cwd=workdir)
    assert result.exit_code == 0, result.stderr
    run = load_run(run_dir, device="cpu")
    items, _, _ = run.sample_with_labels(3, "major", seed=2, options={"meter": meter})
    num, den = map(int, meter.split("/"))
    for path in sorted(out.glob("*.mid")):
        mf = mido.MidiFile(path)
        sig = next(m for m in mf.tracks[0] if m.type == "time_signature")
        assert (sig.numerator, sig.denominator) == (num, den)
        assert mf.length == pytest.approx(4 * num * 4 / den * 60 / 96, abs=0.01)  # 4 bars of the metre at 96 bpm
        assert next(m.key for m in mf.tracks[0] if m.type == "key_signature") == "C"  # --class major
    back, implied = run.domain.load_files(sorted(out.glob("*.mid")), run.config["data"], {})
    assert implied == [meter.replace("/", "-")] * 3  # the folder name, which the core checks against the classes
    same = agreeing(items, minor=False)
    np.testing.assert_array_equal(back.numpy()[same], items.numpy()[same])
    result = gen("sample", "-r", run_dir, "--meter", "5/4", "-o", tmp_path / "bad", cwd=workdir)
    assert_one_line_error(result, "--meter", "5/4")
    assert not (tmp_path / "bad").exists()


def test_a_metre_cut_in_fewer_bars_samples_one_window_and_stitches_to_bars(workdir, tmp_path):
    """One 9/4 tune among 72 windows of 3/4 trains in 1-bar windows (test_midi_domain); `gen sample
    --meter 9/4` writes one bar of 9/4 by default, and `--bars 4` stitches four."""
    corpus = write_waltzes_and_a_slow_tune(tmp_path / "mix")
    run_dir = workdir / "runs" / "midi-slow"
    result = gen("train", "midi", "--data", corpus, *TINY_MIDI, "-o", run_dir, cwd=workdir)
    assert result.exit_code == 0, result.stderr
    assert json.loads((run_dir / "config.json").read_text())["data"]["meta"]["window"]["meter_bars"] == {"9/4": 1}
    for bars, seconds in ((None, 36 / 4 * 60 / 96), (4, 4 * 36 / 4 * 60 / 96)):  # at the default 96 bpm
        out = tmp_path / f"slow{bars}"
        extra = [] if bars is None else ["--bars", str(bars)]
        result = gen("sample", "-r", run_dir, "--meter", "9/4", "--n", "2", *extra, "-o", out, cwd=workdir)
        assert result.exit_code == 0, result.stderr
        mf = mido.MidiFile(sorted(out.glob("*.mid"))[0])
        assert next(f"{m.numerator}/{m.denominator}" for m in mf.tracks[0] if m.type == "time_signature") == "9/4"
        assert mf.length == pytest.approx(seconds, abs=0.01)
    items, _, _ = load_run(run_dir, device="cpu").sample_with_labels(2, "9/4", seed=0, options={})
    assert items.shape[-1] == 48 and not items[:, 1, :48, 36:].any()  # one bar of 9/4, then silence
    assert items[:, 2, 48, :36].all() and not items[:, 2, 48, 36:].any()  # the metre row marks its extent


def test_minor_samples_carry_a_minor_key_signature(midi_run, workdir, tmp_path):
    run_dir, _ = midi_run
    result = gen("sample", "-r", run_dir, "--class", "minor", "--n", "4", "--seed", "5", "-o", tmp_path / "m",
                 cwd=workdir)
    assert result.exit_code == 0, result.stderr
    keys = [next(m.key for m in mido.MidiFile(f).tracks[0] if m.type == "key_signature")
            for f in sorted((tmp_path / "m").glob("*.mid"))]
    assert keys == ["Cm"] * 4


def test_calibrated_rules_are_kept_beside_the_decoder_and_give_the_same_files(midi_run, workdir, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(midi_run[0], run_dir)
    (run_dir / "decoding_rules.json").unlink(missing_ok=True)

    def sample(name: str) -> list[bytes]:
        result = gen("sample", "-r", run_dir, "--class", "minor", "--n", "3", "--seed", "3", "-o", tmp_path / name,
                     cwd=workdir)
        assert result.exit_code == 0, result.stderr
        return [f.read_bytes() for f in sorted((tmp_path / name).glob("*.mid"))]

    calibrated = sample("first")
    stored = json.loads((run_dir / "decoding_rules.json").read_text())
    assert len(stored["rules"]) == 1  # one class, one metre
    assert sample("second") == calibrated  # read back from the file

    # Rules stored for another decoder are not trusted: a wild threshold under a stale digest is
    # recalibrated away and the file is rewritten for this decoder.
    key = next(iter(stored["rules"]))
    stale = dict(stored, decoder_sha256="0" * 64, rules={key: dict(stored["rules"][key], threshold=0.999)})
    (run_dir / "decoding_rules.json").write_text(json.dumps(stale))
    assert sample("third") == calibrated
    assert json.loads((run_dir / "decoding_rules.json").read_text()) == stored


def test_interpolate_and_reconstruct_midi_files(midi_run, midi_corpus, workdir, tmp_path):
    run_dir, _ = midi_run
    a, b = midi_corpus / "major" / "major0.mid", midi_corpus / "major" / "major1.mid"
    result = gen("interpolate", "-r", run_dir, "--from", a, "--to", b, "--steps", "3", "-o", tmp_path / "morph",
                 cwd=workdir)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "morph").glob("*.mid")) == [f"step-00{i}.mid" for i in range(3)]
    assert (tmp_path / "morph" / "strip.png").is_file()
    result = gen("reconstruct", "-r", run_dir, a, "-o", tmp_path / "recon", cwd=workdir)
    assert result.exit_code == 0, result.stderr
    assert mido.MidiFile(tmp_path / "recon" / "major0-recon.mid").type == 1
    bad = corrupt_files(tmp_path / "bad", a.read_bytes())["keysig"]
    assert_one_line_error(gen("reconstruct", "-r", run_dir, bad, "--class", "major", "-o", tmp_path / "r2",
                              cwd=workdir), "keysig.mid", "KeySignatureError")


def test_bad_folders_and_options_end_in_one_line(workdir, tmp_path):
    bad = tmp_path / "all-bad"
    corrupt_files(bad / "x", write_song(tmp_path / "ok.mid", song_notes("major", 0)).read_bytes())
    result = gen("train", "midi", "--data", bad, *TINY_MIDI, "-o", tmp_path / "r1", cwd=workdir)
    assert_one_line_error(result, "none of the 4 MIDI files")
    assert result.stderr.count("skipped corrupt MIDI file") == 4
    assert not (tmp_path / "r1").exists()
    (tmp_path / "empty").mkdir()
    assert_one_line_error(gen("train", "midi", "--data", tmp_path / "empty", "-o", tmp_path / "r2", cwd=workdir),
                          "empty")
    assert_one_line_error(gen("train", "midi", "--data", bad, "--bars", "3", cwd=workdir), "--bars")
    assert_one_line_error(gen("train", "midi", "--data", bad, "--pitch-range", "90-20", cwd=workdir), "--pitch-range")
    assert_one_line_error(gen("train", "midi", "--data", bad, "--conditioning", "films", cwd=workdir),
                          "--conditioning", "film, concat")


def test_builtin_chorales_subset(chorale_run, chorale_cache, capsys, monkeypatch):
    run_dir, err = chorale_run
    assert "converting 15 Bach chorales" in err
    assert "warning: chorale bach/bwv277 skipped: music21 could not write it as MIDI" in err
    manifest = json.loads((chorale_cache / "chorales-v1" / "manifest.json").read_text())
    assert len(manifest["names"]) == 371 and len(manifest["done"]) == 14 and list(manifest["failed"]) == ["bach/bwv277"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["class_names"] == ["major", "minor"] and config["data"]["source"] == "builtin:chorales"
    final = json.loads((run_dir / "complete.json").read_text())["metrics"]
    assert 0.5 <= final["mode_judge_accuracy"] <= 1 and 0 <= final["mode_control"] <= 1
    assert 0.05 < final["density_train"] < 0.12  # REFERENCE.md §2: about 8.5% of cells sound
    width, height = Image.open(run_dir / "samples.png").size
    assert height < width  # two rows (major, minor) of eight
    # the second time, the cache answers: no conversion, no music21 needed
    from gencore_midi import plugin

    monkeypatch.setenv("GENCORE_CACHE", str(chorale_cache))
    monkeypatch.setitem(sys.modules, "music21", None)
    data = plugin.load(None, {"max_files": CHORALES})
    assert "converting" not in capsys.readouterr().err
    assert data.class_names == ["major", "minor"] and data.items.shape[1:] == (3, 48, 64)


def test_without_music21_one_line_with_the_install_hint(workdir, tmp_path, monkeypatch):
    monkeypatch.setenv("GENCORE_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setitem(sys.modules, "music21", None)  # `import music21` now raises ImportError
    result = gen("train", "midi", "-o", tmp_path / "r", cwd=workdir)
    assert_one_line_error(result, "music21", "pip install 'gencore[midi]'")
    assert not (tmp_path / "r").exists()


def test_help_lists_the_midi_options(workdir):
    result = gen("sample", "--help", cwd=workdir)
    assert result.exit_code == 0
    for flag in ("--bars", "--tempo", "--threshold", "--wav"):
        assert flag in result.stdout
