"""The midi domain in-process: MIDI files the tests write themselves with mido (type 0 and 1,
several ticks-per-beat values, tempo changes, repeated notes, drums, corrupt files), the loader,
the export round trip, the statistics and the key-analysis judge. No training here."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest

from gencore.errors import GenError
from gencore_midi import plugin
from gencore_midi.decode import calibrate, canonical, decode
from gencore_midi.keyframe import to_frame
from gencore_midi.loader import load_folder, load_user_files
from gencore_midi.metrics import analyse_keys, compare, key_name, window_stats
from gencore_midi.midifile import MidiReadError, read_midi
from gencore_midi.options import Meter, WindowSpec, parse_train_options
from gencore_midi.roll import FRAME, ONSET, file_roll
from gencore_midi.sampling import export

MAJOR_NAMES_BY_PC = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
MAJOR_PROGRESSION = [(0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7)]
MINOR_PROGRESSION = [(0, 3, 7), (5, 8, 12), (7, 11, 14), (0, 3, 7)]


def song_notes(mode: str, seed: int, bars: int = 8, drums: bool = False):
    """(start_step, end_step, pitch, channel) on a 16th grid: block chords in half notes, a melody
    in quarters and eighths that repeats a pitch (two onsets, touching frames), optional drums."""
    rng = np.random.default_rng(seed)
    tonic = 48 + int(rng.integers(0, 6))
    prog = MAJOR_PROGRESSION if mode == "major" else MINOR_PROGRESSION
    scale = [0, 2, 4, 5, 7, 9, 11] if mode == "major" else [0, 2, 3, 5, 7, 8, 10]
    notes = []
    for bar in range(bars):
        chord = prog[bar % 4]
        for half in range(2):
            s = bar * 16 + half * 8
            notes += [(s, s + 8, tonic + i, 0) for i in chord]
        t = bar * 16
        while t < bar * 16 + 16:
            pitch = tonic + 12 + scale[int(rng.integers(0, 7))]
            if rng.random() < 0.3 and t + 4 <= bar * 16 + 16:  # a repeated note: two eighths
                notes += [(t, t + 2, pitch, 1), (t + 2, t + 4, pitch, 1)]
                t += 4
            else:
                notes.append((t, t + 4, pitch, 1))
                t += 4
        if drums:
            notes += [(bar * 16 + b * 4, bar * 16 + b * 4 + 1, 36 if b % 2 == 0 else 38, 9) for b in range(4)]
    return notes


def meter_notes(meter: str, bars: int, seed: int, start: int = 0, mode: str = "major"):
    """Notes of `bars` bars in a metre, from step `start`: a bass note held through each bar, and
    a melody of one note per beat (three eighths in some compound beats), longest on downbeats."""
    m = Meter.of(meter)
    rng = np.random.default_rng(seed)
    tonic = 48 + int(rng.integers(0, 6))
    scale = [0, 2, 4, 5, 7, 9, 11] if mode == "major" else [0, 2, 3, 5, 7, 8, 10]
    notes = []
    for bar in range(bars):
        s = start + bar * m.steps_per_bar
        notes.append((s, s + m.steps_per_bar, tonic + (0, 7, 5, 0)[bar % 4], 0))
        for beat in range(m.beats):
            b = s + beat * m.beat_steps
            if m.compound and rng.random() < 0.5:
                third = m.beat_steps // 3
                notes += [(b + i * third, b + (i + 1) * third, tonic + 12 + scale[int(rng.integers(0, 7))], 1)
                          for i in range(3)]
            else:
                notes.append((b, b + m.beat_steps, tonic + 12 + scale[int(rng.integers(0, 7))], 1))
    return notes


def write_song(path: Path, notes, *, tpb: int = 480, midi_type: int = 1, tempo_change: bool = False,
               time_signature: tuple[int, int] | list[tuple[int, int, int]] = (4, 4), key: str | None = None) -> Path:
    """`time_signature`: (num, den) at 0, or [(step, num, den), ...] for metre changes."""
    per_step = tpb // 4
    signatures = [(0, *time_signature)] if isinstance(time_signature, tuple) else time_signature
    meta = [(at * per_step, mido.MetaMessage("time_signature", numerator=num, denominator=den))
            for at, num, den in signatures] + [(0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100)))]
    if key:
        meta.append((0, mido.MetaMessage("key_signature", key=key)))
    if tempo_change:
        meta += [(4 * tpb * 2, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(72))),
                 (4 * tpb * 5, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(130)))]
    groups: dict[int, list] = {}
    for start, end, pitch, channel in notes:
        groups.setdefault(0 if midi_type == 0 else channel + 1, []).extend([
            (start * per_step, 1, mido.Message("note_on", channel=channel, note=pitch, velocity=80)),
            (end * per_step, 0, mido.Message("note_off", channel=channel, note=pitch, velocity=0))])
    mf = mido.MidiFile(type=midi_type, ticks_per_beat=tpb)
    if midi_type == 0:
        tracks = [[(t, 0, m) for t, m in meta] + groups.get(0, [])]
    else:
        tracks = [[(t, 0, m) for t, m in meta]] + [groups[k] for k in sorted(groups)]
    for events in tracks:
        events.sort(key=lambda e: (e[0], e[1]))
        track, now = mido.MidiTrack(), 0
        for tick, _, msg in events:
            track.append(msg.copy(time=tick - now))
            now = tick
        mf.tracks.append(track)
    path.parent.mkdir(parents=True, exist_ok=True)
    mf.save(path)
    return path


def corrupt_files(folder: Path, base: bytes) -> dict[str, Path]:
    """Truncated, random bytes (no MThd), a data byte above 127, and a bad key signature."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {"truncated": folder / "truncated.mid", "random": folder / "random.mid",
           "databyte": folder / "databyte.mid", "keysig": folder / "keysig.mid"}
    out["truncated"].write_bytes(base[: len(base) // 2])
    out["random"].write_bytes(np.random.default_rng(0).integers(0, 256, 400, dtype=np.uint8).tobytes())
    data = bytearray(base)
    i = data.find(bytes([0x90]))  # the first note-on: its velocity byte becomes 200
    data[i + 2] = 200
    out["databyte"].write_bytes(bytes(data))
    mf = mido.MidiFile(type=1, ticks_per_beat=480)
    track = mido.MidiTrack([mido.MetaMessage("key_signature", key="C"),
                            mido.Message("note_on", note=60, velocity=80), mido.Message("note_off", note=60, time=480)])
    mf.tracks.append(track)
    buf = io.BytesIO()
    mf.save(file=buf)
    data = bytearray(buf.getvalue())
    i = data.find(bytes([0xFF, 0x59, 0x02]))
    data[i + 3] = 20  # 20 sharps
    out["keysig"].write_bytes(bytes(data))
    return out


def write_corpus(root: Path, per_class: int = 6, with_corrupt: bool = True) -> Path:
    """Two classes of 8-bar songs in varied encodings, plus a 3/4 file, a 6/8 file, a file that
    changes from 4/4 to 3/4, and four corrupt files."""
    variants = [dict(tpb=480, midi_type=1), dict(tpb=96, midi_type=0), dict(tpb=960, midi_type=1, tempo_change=True),
                dict(tpb=1024, midi_type=0, tempo_change=True), dict(tpb=384, midi_type=1), dict(tpb=480, midi_type=1)]
    for c, mode in enumerate(("major", "minor")):
        for i in range(per_class):
            write_song(root / mode / f"{mode}{i}.mid", song_notes(mode, 10 * c + i, drums=(i == 5)),
                       **variants[i % len(variants)])
    write_song(root / "major" / "waltz.mid", song_notes("major", 99), time_signature=(3, 4))
    write_song(root / "minor" / "jig.mid", meter_notes("6/8", 8, 5, mode="minor"), time_signature=(6, 8))
    write_song(root / "major" / "change.mid", meter_notes("4/4", 4, 6) + meter_notes("3/4", 6, 7, start=64),
               time_signature=[(0, 4, 4), (64, 3, 4)])
    if with_corrupt:
        corrupt_files(root / "minor", (root / "major" / "major0.mid").read_bytes())
    return root


def write_waltzes_and_a_slow_tune(root: Path) -> Path:
    """Eight 12-bar waltzes (72 windows of 3/4) and one 4-bar tune in 9/4."""
    for i in range(8):
        write_song(root / f"waltz{i}.mid", meter_notes("3/4", 12, i), time_signature=(3, 4))
    write_song(root / "slow.mid", meter_notes("9/4", 4, 9), time_signature=(9, 4))
    return root


def expected_roll(notes, spec: WindowSpec, steps: int) -> np.ndarray:
    roll = np.zeros((2, spec.rows, steps), dtype=np.uint8)
    for s, e, p, ch in notes:
        if ch == 9 or s >= steps:
            continue
        roll[ONSET, p - spec.low, s] = 1
        roll[FRAME, p - spec.low, s:min(e, steps)] = 1
    return roll


# -- reading -------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", [dict(tpb=480, midi_type=1), dict(tpb=96, midi_type=0),
                                     dict(tpb=960, midi_type=1, tempo_change=True),
                                     dict(tpb=1000, midi_type=0, tempo_change=True)])
