"""Hostile inputs through the `gen` CLI, and the Markdown table of the error line each one gives.

Every case builds one broken, oversized, disguised or booby-trapped input (a decompression bomb,
a truncated file, a symlink loop, a tampered run, a full disk...) and runs one command on it
in-process. Each must end with exit code 2, one error line naming the file or option, no
traceback and no output left behind. tests/test_hostile_inputs.py asserts exactly that for
every case here; this script prints the table for the record:

    python scripts/hostile_table.py > hostile_table.md
"""
from __future__ import annotations

import contextlib
import errno
import gzip
import io
import json
import os
import shutil
import struct
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from unittest import mock

TINY = ["--epochs", "2", "--width", "8", "--latent", "4", "--checkpoint-every", "0"]


# -- hostile bytes ------------------------------------------------------------------------------
def png(w: int = 8, h: int = 8, mode: str = "L", fmt: str = "PNG") -> bytes:
    """An image of seeded noise, so that cutting the file short cuts into its pixel data."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(w * h).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buf, format=fmt)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(w: int = 100_000, h: int = 100_000) -> bytes:
    """A 100 kB-pixel-per-side grayscale PNG header over a few bytes of data."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 1024, 9))
            + _chunk(b"IEND", b""))


def bad_crc_png() -> bytes:
    data = bytearray(png(16, 16))
    i = data.find(b"IDAT")
    data[i + 6] ^= 0xFF  # a byte of the compressed data: the chunk's CRC no longer matches
    return bytes(data)


def midi_song(bars: int = 8, tpb: int = 480) -> bytes:
    """A plain 4/4 type-0 file of block chords, as mido writes it."""
    import mido

    mf = mido.MidiFile(type=0, ticks_per_beat=tpb)
    track = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=4, denominator=4)])
    for bar in range(bars):
        chord = [60, 64, 67] if bar % 2 == 0 else [62, 65, 69]
        for note in chord:
            track.append(mido.Message("note_on", note=note, velocity=80, time=0))
        for i, note in enumerate(chord):
            track.append(mido.Message("note_off", note=note, velocity=0, time=4 * tpb if i == 0 else 0))
    mf.tracks.append(track)
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def midi_header(tracks: int = 1, division: int = 480, fmt: int = 1) -> bytes:
    return b"MThd" + struct.pack(">IHHH", 6, fmt, tracks, division)


def nested_json(depth: int = 100_000) -> str:
    return "[" * depth + "]" * depth


# -- tiny runs ----------------------------------------------------------------------------------
def gen(args: list, cwd: Path):
    from typer.testing import CliRunner

    from gencore.cli import app

    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)


def level_corpus(folder: Path) -> Path:
    from gencore_levels import tiles as T
    from gencore_levels.demo import demo_levels

    folder.mkdir(parents=True, exist_ok=True)
    for i, level in enumerate(demo_levels(3, seed=7)):
        (folder / f"level-{i}.txt").write_text("\n".join(row[:60] for row in level.rows) + "\n")
    (folder / "legend.json").write_text(json.dumps({"tiles": T.profiles()["smb"]["tiles"]}))
    return folder


def midi_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(4):
        (folder / f"song{i}.mid").write_bytes(midi_song(bars=8 + i))
    return folder


def train_run(domain: str, work: Path, *args) -> Path:
    out = work / "runs" / f"tiny-{domain}"
    extra = ["--limit", "300"] if domain == "images" else []
    result = gen(["train", domain, *args, *TINY, *extra, "-o", out], work)
    if result.exit_code != 0:
        raise RuntimeError(f"training the tiny {domain} run failed: {result.stderr}")
    return out


def make_runs(work: Path, images: Path | None = None) -> dict[str, Path]:
    """One tiny run per domain (pass an existing images run to skip training one)."""
    return {"images": images or train_run("images", work),
            "levels": train_run("levels", work, "--data", level_corpus(work / "level-data"), "--window", "12"),
            "midi": train_run("midi", work, "--data", midi_corpus(work / "midi-data"), "--bars", "2")}


# -- the catalogue ------------------------------------------------------------------------------
@dataclass
class Setup:
    argv: list[str]
    names: str  # what the error line must name: a file, a folder or an option
    outputs: list[Path] = field(default_factory=list)  # must not exist afterwards
    patch: Callable[[], contextlib.AbstractContextManager] | None = None


