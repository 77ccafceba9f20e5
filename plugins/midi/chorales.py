"""The built-in corpus: the Bach chorales of music21's corpus, converted once into a MIDI cache.

music21 parses each chorale (`corpus.chorales.Iterator`, 371 pieces), labels it with the mode
of its key analysis (`analyze('key')`), and writes it as MIDI. The pickup beat is trimmed so
that bar lines fall where the 4/4 grid expects them. The cache is a plain class-per-subfolder
MIDI folder (CACHE/chorales-v1/{major,minor}/*.mid) plus manifest.json, read by the same loader
as user folders. Conversion is incremental: `--max-files N` converts only the first N chorales,
and a later run converts the rest. With a complete cache, music21 is not needed at all.
"""
from __future__ import annotations

import io
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from gencore import console
from gencore.downloads import cache_root
from gencore.errors import GenError

from .options import WindowSpec

CACHE_NAME = "chorales-v1"
MANIFEST = "manifest.json"
INSTALL_HINT = "pip install 'gencore[midi]'"
POOL_MIN = 24  # convert in worker processes only when there is this much to do
SAVE_EVERY = 50


def chorale_root() -> Path:
    return cache_root() / CACHE_NAME


def _read_manifest(root: Path) -> dict[str, Any]:
    import json

    path = root / MANIFEST
    if not path.is_file():
        return {"version": 1, "names": None, "done": {}, "failed": {}}
    try:
        data = json.loads(path.read_text())
        if data.get("version") == 1 and isinstance(data.get("done"), dict):
            data.setdefault("failed", {})
            return data
    except (OSError, ValueError, AttributeError, RecursionError):  # not JSON, or not an object
        pass
    console.warn(f"{path}: unreadable chorale cache manifest; converting again")
    return {"version": 1, "names": None, "done": {}, "failed": {}}


def _save_manifest(root: Path, manifest: dict[str, Any]) -> None:
    from gencore.storage import write_json

    write_json(root / MANIFEST, manifest)


def _music21():
    try:
        from music21 import corpus
    except ImportError:
        raise GenError("the built-in Bach chorales need music21, which is not installed", where="builtin:chorales",
                       hint=f"{INSTALL_HINT}, or train on your own files with --data FOLDER") from None
    return corpus


def _trim_pickup(data: bytes, quarter_lengths: float) -> bytes:
    """Drop the first `quarter_lengths` beats (the pickup) so that bar lines start at tick 0."""
    import mido

    mf = mido.MidiFile(file=io.BytesIO(data))
    cut = round(quarter_lengths * mf.ticks_per_beat)
    if cut <= 0:
        return data
    for t, track in enumerate(mf.tracks):
        now, kept, dropped = 0, [], set()
        absolute = []
        for msg in track:
            now += msg.time
            if not msg.is_meta and msg.type in ("note_on", "note_off"):
                key = (msg.channel, msg.note)
                is_on = msg.type == "note_on" and msg.velocity > 0
                if is_on and now < cut:
                    dropped.add(key)
                    continue
                if not is_on and key in dropped:
                    dropped.discard(key)
                    continue
            absolute.append((max(0, now - cut), msg))
        prev = 0
        for at, msg in absolute:
            kept.append(msg.copy(time=at - prev))
            prev = at
        mf.tracks[t] = mido.MidiTrack(kept)
    out = io.BytesIO()
    mf.save(file=out)
    return out.getvalue()


def convert_one(name: str, root: str) -> dict[str, Any]:
    """Parse, analyse and write one chorale. Runs in worker processes: plain data in and out."""
    from music21 import corpus, meter
    from music21.midi import translate

    try:
        score = corpus.parse(name)
        key = score.analyze("key")
        signatures = sorted({ts.ratioString for ts in score.recurse().getElementsByClass(meter.TimeSignature)})
        pickup = 0.0
        parts = list(score.parts)
        if parts:
            measures = list(parts[0].getElementsByClass("Measure"))
            if measures:
                first = measures[0]
                if first.duration.quarterLength < first.barDuration.quarterLength:
                    pickup = float(first.duration.quarterLength)
    except Exception as exc:
        return {"name": name, "error": f"music21 could not parse it ({type(exc).__name__}: {exc})"}
    try:
        data = translate.streamToMidiFile(score).writestr()
        data = _trim_pickup(data, pickup)
    except Exception as exc:
        return {"name": name, "error": f"music21 could not write it as MIDI ({type(exc).__name__}: "
                                       f"{' '.join(str(exc).split())[:120]})"}
    file = f"{key.mode}/{name.split('/')[-1]}.mid"
    target = Path(root) / file
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return {"name": name, "file": file, "mode": key.mode, "key": str(key), "time_signatures": signatures,
            "pickup": pickup}


