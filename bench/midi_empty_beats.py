"""Where the empty beats of a midi run's samples lie (issue 23).

    python bench/midi_empty_beats.py --run RUN --n 16

Samples the run as bench/midi_quality.py does (its plan: `--n` per class, split over the metres
as the class's training windows are, at least one per metre), keeps the decoder's probabilities
of each decoded group (a class in one metre), and reports per group the beats where nothing
sounds, their positions, and what the decoder expected there: the summed frame probability (the
expected number of sounding pitches) and the summed onset probability above the onset floor.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a midi run folder, e.g. --run runs/trecento")
    parser.add_argument("--n", type=int, default=16, help="samples per class, e.g. --n 16")
    args = parser.parse_args()

    import gencore_midi.sampling as sampling
    from gencore_midi.decode import ONSET_FLOOR
    from gencore_midi.options import Meter
    from midi_quality import measure

    groups = []
    decode_rule = sampling.decode_rule

    def kept(probs, spec, meta, rule, **kwargs):
        rolls = decode_rule(probs, spec, meta, rule, **kwargs)
        groups.append((probs, rolls, rule, spec))
        return rolls

    sampling.decode_rule = kept
    report = measure(args.run, args.n, 0)
    print(f"{args.run}: empty-beat rate of the samples {report['table']['empty_beat_rate']['samples']:.4f} "
          f"(training windows {report['table']['empty_beat_rate']['train']:.4f}, p90 "
          f"{report['table']['empty_beat_rate']['train_p90']:.3g}); {report['inside']} of 7 statistics inside")
    print("| metre | window steps | samples | empty beats / beats | empty beat positions (beat index) |")
    print("|---|---|---|---|---|")
    expected = {"empty": [], "sounding": []}
    onsets_in_empty = []
    for probs, rolls, rule, spec in groups:
        m, length, p = Meter.of(rule.meter), spec.meter_steps(rule.meter), spec.pitch_rows
        n, beats = len(rolls), length // Meter.of(rule.meter).beat_steps
        on = rolls[:, 1, :p, :length].reshape(n, p, beats, m.beat_steps).any(axis=(1, 3))  # (n, beats)
        frames = probs[:, 1, :p, :length].sum(axis=1).reshape(n, beats, m.beat_steps).mean(axis=-1)
        onsets = np.where(probs[:, 0, :p, :length] >= ONSET_FLOOR, probs[:, 0, :p, :length], 0)
        onsets = onsets.sum(axis=1).reshape(n, beats, m.beat_steps).sum(axis=-1)
        expected["empty"] += frames[~on].tolist()
        expected["sounding"] += frames[on].tolist()
        onsets_in_empty += onsets[~on].tolist()
        where = sorted({int(b) for b in np.nonzero(~on)[1]})
        print(f"| {rule.meter} | {length} | {n} | {int((~on).sum())} / {on.size} | {where if where else ''} |")
    for name, values in expected.items():
        if values:
            q = np.percentile(values, [10, 50, 90])
            print(f"expected sounding pitches per step in {name} beats: p10 {q[0]:.3f}, median {q[1]:.3f}, p90 {q[2]:.3f}")
    if onsets_in_empty:
        q = np.percentile(onsets_in_empty, [10, 50, 90])
        print(f"expected onsets per empty beat: p10 {q[0]:.3f}, median {q[1]:.3f}, p90 {q[2]:.3f}")


if __name__ == "__main__":
    main()