@dataclass
class Case:
    kind: str
    command: str
    build: Callable[[Path, dict[str, Path]], Setup]


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _copy_run(runs: dict[str, Path], domain: str, tmp: Path) -> Path:
    target = tmp / f"run-{domain}"
    shutil.copytree(runs[domain], target)
    return target


def _loop(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    a, b = folder / name, folder / f"other-{name}"
    a.symlink_to(b.name)
    b.symlink_to(a.name)
    return a


def _sparse(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.truncate(size)  # no disk used; st_size says it all
    return path


def _train(domain: str, folder: Path, tmp: Path, *extra: str, names: str | None = None) -> Setup:
    out = tmp / "out-run"
    return Setup(["train", domain, "--data", folder, *extra, *TINY, "-o", out], names or folder.name, [out])


def _one(domain_file: str, data: bytes | str, domain: str = "images"):
    """Train on a folder whose only item is `domain_file` holding `data`."""
    def build(tmp: Path, runs: dict[str, Path]) -> Setup:
        folder = tmp / "data"
        _write(folder / "a" / domain_file, data)
        _write(folder / "b" / domain_file, data)
        return _train(domain, folder, tmp, names=domain_file)
    return build


def _input(command: str, domain: str, make: Callable[[Path], Path], names: str | None = None):
    """`gen COMMAND -r RUN FILE` with the hostile file `make(tmp)` as the input."""
    def build(tmp: Path, runs: dict[str, Path]) -> Setup:
        path = make(tmp)
        out = tmp / "out"
        label = names or path.name
        if command == "interpolate":
            return Setup(["interpolate", "-r", runs[domain], "--from", path, "--to", path, "-o", out], label, [out])
        if command == "score":
            return Setup(["score", "-r", runs[domain], path, "-o", out / "scores.json"], label, [out])
        if command == "denoise":
            return Setup(["denoise", path, "-o", out / "clean.png"], label, [out])
        return Setup([command, "-r", runs[domain], path, "-o", out], label, [out])
    return build


def _bad_run(command: str, domain: str, tamper: Callable[[Path], str]):
    """`gen COMMAND -r RUN` on a copy of a tiny run that `tamper` broke; it returns the name to expect."""
    def build(tmp: Path, runs: dict[str, Path]) -> Setup:
        run = _copy_run(runs, domain, tmp)
        names = tamper(run)
        out = tmp / "out"
        if command == "resume":
            return Setup(["train", domain, "--resume", run], names)
        if command == "export":
            return Setup(["export", "-r", run, "--format", "safetensors", "-o", out], names, [out])
        return Setup(["sample", "-r", run, "--n", "2", "-o", out], names, [out])
    return build


def _edit_json(name: str, change: Callable[[dict], object]):
    def tamper(run: Path) -> str:
        path = run / name
        data = json.loads(path.read_text())
        result = change(data)
        path.write_text(result if isinstance(result, str) else json.dumps(data))
        return name
    return tamper


def _truncate(name: str, keep: float = 0.5):
    def tamper(run: Path) -> str:
        path = run / name
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
        return Path(name).name
    return tamper


def _edit_header(name: str):
    def tamper(run: Path) -> str:
        path = run / name
        data = bytearray(path.read_bytes())
        data[10:30] = b"}{not json at all!!!"
        path.write_bytes(bytes(data))
        return Path(name).name
    return tamper


def _latest_checkpoint(run: Path) -> str:
    return sorted((run / "checkpoints").glob("step-*"))[-1].relative_to(run).as_posix()


def _reshaped_decoder(run: Path) -> str:
    """Same kind, domain and version, other shapes: every tensor doubled along its first axis."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = run / "decoder.safetensors"
    with safe_open(str(path), framework="pt") as fh:
        meta, tensors = fh.metadata(), {k: fh.get_tensor(k) for k in fh.keys()}
    save_file({k: torch.cat([v, v]) if v.ndim else v for k, v in tensors.items()}, str(path), metadata=meta)
    return "decoder.safetensors"


def _foreign(name: str, domain: str, command: str = "sample"):
    """Replace the images run's NAME (a path inside the run) by the `domain` run's."""
    def build(tmp: Path, runs: dict[str, Path]) -> Setup:
        run = _copy_run(runs, "images", tmp)
        target = name if "*" not in name else _latest_checkpoint(run) + name[1:]
        source = name if "*" not in name else _latest_checkpoint(runs[domain]) + name[1:]
        shutil.copy(runs[domain] / source, run / target)
        out = tmp / "out"
        if command == "resume":
            return Setup(["train", "images", "--resume", run], Path(name).name)
        return Setup(["sample", "-r", run, "--n", "2", "-o", out], Path(name).name, [out])
    return build


def _meta_version(run: Path) -> str:
    from safetensors.torch import load_file, save_file

    path = run / "decoder.safetensors"
    save_file(load_file(str(path)), str(path), metadata={"format_version": "99", "kind": "decoder", "domain": "images"})
    return "decoder.safetensors"


@contextlib.contextmanager
def _fail_syscall(name: str, code: int, when: Callable[[str], bool] = lambda path: True) -> Iterator[None]:
    """Make os.NAME raise OSError(code) for paths `when` accepts (CI runs as root, so chmod
    cannot make a folder unwritable)."""
    real = getattr(os, name)

    def failing(path, *args, **kwargs):
        if when(str(path)):
            raise OSError(code, os.strerror(code), str(path))
        return real(path, *args, **kwargs)

    with mock.patch.object(os, name, failing):
        yield


@contextlib.contextmanager
def _disk_full() -> Iterator[None]:
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with mock.patch.object(os, "fsync", full):
        yield


def _sample_to(make_out: Callable[[Path], Path], patch=None, names: str = "out"):
    def build(tmp: Path, runs: dict[str, Path]) -> Setup:
        out = make_out(tmp)
        leftovers = [] if out.exists() else [out]
        return Setup(["sample", "-r", runs["images"], "--n", "2", "-o", out], names, leftovers,
                     patch=(lambda: patch(out)) if patch else None)
    return build


def _denoise_to_dev_full(tmp: Path, runs: dict[str, Path]) -> Setup:
    noisy = _write(tmp / "noisy.png", png(32, 32))
    return Setup(["denoise", noisy, "-o", "/dev/full"], "/dev/full")


def _train_disk_full(tmp: Path, runs: dict[str, Path]) -> Setup:
    out = tmp / "out-run"
    return Setup(["train", "images", *TINY, "--limit", "100", "-o", out], "out-run", [], patch=_disk_full)


def _idx(tmp: Path, count: int, data: bytes, gz: bool = False) -> Path:
    folder = tmp / "idx"
    head = struct.pack(">IIII", 0x803, count, 28, 28)
    raw = head + data
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    _write(folder / name, gzip.compress(raw) if gz else raw)
    return folder


def _odd_names(tmp: Path, runs: dict[str, Path]) -> Setup:
    folder = tmp / "data"
    for name in ("-rf --data", "new\nline.png", "ünï cödé ✓.png", " spaced  name .png"):
        _write(folder / name, b"\x89PNG\r\n\x1a\n-truncated")
    return _train("images", folder, tmp, names="none of the 3 images")


def _dash_file(tmp: Path, runs: dict[str, Path]) -> Setup:
    _write(tmp / "-o.png", b"not an image")
    out = tmp / "out"
    return Setup(["reconstruct", "-r", runs["images"], "-o", out, "--", "-o.png"], "-o.png", [out])


def _empty_folder(tmp: Path, runs: dict[str, Path]) -> Setup:
    (tmp / "empty").mkdir()
    return _train("images", tmp / "empty", tmp)


def _only_a_folder(tmp: Path, runs: dict[str, Path]) -> Setup:
    (tmp / "d" / "x.png").mkdir(parents=True)
    return _train("images", tmp / "d", tmp)


def _midi_forever() -> bytes:
    """One note-off 0x0FFFFFFF ticks (a million bars) after its note-on."""
    track = b"\x00\x90\x3c\x40" + b"\xff\xff\xff\x7f\x80\x3c\x00" + b"\x00\xff\x2f\x00"
    return midi_header(1, 480, 0) + b"MTrk" + struct.pack(">I", len(track)) + track


def _newline_file(tmp: Path, runs: dict[str, Path]) -> Setup:
    path = _write(tmp / "two\nlines.png", b"\x89PNG\r\n\x1a\n")
    out = tmp / "out"
    return Setup(["reconstruct", "-r", runs["images"], path, "-o", out], "lines.png", [out])


def _train_levels(files: dict[str, bytes | str], names: str, *extra: str, legend: bool = True):
    def build(tmp: Path, runs: dict[str, Path]) -> Setup:
        from gencore_levels import tiles as T

        folder = tmp / "levels"
        for name, data in files.items():
            _write(folder / name, data)
        if legend:
            _write(folder / "legend.json", json.dumps({"tiles": T.profiles()["smb"]["tiles"]}))
        return _train("levels", folder, tmp, *extra, names=names)
    return build


def _level_loop(tmp: Path, runs: dict[str, Path]) -> Setup:
    folder = tmp / "levels"
    _loop(folder, "loop.txt")
    return _train("levels", folder, tmp, names=str(folder))


def _level_oversize(tmp: Path, runs: dict[str, Path]) -> Setup:
    folder = tmp / "levels"
    _sparse(folder / "huge.txt", 25_000_000)
    return _train("levels", folder, tmp, names="huge.txt")


def _train_midi(files: dict[str, bytes], names: str):
    def build(tmp: Path, runs: dict[str, Path]) -> Setup:
        folder = tmp / "midi"
        for name, data in files.items():
            _write(folder / name, data)
        return _train("midi", folder, tmp, names=names)
    return build


def _midi_oversize(tmp: Path, runs: dict[str, Path]) -> Setup:
    folder = tmp / "midi"
    _sparse(folder / "huge.mid", 40 * 2**20)
    return _train("midi", folder, tmp, names="huge.mid")


def _resume_other_domain(tmp: Path, runs: dict[str, Path]) -> Setup:
    return Setup(["train", "levels", "--resume", runs["images"]], str(runs["images"]))


def _run_is_file(tmp: Path, runs: dict[str, Path]) -> Setup:
    path = _write(tmp / "run.txt", "not a run")
    return Setup(["sample", "-r", path, "-o", tmp / "out"], "run.txt", [tmp / "out"])


def _run_loop(tmp: Path, runs: dict[str, Path]) -> Setup:
    path = _loop(tmp, "run")
    return Setup(["export", "-r", path, "--format", "safetensors", "-o", tmp / "out"], "run", [tmp / "out"])


def _no_checkpoint(tmp: Path, runs: dict[str, Path]) -> Setup:
    run = _copy_run(runs, "images", tmp)
    shutil.rmtree(run / "checkpoints")
    return Setup(["train", "images", "--resume", run], "run-images")


MB = 2**20
SONG = midi_song()
CASES: list[Case] = [
    # images: training folders
    Case("PNG decompression bomb (100,000 x 100,000 declared)", "gen train images --data DIR", _one("bomb.png", bomb_png())),
    Case("truncated PNG", "gen train images --data DIR", _one("cut.png", png(32, 32)[:60])),
    Case("PNG with a corrupt IDAT (bad CRC)", "gen train images --data DIR", _one("crc.png", bad_crc_png())),
    Case("empty (0-byte) .png file", "gen train images --data DIR", _one("empty.png", b"")),
    Case("GIF disguised as .png (format allow-list)", "gen train images --data DIR", _one("anim.png", png(fmt="GIF"))),
    Case("text file named .jpg", "gen train images --data DIR", _one("notes.jpg", "just some text\n")),
    Case("truncated JPEG", "gen train images --data DIR", _one("cut.jpg", png(64, 64, "RGB", "JPEG")[:200])),
    Case("odd file names (leading dash, newline, unicode, spaces), all corrupt", "gen train images --data DIR", _odd_names),
    Case("symlink loop as the data folder", "gen train images --data LOOP",
         lambda tmp, runs: _train("images", _loop(tmp, "loop"), tmp, names="loop")),
    Case("empty data folder", "gen train images --data DIR", _empty_folder),
    Case("folder holding only a directory named x.png", "gen train images --data DIR", _only_a_folder),
    Case("a file given as the data folder", "gen train images --data FILE",
         lambda tmp, runs: _train("images", _write(tmp / "one.png", png()), tmp, names="one.png")),
    Case("IDX header declaring 10^9 images", "gen train images --data DIR",
         lambda tmp, runs: _train("images", _idx(tmp, 10**9, b"\0" * 784), tmp, names="train-images-idx3-ubyte")),
    Case("truncated gzip IDX", "gen train images --data DIR",
         lambda tmp, runs: _train("images", _write(tmp / "idx" / "train-images-idx3-ubyte.gz",
                                                   gzip.compress(struct.pack(">IIII", 0x803, 10, 28, 28) + b"\0" * 7840)[:40]).parent,
                                  tmp, names="train-images-idx3-ubyte.gz")),
    # images: input files
    Case("PNG decompression bomb", "gen reconstruct FILE", _input("reconstruct", "images", lambda t: _write(t / "bomb.png", bomb_png()))),
    Case("image of the wrong size (64x48)", "gen reconstruct FILE", _input("reconstruct", "images", lambda t: _write(t / "big.png", png(64, 48)))),
    Case("symlink loop as an input file", "gen reconstruct FILE", _input("reconstruct", "images", lambda t: _loop(t, "loop.png"))),
    Case("directory named like an image", "gen reconstruct FILE",
         _input("reconstruct", "images", lambda t: _write(t / "dir.png" / "x", "").parent)),
    Case("directory as an endpoint", "gen interpolate --from DIR",
         _input("interpolate", "images", lambda t: _write(t / "dir" / "x.png", png()).parent)),
    Case("file name starting with a dash, not an image", "gen reconstruct -- FILE", _dash_file),
    Case("file name with a newline, truncated PNG", "gen reconstruct FILE", _newline_file),
    Case("character device (/dev/zero) as an image", "gen reconstruct FILE",
         _input("reconstruct", "images", lambda t: Path("/dev/zero"), names="/dev/zero")),
    Case("truncated PNG as an endpoint", "gen interpolate --from FILE",
         _input("interpolate", "images", lambda t: _write(t / "cut.png", png(8, 8)[:40]))),
    Case("empty file", "gen score FILE", _input("score", "images", lambda t: _write(t / "empty.png", b""))),
    Case("folder of truncated images", "gen score DIR",
         _input("score", "images", lambda t: _write(t / "bad" / "cut.png", png(8, 8)[:50]).parent, names="cut.png")),
    Case("PNG decompression bomb", "gen denoise FILE", _input("denoise", "images", lambda t: _write(t / "bomb.png", bomb_png()))),
    Case("text file named .png", "gen denoise FILE", _input("denoise", "images", lambda t: _write(t / "text.png", "hello"))),
    Case("truncated PNG", "gen denoise FILE", _input("denoise", "images", lambda t: _write(t / "cut.png", png(64, 64)[:900]))),
    Case("folder without images", "gen denoise DIR",
         _input("denoise", "images", lambda t: _write(t / "docs" / "readme.txt", "hi").parent)),
    # levels
    Case("binary level (NUL bytes)", "gen train levels --data DIR", _train_levels({"a.txt": b"--\x00--\nXXXXX\n"}, "a.txt")),
    Case("level with control characters", "gen train levels --data DIR", _train_levels({"a.txt": "-----\n--\x1b--\nXXXXX\n"}, "a.txt")),
    Case("level that is not UTF-8", "gen train levels --data DIR", _train_levels({"a.txt": b"-----\n--\xff--\nXXXXX\n"}, "a.txt")),
    Case("ragged level rows", "gen train levels --data DIR", _train_levels({"a.txt": "-----\n---\nXXXXX\n"}, "a.txt")),
    Case("25 MB level file (size cap)", "gen train levels --data DIR", _level_oversize),
    Case("legend nested 100,000 deep", "gen train levels --data DIR",
         _train_levels({"a.txt": "------------\nXXXXXXXXXXXX\n", "legend.json": nested_json()}, "legend.json", legend=False)),
    Case("legend that is a JSON list", "gen train levels --data DIR",
         _train_levels({"a.txt": "------------\nXXXXXXXXXXXX\n", "legend.json": "[1, 2]"}, "legend.json", legend=False)),
    Case("symlink loop among the levels", "gen train levels --data DIR", _level_loop),
    Case("level with tiles the run never saw", "gen reconstruct FILE",
         _input("reconstruct", "levels", lambda t: _write(t / "alien.txt", "\n".join(["@" * 12] * 14) + "\n"))),
    Case("binary data named .txt", "gen score FILE", _input("score", "levels", lambda t: _write(t / "bin.txt", bytes(range(256))))),
    # midi
    Case("random bytes named .mid", "gen train midi --data DIR", _train_midi({"noise.mid": os.urandom(300)}, "noise.mid")),
    Case("truncated MIDI", "gen train midi --data DIR", _train_midi({"cut.mid": SONG[: len(SONG) // 3]}, "cut.mid")),
    Case("MIDI header declaring a 4 GB track", "gen train midi --data DIR",
         _train_midi({"huge-track.mid": midi_header() + b"MTrk" + struct.pack(">I", 0xFFFFFFF0) + b"\x00\x90\x3c\x40"}, "huge-track.mid")),
    Case("MIDI with SMPTE time division", "gen train midi --data DIR", _train_midi({"smpte.mid": midi_header(1, 0xE728) + SONG[14:]}, "smpte.mid")),
    Case("MIDI with 0 tracks", "gen train midi --data DIR", _train_midi({"none.mid": midi_header(0)}, "none.mid")),
    Case("MIDI note held a million bars", "gen train midi --data DIR", _train_midi({"forever.mid": _midi_forever()}, "forever.mid")),
    Case("40 MB MIDI file (size cap)", "gen train midi --data DIR", _midi_oversize),
    Case("empty .mid file", "gen reconstruct FILE", _input("reconstruct", "midi", lambda t: _write(t / "empty.mid", b""))),
    Case("MIDI header only, track missing", "gen interpolate --from FILE",
         _input("interpolate", "midi", lambda t: _write(t / "head.mid", midi_header()))),
    # run folders and artefacts
    Case("truncated config.json", "gen sample -r RUN", _bad_run("sample", "images", _truncate("config.json"))),
    Case("config.json that is a JSON list", "gen sample -r RUN",
         _bad_run("sample", "images", _edit_json("config.json", lambda d: "[1, 2, 3]"))),
    Case("config.json nested 100,000 deep", "gen sample -r RUN",
         _bad_run("sample", "images", _edit_json("config.json", lambda d: nested_json()))),
    Case("config.json with format_version 99", "gen sample -r RUN",
         _bad_run("sample", "images", _edit_json("config.json", lambda d: d.update(format_version=99)))),
    Case("config.json edited: latent size a string", "gen sample -r RUN",
         _bad_run("sample", "images", _edit_json("config.json", lambda d: d["model"].update(latent_dim="four")))),
    Case("config.json of a domain that is not installed", "gen sample -r RUN",
         _bad_run("sample", "images", lambda run: _edit_json("config.json", lambda d: d.update(domain="smells"))(run)
                  and "smells")),
    Case("truncated decoder.safetensors", "gen sample -r RUN", _bad_run("sample", "images", _truncate("decoder.safetensors"))),
    Case("decoder.safetensors with an edited header", "gen sample -r RUN", _bad_run("sample", "images", _edit_header("decoder.safetensors"))),
    Case("decoder.safetensors of another domain", "gen sample -r RUN", _foreign("decoder.safetensors", "levels")),
    Case("decoder.safetensors with other shapes", "gen sample -r RUN", _bad_run("sample", "images", _reshaped_decoder)),
    Case("decoder.safetensors with format_version 99", "gen sample -r RUN", _bad_run("sample", "images", _meta_version)),
    Case("truncated decoder.safetensors", "gen export -r RUN", _bad_run("export", "images", _truncate("decoder.safetensors", 0.9))),
    Case("a file given as the run", "gen sample -r FILE", _run_is_file),
    Case("symlink loop given as the run", "gen export -r LOOP", _run_loop),
    Case("run of another domain", "gen train levels --resume RUN", _resume_other_domain),
    Case("run without checkpoints", "gen train images --resume RUN", _no_checkpoint),
    Case("truncated train_state.json", "gen train images --resume RUN",
         _bad_run("resume", "images", lambda run: _truncate(f"{_latest_checkpoint(run)}/train_state.json")(run))),
    Case("train_state.safetensors with an edited header", "gen train images --resume RUN",
         _bad_run("resume", "images", lambda run: _edit_header(f"{_latest_checkpoint(run)}/train_state.safetensors")(run))),
    Case("train_state.safetensors of another domain", "gen train images --resume RUN",
         _foreign("*/train_state.safetensors", "levels", "resume")),
    Case("train_state.json edited: RNG state removed", "gen train images --resume RUN",
         _bad_run("resume", "images", lambda run: _edit_json(f"{_latest_checkpoint(run)}/train_state.json",
                                                              lambda d: d.pop("rng"))(run) and "train_state.json")),
    # outputs
    Case("-o names an existing file", "gen sample -o FILE",
         _sample_to(lambda t: _write(t / "taken.txt", "mine"), names="taken.txt")),
    Case("read-only output folder (EACCES injected)", "gen sample -o DIR",
         _sample_to(lambda t: t / "locked" / "out", names="locked",
                    patch=lambda out: _fail_syscall("mkdir", errno.EACCES, lambda p: "locked" in p))),
    Case("full disk while writing samples (ENOSPC injected)", "gen sample -o DIR",
         _sample_to(lambda t: t / "out", names="out", patch=lambda out: _disk_full())),
    Case("full disk while writing the run (ENOSPC injected)", "gen train images -o RUN", _train_disk_full),
    Case("output is /dev/full", "gen denoise FILE -o /dev/full", _denoise_to_dev_full),
]


# -- running a case -----------------------------------------------------------------------------
@dataclass
class Outcome:
    case: Case
    exit_code: int
    stderr: str
    error_line: str
    traceback: bool
    leftovers: list[str]
    names: str
    folder: Path  # where the case ran

    @property
    def shown_line(self) -> str:
        """The error line with the case's temp folders cut from its paths, for the table."""
        return self.error_line.replace(f"{self.folder}/", "").replace(f"{self.folder.parent}/", "")

    @property
    def ok(self) -> bool:
        gen_lines = [line for line in self.stderr.splitlines() if line.startswith("gen: ")]
        return (self.exit_code == 2 and not self.traceback and not self.leftovers and len(gen_lines) == 1
                and self.error_line.startswith("gen: error: ") and self.names in self.error_line)


def run_case(case: Case, tmp: Path, runs: dict[str, Path]) -> Outcome:
    setup = case.build(tmp, runs)
    with setup.patch() if setup.patch else contextlib.nullcontext():
        result = gen(setup.argv, tmp)
    err = result.stderr.strip()
    lines = err.splitlines()
    leftovers = [str(p) for p in setup.outputs if p.exists()]
    leftovers += [str(p) for p in tmp.rglob("*") if p.name.endswith((".tmp", ".partial")) or ".gen-partial-" in p.name]
    return Outcome(case, result.exit_code, err, lines[-1] if lines else "", "Traceback" in err + result.stdout,
                   leftovers, " ".join(setup.names.split()), tmp)


def table(outcomes: list[Outcome]) -> str:
    rows = ["| # | hostile input | command | exit | error line |", "|---|---|---|---|---|"]
    for i, o in enumerate(outcomes, 1):
        line = o.shown_line.replace("|", "\\|")
        flag = "" if o.ok else " **(FAILED)**"
        rows.append(f"| {i} | {o.case.kind} | `{o.case.command}` | {o.exit_code}{flag} | `{line}` |")
    tracebacks = sum(o.traceback for o in outcomes)
    rows.append("")
    rows.append(f"{len(outcomes)} hostile inputs, {sum(o.ok for o in outcomes)} ended in exit code 2 with one "
                f"error line naming the file or option and nothing left behind; {tracebacks} tracebacks.")
    return "\n".join(rows)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="gen-hostile-"))
    os.environ.setdefault("NO_COLOR", "1")
    runs = make_runs(work)
    outcomes = []
    for i, case in enumerate(CASES):
        tmp = work / f"case-{i:02d}"
        tmp.mkdir()
        outcomes.append(run_case(case, tmp, runs))
    print(table(outcomes))
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