def test_every_encoding_gives_the_same_roll(tmp_path, variant):
    notes = song_notes("minor", 3)
    path = write_song(tmp_path / "a.mid", notes, **variant)
    spec = WindowSpec(transpose=0)
    fr = file_roll(read_midi(path), spec)
    assert fr.notes == len(notes)
    np.testing.assert_array_equal(fr.roll, expected_roll(notes, spec, fr.roll.shape[2]))
    # repeated notes keep two onsets under touching frames
    repeated = [(a, b) for a, b in zip(notes, notes[1:]) if a[2] == b[2] and a[1] == b[0] and a[3] == b[3] == 1]
    assert repeated
    (s1, _, p, _), (s2, _, _, _) = repeated[0]
    assert fr.roll[ONSET, p - spec.low, s1] == fr.roll[ONSET, p - spec.low, s2] == 1
    assert fr.roll[FRAME, p - spec.low, s1:s2 + 1].all()


def test_corrupt_files_raise_named_reasons(tmp_path):
    base = write_song(tmp_path / "ok.mid", song_notes("major", 0)).read_bytes()
    files = corrupt_files(tmp_path / "bad", base)
    reasons = {}
    for name, path in files.items():
        with pytest.raises(MidiReadError) as info:
            read_midi(path)
        reasons[name] = info.value.reason
    assert "EOFError" in reasons["truncated"]
    assert "OSError" in reasons["random"] and "MThd" in reasons["random"]
    assert "OSError" in reasons["databyte"] and "127" in reasons["databyte"]
    assert "KeySignatureError" in reasons["keysig"]
    junk = tmp_path / "junk.mid"
    junk.write_bytes(b"MThd" + bytes(range(60)))  # a header mido accepts, with nonsense in it
    with pytest.raises(MidiReadError):
        read_midi(junk)