def _convert(root: Path, manifest: dict[str, Any], todo: list[str]) -> None:
    start = time.perf_counter()
    total = len(todo)
    console.info(f"converting {total} Bach chorales from music21's corpus to MIDI, once, into {root} "
                 f"(about 0.3 s each)")
    step = max(1, total // 10)
    fork = "fork" in multiprocessing.get_all_start_methods()
    workers = min(4, os.cpu_count() or 1) if fork and total >= POOL_MIN else 1
    if workers > 1:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
        results = pool.map(convert_one, todo, [str(root)] * total, chunksize=4)
    else:
        pool = None
        results = (convert_one(name, str(root)) for name in todo)
    try:
        for i, result in enumerate(results, 1):
            name = result.pop("name")
            if "error" in result:
                manifest["failed"][name] = result["error"]
                console.warn(f"chorale {name} skipped: {result['error']}")
            else:
                manifest["done"][name] = result
            if i % step == 0 or i == total:
                rate = i / max(1e-9, time.perf_counter() - start)
                console.info(f"  chorales {i}/{total} ({rate:.1f}/s, eta {max(0.0, (total - i) / rate):.0f} s)")
            if i % SAVE_EVERY == 0:
                _save_manifest(root, manifest)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        _save_manifest(root, manifest)


def prepare(max_files: int | None) -> tuple[Path, list[Path], list[int], list[str], str]:
    """Make sure the chorales (all, or the first `max_files`) are in the cache.

    Returns the cache folder, the 4/4 files with their class index, the class names, and a
    one-line summary for the log."""
    root = chorale_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenError(f"cannot create the chorale cache ({exc.strerror or exc})", where=str(root),
                       hint="set GENCORE_CACHE to a writable folder") from None
    manifest = _read_manifest(root)
    names = manifest.get("names")
    if not names:
        corpus = _music21()
        names = [str(n) for n in corpus.chorales.Iterator(returnType="filename")]
        if not names:
            raise GenError("music21's corpus lists no Bach chorales", where="builtin:chorales",
                           hint=f"reinstall music21 ({INSTALL_HINT})")
        manifest["names"] = names
    listed = names[:max_files] if max_files else names
    wanted = list(dict.fromkeys(listed))  # music21 lists some chorales twice under the same name
    todo = [n for n in wanted if n not in manifest["done"] and n not in manifest["failed"]]
    if todo:
        _music21()
        _convert(root, manifest, todo)
    present = {n: (root / manifest["done"][n]["file"]).is_file() for n in wanted if n in manifest["done"]}
    done = [manifest["done"][n] for n, ok in present.items() if ok]
    lost = [n for n, ok in present.items() if not ok]
    if lost:  # files deleted by hand: convert them again next time
        for n in lost:
            manifest["done"].pop(n)
        _save_manifest(root, manifest)
        raise GenError(f"{len(lost)} converted chorales are missing from the cache (e.g. {lost[0]})", where=str(root),
                       hint="run the command again to convert them anew")
    failed = [n for n in wanted if n in manifest["failed"]]
    four = [d for d in done if "4/4" in d["time_signatures"]]
    classes = sorted({d["mode"] for d in four})
    paths = [root / d["file"] for d in four]
    owners = [classes.index(d["mode"]) for d in four]
    modes = {m: sum(1 for d in done if d["mode"] == m) for m in ("major", "minor")}
    summary = (f"Bach chorales: {len(listed)} listed by music21, {len(wanted)} distinct; {len(done)} converted "
               f"({modes['major']} major, {modes['minor']} minor by key analysis), {len(four)} in 4/4"
               + (f"; {len(failed)} could not be written ({', '.join(failed)})" if failed else ""))
    return root, paths, owners, classes, summary


def load(spec: WindowSpec, max_files: int | None):
    from .loader import load_windows

    root, paths, owners, classes, summary = prepare(max_files)
    console.info(summary)
    if not paths:
        raise GenError("none of the converted chorales is in 4/4", where="builtin:chorales",
                       hint="raise --max-files")
    data = load_windows(root, paths, owners, classes, spec, source_kind="builtin:chorales", what="chorales")
    data.sources = [f"builtin:chorales/{s}" for s in data.sources]
    return data
