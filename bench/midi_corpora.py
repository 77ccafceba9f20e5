"""Bench corpora for the midi domain, from music21's bundled corpus (not the chorales, and never
the Essen or O'Neill folk collections, which judge the domain elsewhere), written once as
class-per-subfolder MIDI folders under the cache:

    python bench/midi_corpora.py                  # all corpora
    python bench/midi_corpora.py --only ryans     # one of them

| name     | music21 corpus           | texture                     | class                       |
|----------|--------------------------|-----------------------------|-----------------------------|
| ryans    | ryansMammoth (fiddle)    | one line, dance tunes        | tune type: jig, reel, hornpipe |
| airds    | airdsAirs (Scottish airs)| one line, slow airs and songs | mode by key analysis        |
| trecento | trecento (14th century)  | 2-3 voices, Italian ars nova | mode by key analysis        |

Each file is written as music21 has it: notes at their offsets (ties joined), the notated time
signatures at the offsets of their bars and the key signature. A pickup stays in place and is
marked as notation programs mark partial bars: a time signature of its own length (2/16 for an
eighth) from tick 0, then the tune's metre from its first full bar.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CORPORA = ("ryans", "airds", "trecento")
RYANS_TYPES = ("Jig", "Reel", "Hornpipe")
RYANS_PER_TYPE = 100
AIRDS_BOOKS = ("airdsAirs/book1.abc", "airdsAirs/book2.abc")
AIRDS_MAX = 300
TPB = 480


def corpus_root(name: str) -> Path:
    from gencore.downloads import cache_root

    return cache_root() / "bench-midi" / name


def _music21_dir() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


def score_to_midi(score, path: Path) -> dict:
    """One music21 score -> a type-1 MIDI file with its notated metres; facts for the manifest."""
    import mido
    from music21 import meter

    score = score.stripTies()
    ks = None
    notes = []
    for element in score.flatten().notes:
        start = float(element.getOffsetInHierarchy(score))
        end = start + float(element.duration.quarterLength)
        for pitch in getattr(element, "pitches", ()):
            if end > start:
                notes.append((start, end, int(pitch.midi)))
    signatures = {}
    for ts in score.recurse().getElementsByClass(meter.TimeSignature):
        signatures[float(ts.getOffsetInHierarchy(score))] = (ts.numerator, ts.denominator)
    key = score.analyze("key")
    first = score.recurse().getElementsByClass("KeySignature").first()
    if first is not None:
        ks = first.asKey("major").tonic.name.replace("-", "b")
    pickup = 0.0
    measures = list(score.parts[0].getElementsByClass("Measure")) if score.parts else \
        list(score.getElementsByClass("Measure"))
    if measures and measures[0].duration.quarterLength < measures[0].barDuration.quarterLength:
        pickup = float(measures[0].duration.quarterLength)
    if pickup > 0 and round(pickup * 4) == pickup * 4:  # the pickup as a stretch of its own length
        signatures.setdefault(pickup, signatures.get(0.0, (4, 4)))
        signatures[0.0] = (round(pickup * 4), 16)
    events = []
    for offset, (num, den) in sorted(signatures.items()):
        events.append((round(offset * TPB), 0, mido.MetaMessage("time_signature", numerator=num, denominator=den)))
    if ks is not None:
        events.append((0, 0, mido.MetaMessage("key_signature", key=ks)))
    events.append((0, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100))))
    for start, end, pitch in notes:
        events.append((round(start * TPB), 2, mido.Message("note_on", note=pitch, velocity=80)))
        events.append((round(end * TPB), 1, mido.Message("note_off", note=pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track, now = mido.MidiTrack(), 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    mf = mido.MidiFile(type=1, ticks_per_beat=TPB)
    mf.tracks.append(track)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    mf.save(tmp)
    os.replace(tmp, path)
    return {"mode": key.mode, "key": str(key), "pickup": pickup, "notes": len(notes),
            "time_signatures": sorted({f"{n}/{d}" for n, d in signatures.values()})}


def mark_pickup(path: Path, pickup: float) -> None:
    """Mark the pickup of a file written before pickups were marked (see score_to_midi)."""
    import mido

    mf = mido.MidiFile(path)
    if pickup <= 0 or round(pickup * 4) != pickup * 4:
        return
    track, events, now = mf.tracks[0], [], 0
    for msg in track:
        now += msg.time
        events.append((now, msg))
    first = next((m for t, m in events if t == 0 and m.type == "time_signature"), None)
    if first is None or first.denominator == 16:
        return
    events = [(t, m) for t, m in events if m is not first]
    events += [(0, first.copy(numerator=round(pickup * 4), denominator=16)), (round(pickup * TPB), first)]
    events.sort(key=lambda e: (e[0], not e[1].is_meta))
    out, now = mido.MidiTrack(), 0
    for t, m in events:
        out.append(m.copy(time=t - now))
        now = t
    mf.tracks[0] = out
    mf.save(path)


def _ryans_one(args: tuple[str, str, str]) -> dict:
    name, kind, root = args
    from music21 import corpus

    try:
        score = corpus.parse(f"ryansMammoth/{name}")
        stem = Path(name).stem
        facts = score_to_midi(score, Path(root) / kind.lower() / f"{stem}.mid")
        return {"name": name, "file": f"{kind.lower()}/{stem}.mid", **facts}
    except Exception as exc:  # a tune music21 cannot read is left out and named
        return {"name": name, "error": f"{type(exc).__name__}: {exc}"[:200]}


def _score_by_mode(args: tuple[str, int, object, str]) -> dict:
    name, index, score, root = args
    try:
        stem = f"{Path(name).stem}-{index:03d}" if index >= 0 else Path(name).stem
        tmp = Path(root) / "_" / f"{stem}.mid"
        facts = score_to_midi(score, tmp)
        target = Path(root) / facts["mode"] / f"{stem}.mid"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        return {"name": name, "index": index, "file": f"{facts['mode']}/{stem}.mid", **facts}
    except Exception as exc:
        return {"name": name, "index": index, "error": f"{type(exc).__name__}: {exc}"[:200]}


def _parse_one(args: tuple[str, str]) -> dict:
    name, root = args
    from music21 import corpus

    try:
        score = corpus.parse(name)
    except Exception as exc:
        return {"name": name, "error": f"{type(exc).__name__}: {exc}"[:200]}
    return _score_by_mode((name, -1, score, root))


def _pool_map(fn, jobs: list, workers: int):
    if workers <= 1:
        return [fn(j) for j in jobs]
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        return list(pool.map(fn, jobs, chunksize=2))


def build(name: str, workers: int) -> Path:
    root = corpus_root(name)
    manifest = root / "manifest.json"
    if manifest.is_file():
        summary = json.loads(manifest.read_text())
        if not summary.get("pickups_marked"):  # built before pickups were marked
            for d in summary["done"]:
                mark_pickup(root / d["file"], d["pickup"])
            summary["pickups_marked"] = True
            manifest.write_text(json.dumps(summary, indent=1))
        print(f"{name}: already built in {root}", file=sys.stderr)
        return root
    root.mkdir(parents=True, exist_ok=True)
    if name == "ryans":
        files = sorted(p.name for p in (_music21_dir() / "ryansMammoth").glob("*.abc"))
        jobs = []
        for kind in RYANS_TYPES:
            chosen = [f for f in files if f.endswith(f"{kind}.abc")][:RYANS_PER_TYPE]
            jobs += [(f, kind, str(root)) for f in chosen]
        results = _pool_map(_ryans_one, jobs, workers)
    elif name == "airds":
        from music21 import corpus

        results = []
        for book in AIRDS_BOOKS:
            opus = corpus.parse(book)
            jobs = [(book, i, s, str(root)) for i, s in enumerate(opus.scores)]
            results += [_score_by_mode(j) for j in jobs]
            if len([r for r in results if "error" not in r]) >= AIRDS_MAX:
                break
        kept = [r for r in results if "error" not in r][:AIRDS_MAX]
        for extra in [r for r in results if "error" not in r][AIRDS_MAX:]:
            (root / extra["file"]).unlink()
        results = kept + [r for r in results if "error" in r]
    elif name == "trecento":
        files = sorted(p.name for p in (_music21_dir() / "trecento").iterdir() if p.suffix in (".xml", ".mxl"))
        results = _pool_map(_parse_one, [(f"trecento/{f}", str(root)) for f in files], workers)
    else:
        raise SystemExit(f"unknown corpus {name!r}; choose from {', '.join(CORPORA)}")
    (root / "_").exists() and not any((root / "_").iterdir()) and (root / "_").rmdir()
    done = [r for r in results if "error" not in r]
    failed = [r for r in results if "error" in r]
    from collections import Counter

    summary = {"corpus": name, "files": len(done), "failed": failed,
               "classes": dict(Counter(r["file"].split("/")[0] for r in done)),
               "time_signatures": dict(Counter(ts for r in done for ts in r["time_signatures"])),
               "with_pickup": sum(r["pickup"] > 0 for r in done), "pickups_marked": True, "done": done}
    manifest.write_text(json.dumps(summary, indent=1))
    print(f"{name}: {len(done)} files ({len(failed)} failed) in {root}; classes {summary['classes']}; "
          f"metres {summary['time_signatures']}; {summary['with_pickup']} with a pickup", file=sys.stderr)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=CORPORA, action="append", help="build only this corpus (repeatable)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for name in args.only or CORPORA:
        build(name, args.workers)


if __name__ == "__main__":
    main()