def test_folder_loader_skips_and_counts_corrupt_files(tmp_path):
    root = write_corpus(tmp_path / "corpus")
    with pytest.warns(UserWarning) as caught:
        data = load_folder(str(root), WindowSpec(transpose=1), None)
    messages = [str(w.message) for w in caught]
    for name in ("truncated.mid", "random.mid", "databyte.mid", "keysig.mid"):
        assert sum(name in m and "skipped corrupt MIDI file" in m for m in messages) == 1, messages
    assert not any("gave no training window" in m for m in messages), messages  # no file dropped for its metre
    assert data.class_names == ["major", "minor", "4/4", "3/4", "6/8"] and data.multi_label
    assert data.items.shape[1:] == (3, 49, 64)  # 48 pitch rows and the metre row; 4 bars of 4/4 is the longest
    assert data.meta["files_skipped"] == 4 and data.meta["files_used"] == 15
    # 8-bar songs give 5 windows each; the 6/8 jig 5; the change 1 (4/4) + 3 (3/4); the "waltz" is 4/4
    # material under a 3/4 signature (128 steps): its bar phase is a guess, and 7 windows fit after it
    assert data.meta["meters"] == {"4/4": 12 * 5 + 1, "3/4": 7 + 3, "6/8": 5}, data.meta["meters"]
    assert data.meta["windows"] == 12 * 5 + 1 + 10 + 5
    assert data.items.shape[0] > data.meta["windows"]  # transposed copies
    assert data.meta["texture"] == "polyphonic"
    assert set(data.items.unique().tolist()) == {0.0, 1.0}
    assert data.conditions.sum(0).tolist()[0] > 0 and data.conditions.sum(0).tolist()[1] > 0


def test_tracks_and_drums_options(tmp_path):
    path = write_song(tmp_path / "d" / "x.mid", song_notes("major", 5, drums=True))
    spec, _ = parse_train_options({"drums": "rows", "tracks": "all", "transpose": 0})
    data = load_folder(str(tmp_path / "d"), spec, None)
    assert data.items.shape[2] == 48 + 8 and data.items[:, :, 48:].sum() > 0
    spec, _ = parse_train_options({"tracks": "2", "transpose": 0})  # the melody track only
    melody = load_folder(str(tmp_path / "d"), spec, None)
    assert 0 < melody.items[:, 1].sum() < data.items[:, 1, :48].sum()
    assert read_midi(path, (1,)).notes and all(n.track == 1 for n in read_midi(path, (1,)).notes)


@pytest.mark.parametrize("options, flag", [
    ({"bars": 3}, "--bars"), ({"pitch_range": "80-40"}, "--pitch-range"), ({"pitch_range": "60-65"}, "--pitch-range"),
    ({"pitch_range": "C2-B5"}, "--pitch-range"), ({"tracks": "one"}, "--tracks"), ({"drums": "keep"}, "--drums"),
    ({"transpose": 12}, "--transpose"), ({"hop": 5}, "--hop"), ({"max_files": 0}, "--max-files"),
])
def test_bad_option_values_name_the_option(options, flag):
    with pytest.raises(GenError) as info:
        parse_train_options(options)
    assert info.value.where == flag and info.value.hint


