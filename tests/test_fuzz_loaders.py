"""Property-based fuzzing of every loader that reads user files (hypothesis, 1,000 examples each).

Each loader gets raw random bytes, structured near-misses (real headers with random chunks,
tracks or rows) and mutations of valid files (flipped bytes, truncation). The only exceptions
allowed out are GenError (one line, exit 2 at the CLI) and the documented skip-with-warning
errors of the training loaders (ImageReadError, MidiReadError); whatever loads must have the
promised shape and range. A counter proves each loader saw its 1,000 examples."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gencore.errors import GenError

EXAMPLES = 1000
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def flipped(base: bytes) -> st.SearchStrategy[bytes]:
    """`base` with a few bytes overwritten, then cut at a random length."""
    edits = st.lists(st.tuples(st.integers(0, len(base) - 1), st.integers(0, 255)), max_size=6)
    return st.tuples(edits, st.integers(0, len(base))).map(
        lambda e: bytes(_apply(bytearray(base), e[0]))[: e[1]])


def _apply(data: bytearray, edits) -> bytearray:
    for i, value in edits:
        data[i] = value
    return data


def chunk(kind: bytes, data: bytes, good_crc: bool = True) -> bytes:
    crc = zlib.crc32(kind + data) if good_crc else zlib.crc32(data) ^ 0x5A5A
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc & 0xFFFFFFFF)


# Sides a decoder may really allocate (small) or that no cap lets through (huge): nothing in
# between, so the fuzzer never makes Pillow allocate hundreds of megabytes.
SIDES = st.one_of(st.integers(0, 40), st.integers(2**27, 2**31 - 1))


@st.composite
def png_like(draw) -> bytes:
    """A PNG signature, an IHDR with random fields, then random chunks, CRCs mostly right."""
    ihdr = struct.pack(">IIBBBBB", draw(SIDES), draw(SIDES), draw(st.sampled_from([1, 2, 4, 8, 16, 3, 0])),
                       draw(st.sampled_from([0, 2, 3, 4, 6, 1, 7])), draw(st.integers(0, 1)),
                       draw(st.integers(0, 1)), draw(st.integers(0, 2)))
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    kinds = st.sampled_from([b"IDAT", b"PLTE", b"tRNS", b"gAMA", b"iCCP", b"zTXt", b"tEXt", b"IEND", b"acTL", b"eXIf"])
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(kinds)
        raw = draw(st.binary(max_size=64))
        data = zlib.compress(raw) if kind in (b"IDAT", b"zTXt") and draw(st.booleans()) else raw
        out += chunk(kind, data, draw(st.integers(0, 9)) > 0)
    return out


@st.composite
def jpeg_like(draw) -> bytes:
    """SOI, random marker segments, a start of scan and random entropy-coded bytes."""
    out = b"\xff\xd8"
    for _ in range(draw(st.integers(0, 4))):
        marker = draw(st.sampled_from([0xC0, 0xC2, 0xC4, 0xDB, 0xDD, 0xE0, 0xE1, 0xEE, 0xFE, 0xDA]))
        body = draw(st.binary(max_size=40))
        out += bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body
    return out + draw(st.binary(max_size=64)) + draw(st.sampled_from([b"\xff\xd9", b""]))


def _image_bytes(mode: str, fmt: str, size=(6, 5)) -> bytes:
    from PIL import Image

    pixels = np.random.default_rng(1).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buf, format=fmt)
    return buf.getvalue()


VALID_IMAGES = [_image_bytes(m, "PNG") for m in ("L", "RGB", "RGBA", "P", "LA", "I;16", "1")] + \
               [_image_bytes(m, "JPEG") for m in ("L", "RGB", "CMYK")]
IMAGE_BYTES = st.one_of(st.binary(max_size=300), png_like(), jpeg_like(),
                        st.sampled_from(VALID_IMAGES).flatmap(flipped))


def test_image_readers(scratch):
    """Training images (skip-with-warning), run input files (resized, and exact size), and the
    denoiser's native reader and writer, all on the same bytes."""
    from gencore_images.loaders import ImageReadError, bomb_warnings_as_errors, load_user_files, read_image
    from gencore_images.photo_io import encode_photo, read_photo

    path = scratch / "fuzz.png"
    resized = {"item_shape": [1, 8, 8], "meta": {"channels": 1, "height": 8, "width": 8, "resize": [8, 8]}}
    exact = {"item_shape": [3, 5, 6], "meta": {"channels": 3, "height": 5, "width": 6, "resize": None}}
    seen = []

    @FUZZ
    @given(IMAGE_BYTES)
    def check(data: bytes) -> None:
        seen.append(1)
        path.write_bytes(data)
        try:
            with bomb_warnings_as_errors():
                arr, gray = read_image(path)
            assert arr.dtype == np.float32 and arr.ndim == (2 if gray else 3) and 0 <= arr.min() <= arr.max() <= 1
        except ImageReadError as exc:
            assert exc.reason
        for spec in (resized, exact):
            try:
                items, _ = load_user_files([path], spec)
                assert tuple(items.shape) == (1, *spec["item_shape"])
                assert bool(((items >= 0) & (items <= 1)).all())
            except GenError as exc:
                assert "\n" not in exc.line()
        try:
            values, state = read_photo(data, "fuzz.png")
            assert values.ndim == 3 and bool(((values >= 0) & (values <= 1)).all())
            assert encode_photo(values, state)
        except GenError as exc:
            assert "\n" not in exc.line()

    check()
    assert len(seen) >= EXAMPLES


