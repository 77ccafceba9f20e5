"""The built-in series: a real recording, with anomalies injected by a documented, seeded procedure.

The recording is `membrane.dat`, which matplotlib ships in its sample data (matplotlib is already a
dependency of gen, so the demo needs no extra package and no network): 12,000 samples of a
neuron's membrane potential under a step of injected current. Samples 1,500 to 7,150 are the tonic
spiking regime (about 40 regular spikes). The first 3,000 of them are `builtin:membrane`, the clean
training part; the remaining 2,650 are `builtin:membrane-test`, into which `inject` writes
anomalies with `numpy.random.default_rng(SEED)`:

- 8 events, two of each kind in a shuffled order, each in its own slot of the test part (slots
  are equal shares of the part; an event starts at a random offset inside its slot, with margins);
- spike: 3 samples moved by +-5 sigma (sigma: the standard deviation of the training part);
- level shift: 40-80 samples moved by +-2 sigma;
- noise burst: 40-80 samples plus Gaussian noise of 0.7 sigma;
- flatline: 40-80 samples held at the value where the event starts.

Every sample an event touches is labelled 1 in the `is_anomaly` column.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gencore.errors import GenError

START, SPLIT, END = 1500, 4500, 7150
SEED = 20241
KINDS = ("spike", "level-shift", "noise-burst", "flatline")
EVENTS = 8
NAMES = ("membrane", "membrane-test")


def recording() -> np.ndarray:
    try:
        from matplotlib import cbook

        path = Path(cbook.get_sample_data("membrane.dat", asfileobj=False))
        data = np.fromfile(path, dtype="<f4").astype(np.float64)
    except (ImportError, OSError, ValueError) as exc:
        raise GenError(f"matplotlib's sample recording membrane.dat is missing ({exc})", where="builtin:membrane",
                       hint="reinstall matplotlib from PyPI (its wheel ships mpl-data/sample_data)") from None
    if data.size < END:
        raise GenError(f"membrane.dat holds {data.size} samples, expected 12000", where="builtin:membrane")
    return data


def inject(values: np.ndarray, sigma: float, seed: int = SEED, events: int = EVENTS,
           lengths: tuple[int, int] = (40, 80)):
    """Anomalies written into a copy of `values` (1-D); events other than spikes last `lengths`
    steps (inclusive). Returns (values, labels, [(kind, start, end)])."""
    rng = np.random.default_rng(seed)
    out = values.copy()
    labels = np.zeros(len(values), dtype=np.int64)
    kinds = list(np.resize(np.array(KINDS), events))
    rng.shuffle(kinds)
    slot = len(values) // events
    placed = []
    for k, kind in enumerate(kinds):
        length = 3 if kind == "spike" else int(rng.integers(lengths[0], lengths[1] + 1))
        margin = min(60, (slot - length) // 4)
        start = k * slot + int(rng.integers(margin, slot - length - margin + 1))
        end = start + length
        if kind == "spike":
            out[start:end] += rng.choice([-1.0, 1.0]) * 5 * sigma
        elif kind == "level-shift":
            out[start:end] += rng.choice([-1.0, 1.0]) * 2 * sigma
        elif kind == "noise-burst":
            out[start:end] += rng.normal(0.0, 0.7 * sigma, length)
        else:
            out[start:end] = out[start]
        labels[start:end] = 1
        placed.append((str(kind), start, end))
    return out, labels, placed


def demo(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(sample numbers, values, labels or None) of `builtin:membrane` or `builtin:membrane-test`."""
    data = recording()
    train = data[START:SPLIT]
    if name == "membrane":
        return np.arange(START, SPLIT), train, None
    values, labels, _ = inject(data[SPLIT:END], float(train.std()))
    return np.arange(SPLIT, END), values, labels


def demo_csv(name: str) -> str:
    """The demo as the CSV a user would write: t, membrane[, is_anomaly]."""
    times, values, labels = demo(name)
    lines = ["t,membrane" + (",is_anomaly" if labels is not None else "")]
    for i, (t, v) in enumerate(zip(times, values)):
        lines.append(f"{t},{v:.6g}" + (f",{labels[i]}" if labels is not None else ""))
    return "\n".join(lines) + "\n"