def test_bad_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenError, match="empty"):
        plugin.load(str(tmp_path / "empty"), {})
    only_bad = tmp_path / "bad"
    corrupt_files(only_bad, write_song(tmp_path / "ok.mid", song_notes("major", 0)).read_bytes())
    with pytest.warns(UserWarning), pytest.raises(GenError, match="none of the 4 MIDI files"):
        plugin.load(str(only_bad), {})
    waltz = tmp_path / "waltz"
    write_song(waltz / "w.mid", song_notes("major", 1), time_signature=(3, 4))
    with pytest.warns(UserWarning, match="no section in 6/8"), pytest.raises(GenError, match="no usable 4-bar"):
        plugin.load(str(waltz), {"meter": "6/8"})
    with pytest.raises(GenError) as info:
        plugin.load(str(waltz), {"meter": "7/3"})
    assert info.value.where == "--meter"
    with pytest.raises(GenError, match="unknown built-in"):
        plugin.load("builtin:nope", {})


# -- writing and the round trip ----------------------------------------------------------------
def test_export_round_trip_keeps_repeated_notes(tmp_path):
    spec = WindowSpec(transpose=0)
    data_spec = {"meta": {"window": spec.to_json(), "density": {"all": [0.03, 0.085]}}}
    notes = song_notes("major", 7, bars=4)
    roll = expected_roll(notes, spec, 64)
    stitched = np.concatenate([roll, roll], axis=-1)  # an 8-bar (stitched) sample too
    import torch

    for name, r in (("four", roll), ("eight", stitched)):
        written = export(torch.from_numpy(r[None].astype(np.float32)), tmp_path, [name], data_spec,
                         {"tempo": 96, "wav": True})
        assert {p.suffix for p in written} == {".mid", ".png", ".wav"}
        mf = mido.MidiFile(tmp_path / f"{name}.mid")
        assert mf.type == 1 and mf.ticks_per_beat == 480
        head = [m for m in mf.tracks[0] if m.time == 0 and m.is_meta]
        assert {"set_tempo", "time_signature", "key_signature"} <= {m.type for m in head}
        assert round(mido.tempo2bpm(next(m.tempo for m in head if m.type == "set_tempo"))) == 96
        ons = [m for t in mf.tracks for m in t if m.type == "note_on" and m.velocity > 0]
        offs = [m for t in mf.tracks for m in t if m.type == "note_off"]
        assert len(ons) == len(offs) == int(r[ONSET].sum())
        assert all(1 <= m.velocity <= 127 for m in ons) and len({m.velocity for m in ons}) > 1
        back = file_roll(read_midi(tmp_path / f"{name}.mid"), spec).roll
        np.testing.assert_array_equal(back[:, :, :r.shape[2]], r)
    items, implied = load_user_files([tmp_path / "four.mid"], data_spec)
    np.testing.assert_array_equal(items[0, :2].numpy(), roll)
    assert items.shape[1] == 3 and items[0, 2].sum() > items[0, 1].sum()  # the chroma channel is denser
    # --key moves the tonic-C frame to another tonic; reading the file back undoes it exactly
    for key, shift, names in (("Bb", -2, ("Bb", "Bbm")), ("F#", 6, ("F#", "F#m")), ("Em", 4, ("E", "Em"))):
        export(torch.from_numpy(roll[None].astype(np.float32)), tmp_path, ["moved"], data_spec, {"key": key})
        mf = mido.MidiFile(tmp_path / "moved.mid")
        assert next(m.key for m in mf.tracks[0] if m.type == "key_signature") in names
        moved = file_roll(read_midi(tmp_path / "moved.mid"), WindowSpec(normalise_key=False)).roll
        np.testing.assert_array_equal(moved, np.roll(roll, shift, axis=1))  # the written pitches moved
        np.testing.assert_array_equal(load_user_files([tmp_path / "moved.mid"], data_spec)[0][0, :2].numpy(), roll)
    with pytest.raises(GenError):
        export(torch.from_numpy(roll[None].astype(np.float32)), tmp_path, ["x"], data_spec, {"key": "H"})


def test_key_frame_from_signature_or_analysis(tmp_path):
    spec = WindowSpec(transpose=0)
    notes = song_notes("major", 2)  # tonic 48 + (0..5)
    tonic = min(p for _, _, p, ch in notes if ch == 0)
    for name, key in (("signed", MAJOR_NAMES_BY_PC[tonic % 12]), ("analysed", None)):
        parsed = read_midi(write_song(tmp_path / f"{name}.mid", notes, key=key))
        moved, shift = to_frame(parsed, spec)
        assert (tonic + shift) % 12 == 0 and -6 <= shift <= 5, (name, tonic, shift)
        raw = file_roll(parsed, WindowSpec(transpose=0, normalise_key=False)).roll
        np.testing.assert_array_equal(file_roll(moved, spec).roll, np.roll(raw, shift, axis=1))
    minor_notes = song_notes("minor", 4)
    minor_tonic = min(p for _, _, p, ch in minor_notes if ch == 0)
    relative_major = MAJOR_NAMES_BY_PC[(minor_tonic + 3) % 12]  # a signature written without its mode
    for name, key in (("minor", None), ("minor-signed", relative_major)):
        minor = read_midi(write_song(tmp_path / f"{name}.mid", minor_notes, key=key))
        moved, _ = to_frame(minor, spec)
        tonic_pc, mode = analyse_keys(file_roll(moved, spec).roll[None], spec.low, spec.pitch_rows)
        assert (tonic_pc[0], mode[0]) == (0, 1), name  # C minor
    kept, shift = to_frame(minor, WindowSpec(normalise_key=False))
    assert shift == 0 and kept is minor