@st.composite
def idx_like(draw) -> tuple[bytes, int]:
    ndim = draw(st.sampled_from([1, 3]))
    magic = draw(st.sampled_from([0x801, 0x803, 0x803, 0x801 + 2 * ndim, draw(st.integers(0, 2**32 - 1))]))
    dims = [draw(st.one_of(st.integers(0, 6), st.integers(0, 2**32 - 1))) for _ in range(ndim)]
    body = struct.pack(f">I{ndim}I", magic, *dims) + draw(st.binary(max_size=200))
    return body[: draw(st.integers(0, len(body)))] if draw(st.booleans()) else body, ndim


def test_idx_reader(scratch):
    import gzip

    from gencore_images.idx import read_idx

    seen = []

    @FUZZ
    @given(idx_like(), st.booleans())
    def check(case, gz: bool) -> None:
        seen.append(1)
        data, ndim = case
        path = scratch / ("fuzz-idx.gz" if gz else "fuzz-idx")
        path.write_bytes(gzip.compress(data)[: len(data) + 20] if gz else data)
        try:
            array = read_idx(path, 0x800 + ndim, ndim)
            assert array.ndim == ndim and array.dtype == np.uint8
        except GenError as exc:
            assert "\n" not in exc.line()

    check()
    assert len(seen) >= EXAMPLES


TILES = list("-XE?[]o<>")
LEVEL_TEXT = st.one_of(
    st.text(max_size=200),
    st.lists(st.text(alphabet=st.sampled_from(TILES + ["@", " ", "\t", "\r", "\x00", "é"]), max_size=30),
             max_size=20).map("\n".join),
    st.lists(st.text(alphabet=st.sampled_from(TILES), min_size=1, max_size=40), min_size=1, max_size=24).map(
        lambda rows: "\n".join(r.ljust(max(map(len, rows)), "-") for r in rows) + "\n"),
)
LEVEL_BYTES = st.one_of(LEVEL_TEXT.map(lambda t: t.encode("utf-8")), st.binary(max_size=200),
                        LEVEL_TEXT.map(lambda t: b"\xef\xbb\xbf" + t.encode("utf-8", "replace")))


def level_meta(layout: str) -> dict:
    size = {"horizontal": (6, 8), "vertical": (8, 6), "whole": (6, 6)}[layout]
    return {"meta": {"tiles": TILES, "height": size[0], "width": size[1], "layout": layout, "empty": "-",
                     "labels": "folder"}}


def test_level_readers(scratch):
    from gencore_levels.loading import load_files
    from gencore_levels.reader import read_level

    path = scratch / "fuzz.txt"
    specs = [level_meta(layout) for layout in ("horizontal", "vertical", "whole")]
    seen = []

    @FUZZ
    @given(LEVEL_BYTES, st.sampled_from(specs))
    def check(data: bytes, spec: dict) -> None:
        seen.append(1)
        path.write_bytes(data)
        try:
            level = read_level(path)
            assert level.rows and len({len(r) for r in level.rows}) == 1
        except GenError as exc:
            assert "\n" not in exc.line()
        try:
            items, _ = load_files([path], spec)
            meta = spec["meta"]
            assert tuple(items.shape) == (1, len(TILES), meta["height"], meta["width"])
        except GenError as exc:
            assert "\n" not in exc.line()

    check()
    assert len(seen) >= EXAMPLES


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
                           max_leaves=12)