def test_decoding_is_onset_gated_keeps_short_notes_out_and_is_calibrated():
    probs = np.zeros((1, 3, 48, 16), dtype=np.float32)
    probs[0, FRAME, 10, 0:6] = 0.9  # a frame without any onset: no note
    probs[0, FRAME, 20, 2:12] = [0.9, 0.9, 0.1, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]  # dips once at step 4
    probs[0, ONSET, 20, [2, 8]] = 1.0  # a note, and a repeated note after the dip
    probs[0, ONSET, 30, 5] = 1.0  # a one-step note with room to grow
    probs[0, FRAME, 40, 0:16] = 0.9
    probs[0, ONSET, 40, [0, 15]] = 1.0  # a one-step repeat with no room to grow: merges into the note before
    raw = decode(probs, 0.5, rng=np.random.default_rng(0), min_steps=1)[0]
    assert raw[FRAME, 10].sum() == 0
    assert raw[ONSET, 20].nonzero()[0].tolist() == [2, 8]
    assert raw[FRAME, 20].nonzero()[0].tolist() == [2, 3, 8, 9, 10, 11]  # nothing after the dip until an onset
    assert raw[FRAME, 30].nonzero()[0].tolist() == [5]
    roll = decode(probs, 0.5, rng=np.random.default_rng(0))[0]  # at least 2 steps per note
    assert roll[FRAME, 30].nonzero()[0].tolist() == [5, 6]
    assert roll[ONSET, 40].nonzero()[0].tolist() == [0] and roll[FRAME, 40].sum() == 16
    np.testing.assert_array_equal(canonical(roll[None])[0], roll)  # export round-trips it exactly
    rng = np.random.default_rng(0)
    probs = np.repeat(rng.random((8, 3, 48, 8)) ** 4, 8, axis=-1).astype(np.float32)  # smooth in time, like a decoder
    probs[:, ONSET] = np.where(rng.random((8, 48, 64)) < 0.06, 0.4, 0.01)  # onsets on about 2.5% of the cells
    t = calibrate(probs, 0.085)
    rolls = decode(probs, t, rng=np.random.default_rng(0))
    assert abs(rolls[:, FRAME].mean() - 0.085) < 0.005
    np.testing.assert_array_equal(canonical(rolls), rolls)
    stats = window_stats(rolls, WindowSpec())
    assert np.nanmin(stats["qualified_note_rate"]) == 1.0


# -- statistics and the judge --------------------------------------------------------------------
def test_window_statistics_on_a_known_roll():
    spec = WindowSpec(transpose=0)
    roll = np.zeros((1, 2, 48, 64), dtype=np.uint8)
    for bar in range(4):  # a C major triad (C4 E4 G4) struck on every beat of bars 0-2; bar 3 silent
        if bar == 3:
            continue
        for beat in range(4):
            s = bar * 16 + beat * 4
            for p in (60, 64, 67):
                roll[0, ONSET, p - 36, s] = 1
                roll[0, FRAME, p - 36, s:s + 4] = 1
    stats = window_stats(roll, spec)
    assert stats["pitch_range"][0] == 7 and stats["pitch_classes"][0] == 3 and stats["pitches_used"][0] == 3
    assert stats["polyphony"][0] == 3 and stats["scale_consistency"][0] == 1.0
    assert stats["pc_entropy"][0] == pytest.approx(np.log2(3))
    assert stats["empty_beat_rate"][0] == 0.25
    assert stats["groove_consistency"][0] == pytest.approx(1 - (0 + 0 + 4 / 16) / 3)
    assert stats["qualified_note_rate"][0] == 1.0
    table = compare(roll, np.repeat(roll, 5, axis=0), spec)
    assert all(row["inside"] for name, row in table.items() if "inside" in row)


def test_key_judge_matches_music21(tmp_path):
    music21 = pytest.importorskip("music21")
    spec = WindowSpec(transpose=0)
    for mode, seed in (("major", 1), ("minor", 2), ("minor", 4)):
        notes = song_notes(mode, seed)
        path = write_song(tmp_path / f"{mode}{seed}.mid", notes)
        roll = file_roll(read_midi(path), spec).roll
        tonic, found = analyse_keys(roll[None], spec.low, spec.pitch_rows)
        reference = music21.converter.parse(str(path)).analyze("key")
        assert (found[0] == 1) == (reference.mode == "minor") == (mode == "minor")
        assert tonic[0] == reference.tonic.pitchClass
    assert key_name(roll, spec) in ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm")


def test_plugin_imports_without_torch_or_music21():
    code = ("import sys, gencore_midi, gencore_midi.options; "
            "print(sorted(m for m in ('torch', 'music21') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


# -- metres, one-line decoding, key signatures, pictures (issue 23) --------------------------------
def _first_window_round_trip(tmp_path, name, notes, signatures, meter, bars=4):
    """Load a file through the folder loader, write its first window back out as MIDI with its
    metre, and read that file back through the loader: the same window and time signature."""
    path = write_song(tmp_path / name / f"{name}.mid", notes, time_signature=signatures)
    data = load_folder(str(tmp_path / name), WindowSpec(bars=bars), None)
    meters = list(data.meta["meters"])
    spec = WindowSpec.from_json(data.meta["window"])
    data_spec = {"meta": data.meta}
    index = next(i for i, item in enumerate(data.items)
                 if (spec.meter_row is None and meters == [meter])
                 or (spec.meter_row is not None and item[0, spec.meter_row, spec.meter_steps(meter) - 1] == 0
                     and item[2, spec.meter_row, spec.meter_steps(meter) - 1] == 1))
    item = data.items[index:index + 1]
    export(item, tmp_path / "out", [name], data_spec, {})
    mf = mido.MidiFile(tmp_path / "out" / f"{name}.mid")
    sig = next(m for m in mf.tracks[0] if m.type == "time_signature")
    assert f"{sig.numerator}/{sig.denominator}" == meter
    assert mf.length == pytest.approx(spec.meter_steps(meter) / 4 * 60 / 96, abs=0.01)  # its own length
    back, _ = load_user_files([tmp_path / "out" / f"{name}.mid"], data_spec)
    np.testing.assert_array_equal(back.numpy(), item.numpy())
    return data, path


@pytest.mark.parametrize("meter", ["3/4", "6/8"])
def test_a_metre_round_trips_through_the_loader(tmp_path, meter):
    num, den = map(int, meter.split("/"))
    notes = meter_notes(meter, 8, 3)
    data, _ = _first_window_round_trip(tmp_path, meter.replace("/", "-"), notes, (num, den), meter)
    m = Meter.of(meter)
    assert data.meta["meters"] == {meter: 5} and data.items.shape[-1] == 4 * m.steps_per_bar
    first = data.items[0, 0, :48].numpy()  # onsets: every bar's bass note starts on the bar line
    assert all(first[:, bar * m.steps_per_bar].any() for bar in range(4))


def test_a_metre_change_round_trips_through_the_loader(tmp_path):
    notes = meter_notes("4/4", 4, 6) + meter_notes("6/8", 6, 7, start=64)
    data, _ = _first_window_round_trip(tmp_path, "change", notes, [(0, 4, 4), (64, 6, 8)], "6/8")
    assert data.meta["meters"] == {"6/8": 3, "4/4": 1}  # 6 bars of 6/8 give 3 windows, 4 bars of 4/4 one
    assert data.class_names == ["6/8", "4/4"] and not data.multi_label  # unlabelled: the metre is the class
    _first_window_round_trip(tmp_path, "change44", notes, [(0, 4, 4), (64, 6, 8)], "4/4")


def test_every_listed_metre_gives_windows_in_whole_bars(tmp_path):
    for meter in ("2/4", "3/4", "4/4", "6/8", "9/8", "12/8", "3/8"):
        num, den = map(int, meter.split("/"))
        write_song(tmp_path / "all" / f"{num}-{den}.mid", meter_notes(meter, 4, num), time_signature=(num, den))
    data = load_folder(str(tmp_path / "all"), WindowSpec(), None)
    assert data.meta["meters"] == dict.fromkeys(("2/4", "3/4", "4/4", "6/8", "9/8", "12/8", "3/8"), 1)
    assert data.items.shape[-1] == 4 * 24  # 4 bars of 12/8, the longest; the others end in silence
    spec = WindowSpec.from_json(data.meta["window"])
    for item, meter in zip(data.items.numpy(), [m for m in spec.meters]):
        length = spec.meter_steps(meter)
        assert item[1, :48, length:].sum() == 0 and item[1, :48, :length].any()


def test_a_metre_too_rare_for_its_long_window_is_cut_in_fewer_bars(tmp_path):
    """72 windows of 3/4 (48 steps) and one 9/4 tune (144 steps in 4 bars): the items stay 48 steps
    wide, the 9/4 tune gives 1-bar windows, and one of them round-trips through export and loader."""
    data = load_folder(str(write_waltzes_and_a_slow_tune(tmp_path / "mix")), WindowSpec(), None)
    spec = WindowSpec.from_json(data.meta["window"])
    assert data.meta["meters"] == {"3/4": 72, "9/4": 4} and spec.bars_of("9/4") == 1 and spec.bars_of("3/4") == 4
    assert data.items.shape[-1] == 48 and spec.meter_steps("9/4") == 36
    index = data.meta["meters"]["3/4"]  # the 9/4 windows follow the 3/4 ones
    item = data.items[index:index + 1]
    row = item[0, :, 48]  # the metre row: the bar starts at 0, the window ends after step 35
    assert item[0, 1, :48, :36].sum() > 0 and row[0, 0] == 1 and row[2, 35] == 1 and row[2, 36:].sum() == 0
    export(item, tmp_path / "out", ["slow"], {"meta": data.meta}, {})
    mf = mido.MidiFile(tmp_path / "out" / "slow.mid")
    assert next(f"{m.numerator}/{m.denominator}" for m in mf.tracks[0] if m.type == "time_signature") == "9/4"
    back, _ = load_user_files([tmp_path / "out" / "slow.mid"], {"meta": data.meta})
    np.testing.assert_array_equal(back.numpy(), item.numpy())


def test_which_metres_are_cut_in_fewer_bars():
    from collections import Counter

    from gencore_midi.loader import short_meters

    spec = WindowSpec()
    trecento = Counter({"6/8": 3762, "3/4": 2790, "2/4": 1983, "4/8": 871, "9/8": 485, "2/2": 141, "12/8": 57,
                        "3/2": 47, "4/4": 29, "8/4": 5, "6/4": 3, "9/4": 2, "7/4": 1})
    assert short_meters(trecento, spec) == {"8/4": 2, "9/4": 2, "7/4": 2}  # 96 steps wide, not 144
    ryans = Counter({"2/4": 1822, "2/2": 927, "6/8": 903, "9/8": 96})
    assert short_meters(ryans, spec) == {}  # 96 windows of 9/8 fill its 72 steps
    assert short_meters(Counter({"4/4": 40, "12/8": 31}), spec) == {"12/8": 2}
    assert short_meters(Counter({"4/4": 40, "12/8": 32}), spec) == {}
    assert short_meters(Counter({"3/4": 1, "12/8": 1}), spec) == {}  # a handful of windows: none is cut


def test_a_marked_pickup_does_not_shift_the_windows(tmp_path):
    """A pickup of one eighth marked as its own 2/16 stretch: the windows start on the bar line
    after it, not at tick 0."""
    tune = [(0, 2, 67, 1)] + meter_notes("4/4", 8, 2, start=2)
    write_song(tmp_path / "p" / "pickup.mid", tune, time_signature=[(0, 2, 16), (2, 4, 4)])
    data = load_folder(str(tmp_path / "p"), WindowSpec(), None)
    assert data.meta["meters"] == {"4/4": 5}  # not 2/16: a pickup gives no window
    onsets = data.items[:, 0, :48].numpy()
    assert all(w[:, 0].any() and w[:, 16].any() for w in onsets)  # bass notes on every window's bar lines
    assert not onsets[0, 67 - 36, 0]  # the pickup note is not in the first window


def test_accents_follow_the_bar():
    from gencore_midi.midifile import accent

    six_eight, twelve_eight = Meter(6, 8), Meter(12, 8)
    assert [accent(s, 80, six_eight) for s in (0, 2, 6, 12)] == [92, 74, 80, 92]  # bar, eighth, beat 2, bar
    assert accent(12, 80, twelve_eight) == 86 and accent(24, 80, twelve_eight) == 92
    assert [accent(s, 80, Meter(3, 4)) for s in (0, 4, 8, 12)] == [92, 80, 80, 92]
    assert [accent(s, 80) for s in (0, 8, 4)] == [92, 86, 80]  # 4/4 as before


def test_a_melody_corpus_decodes_to_one_line(tmp_path):
    from gencore_midi.decode import calibrate_line, decode_line

    for i in range(3):
        write_song(tmp_path / "tunes" / f"t{i}.mid", [n for n in meter_notes("6/8", 8, i) if n[3] == 1],
                   time_signature=(6, 8))
    data = load_folder(str(tmp_path / "tunes"), WindowSpec(), None)
    assert data.meta["texture"] == "monophonic" and data.meta["chord_share"] == 0
    rng = np.random.default_rng(0)
    probs = np.repeat(rng.random((64, 3, 48, 6)) ** 3, 8, axis=-1).astype(np.float32)  # blurry, chordal
    onset_density = data.meta["density"]["all"][0]
    threshold, scale = calibrate_line(probs, data.meta["density"]["all"][1], onset_density)
    rolls = decode_line(probs, threshold, scale, rng=np.random.default_rng(1))
    assert rolls[:, 1].sum(axis=1).max() == 1  # never two pitches at once
    notes = rolls[:, 0].sum(axis=(1, 2))
    assert abs(notes.mean() - onset_density * 48 * 48) < 1.5  # the training phrases' notes per window
    np.testing.assert_array_equal(canonical(rolls), rolls)


def test_a_line_sounds_where_the_model_expects_sound_and_draws_its_pitch_wider_than_its_onsets():
    """A window that opens mid-note sounds from its first step; a rest needs the model's expected
    number of sounding pitches under the threshold; the pitch of a note is drawn from every onset
    above 3%, while only onsets above 5% decide when a note starts."""
    from gencore_midi.decode import decode_line

    probs = np.zeros((2000, 3, 48, 16), dtype=np.float32)
    probs[:, FRAME, 20, 0:8] = 0.9  # a note already sounding when the window opens: no onset
    probs[:, ONSET, 24, 8], probs[:, ONSET, 23, 8] = 0.97, 0.05  # a new note at step 8 (1.02 expected onsets) ...
    probs[:, ONSET, 26, 8] = 0.04  # ... whose pitch may be this neighbour (above the pitch floor)
    probs[:, ONSET, 27, 8] = 0.02  # but never this one (under it)
    probs[:, FRAME, 24, 8:12] = 0.9
    probs[:, ONSET, 30, 13] = 0.04  # under the onset floor: starts nothing, in a rest
    rolls = decode_line(probs, 0.5, 1.0, rng=np.random.default_rng(0), min_steps=1)
    assert (rolls[:, FRAME].sum(axis=1) <= 1).all()
    assert (rolls[:, FRAME, 20, 0:8] == 1).all() and (rolls[:, ONSET, 20, 0] == 1).all()  # sounds from step 0
    assert (rolls[:, :, :, 12:] == 0).all()  # a rest where nothing is expected to sound
    pitches = rolls[:, ONSET, :, 8].argmax(axis=1)
    assert rolls[:, ONSET, :, 8].sum(axis=1).min() == 1
    assert 0.02 < (pitches == 26).mean() < 0.06 and (pitches == 27).sum() == 0 and (pitches == 24).mean() > 0.9
    np.testing.assert_array_equal(canonical(rolls), rolls)


def test_key_signature_follows_the_class_asked_for(tmp_path):
    import torch

    spec = WindowSpec()
    data_spec = {"meta": {"window": spec.to_json(), "density": {"all": [0.03, 0.085]}}}
    roll = expected_roll(song_notes("major", 7, bars=4), spec, 64)  # clearly C-major-ish material
    items = torch.from_numpy(np.repeat(roll[None], 3, axis=0).astype(np.float32))
    export(items, tmp_path, ["a", "b", "c"], data_spec, {"generated": {"classes": ["minor", "major", None]}})
    keys = [next(m.key for m in mido.MidiFile(tmp_path / f"{s}.mid").tracks[0] if m.type == "key_signature")
            for s in "abc"]
    _, analysed = analyse_keys(roll[None], spec.low, spec.pitch_rows)
    assert keys == ["Cm", "C", "Cm" if analysed[0] == 1 else "C"]  # the class asked for, else key analysis


def test_piano_roll_png_names_pitches_and_bars():
    from gencore_midi.render import HEADER_PX, LABEL_PX, STEP_PX, pitch_name, roll_image

    assert [pitch_name(p) for p in (36, 60, 61, 83)] == ["C2", "C4", "C#4", "B5"]
    spec = WindowSpec()
    roll = expected_roll(meter_notes("3/4", 4, 1), spec, 48)
    image = np.asarray(roll_image(roll, spec, "3/4").convert("L"))
    assert image.shape[1] == LABEL_PX + 48 * STEP_PX
    assert (image[HEADER_PX:, :LABEL_PX - 4] < 128).sum() > 40  # dark text: C2, C3, C4, C5, B5
    assert (image[:HEADER_PX, LABEL_PX:] < 160).sum() > 20  # bar numbers and bar ticks along the top
    top_row = image[HEADER_PX, LABEL_PX:]  # B5, empty: the grid lines show
    assert [x for x in range(top_row.size) if top_row[x] == 150] == [0, 12 * STEP_PX, 24 * STEP_PX, 36 * STEP_PX]
    assert [x for x in range(top_row.size) if top_row[x] == 214] == [s * STEP_PX for s in (4, 8, 16, 20, 28, 32, 40, 44)]


def test_the_shortest_decoded_note_follows_the_training_notes(tmp_path):
    """Fiddle-tune 16th runs: under 80% of the notes last 2 steps, so samples may hold 16ths
    (min_steps 1); the block-chord songs keep eighths as the shortest note (2)."""
    runs = [(s, s + 1, 60 + s % 7, 1) for s in range(0, 128)]  # a bar-long run of 16ths, 8 bars
    write_song(tmp_path / "fiddle" / "run.mid", runs)
    fiddle = load_folder(str(tmp_path / "fiddle"), WindowSpec(), None)
    assert fiddle.meta["long_note_share"] == 0 and fiddle.meta["min_steps"] == 1
    write_song(tmp_path / "songs" / "a.mid", song_notes("major", 1))
    songs = load_folder(str(tmp_path / "songs"), WindowSpec(), None)
    assert songs.meta["long_note_share"] == 1 and songs.meta["min_steps"] == 2