def test_legend_reader(scratch):
    import json

    from gencore_levels.tiles import read_legend

    path = scratch / "legend.json"
    legends = st.one_of(JSON_VALUES.map(json.dumps), JSON_VALUES.map(lambda v: json.dumps({"tiles": v})),
                        st.dictionaries(st.text(max_size=2), JSON_VALUES, max_size=5).map(lambda d: json.dumps({"tiles": d})),
                        st.text(max_size=100), st.integers(1, 5000).map(lambda n: "[" * n + "]" * n))
    seen = []

    @FUZZ
    @given(st.one_of(legends.map(str.encode), st.binary(max_size=100)))
    def check(data: bytes) -> None:
        seen.append(1)
        path.write_bytes(data)
        try:
            legend = read_legend(path)
            assert legend and all(len(c) == 1 and isinstance(tags, list) for c, tags in legend.items())
        except GenError as exc:
            assert "\n" not in exc.line()

    check()
    assert len(seen) >= EXAMPLES


def vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


@st.composite
def midi_event(draw) -> bytes:
    delta = vlq(draw(st.one_of(st.integers(0, 960), st.integers(0, 0x0FFFFFFF))))
    kind = draw(st.sampled_from(["note", "note", "control", "meta", "sysex", "running", "raw"]))
    if kind == "note":
        status = draw(st.sampled_from([0x80, 0x90])) | draw(st.integers(0, 15))
        return delta + bytes([status, draw(st.integers(0, 127)), draw(st.integers(0, 127))])
    if kind == "control":
        status = draw(st.sampled_from([0xA0, 0xB0, 0xC0, 0xD0, 0xE0])) | draw(st.integers(0, 15))
        return delta + bytes([status]) + draw(st.binary(min_size=1, max_size=2))
    if kind == "meta":
        body = draw(st.binary(max_size=8))
        meta = draw(st.sampled_from([0x51, 0x58, 0x59, 0x2F, 0x03, 0x01, 0x7F, draw(st.integers(0, 255))]))
        length = draw(st.sampled_from([len(body), draw(st.integers(0, 0x0FFFFFFF))]))
        return delta + bytes([0xFF, meta]) + vlq(length) + body
    if kind == "sysex":
        body = draw(st.binary(max_size=8))
        return delta + bytes([0xF0]) + vlq(len(body)) + body
    if kind == "running":
        return delta + bytes([draw(st.integers(0, 127)), draw(st.integers(0, 127))])
    return delta + draw(st.binary(min_size=1, max_size=4))


@st.composite
def midi_like(draw) -> bytes:
    """A real MThd header (any format, track count and division) and MTrk chunks of random
    events, with true or random lengths."""
    n_tracks = draw(st.integers(0, 3))
    division = draw(st.sampled_from([480, 96, 1, 0, 0x7FFF, 0xE728, draw(st.integers(0, 0xFFFF))]))
    out = b"MThd" + struct.pack(">IHHH", 6, draw(st.integers(0, 3)), n_tracks, division)
    for _ in range(n_tracks):
        body = b"".join(draw(st.lists(midi_event(), max_size=12)))
        if draw(st.booleans()):
            body += b"\x00\xff\x2f\x00"  # end of track
        length = len(body) if draw(st.integers(0, 4)) else draw(st.integers(0, 2**32 - 1))
        out += b"MTrk" + struct.pack(">I", length) + body
    return out


def _song() -> bytes:
    import mido

    mf = mido.MidiFile(type=1, ticks_per_beat=96)
    track = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=4, denominator=4),
                            mido.MetaMessage("key_signature", key="G")])
    for bar in range(4):
        track.append(mido.Message("note_on", note=60 + bar, velocity=90, time=0))
        track.append(mido.Message("note_off", note=60 + bar, velocity=0, time=384))
    mf.tracks.append(track)
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def test_midi_readers(scratch):
    from gencore_midi.loader import load_user_files
    from gencore_midi.midifile import MidiReadError, read_midi
    from gencore_midi.options import WindowSpec

    path = scratch / "fuzz.mid"
    spec = {"meta": {"window": WindowSpec(bars=2).to_json()}}
    seen = []

    @FUZZ
    @given(st.one_of(st.binary(max_size=200), midi_like(), flipped(_song())))
    def check(data: bytes) -> None:
        seen.append(1)
        path.write_bytes(data)
        try:
            parsed = read_midi(path)
            assert parsed.time_signatures[0][0] == 0 and all(n.end > n.start for n in parsed.notes)
        except MidiReadError as exc:
            assert exc.reason
        try:
            items, _ = load_user_files([path], spec)
            assert tuple(items.shape[:2]) == (1, 3)
        except GenError as exc:
            assert "\n" not in exc.line()

    check()
    assert len(seen) >= EXAMPLES
