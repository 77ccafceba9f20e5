"""Levels class control under attribute shifts, on pretrained:smb. For each element class, windows
sampled with `--class ELEMENT` (the path `gen sample` takes) are measured two ways:

- present: the share of windows that carry the element asked for;
- bit accuracy: their element bits against the asked one-hot, averaged over the bits (the measure
  bench/steering.py reports for levels, which unconditioned sampling made meaningless).

    python bench/levels_class_control.py 40     # windows per class and shift
"""
from __future__ import annotations

import sys

import numpy as np

from gencore import load_run
from gencore.steering import SamplerSettings, parse_shifts
from gencore_levels.labels import element_bits


def main(n: int) -> None:
    run = load_run("pretrained:smb", device="cpu")
    table = run.config.data["meta"]["elements"]  # element -> tile indices
    names = list(table)
    print(f"pretrained:smb, {n} windows per class and shift, seed 1, prior normal")
    shifts = [(None, 0.0)] + [(a, s) for a in run.steering.names for s in (-2.0, 2.0)]
    for attr, shift in shifts:
        run.sampler = None if attr is None else SamplerSettings(
            parse_shifts([f"{attr}={shift:+g}"], run.steering), "normal")
        present, accuracy = [], []
        for cls in run.class_names:
            items, _, _ = run.sample_with_labels(n, [cls], seed=1, options={})
            grids = items.numpy().argmax(axis=1)  # (N, H, W) tile indices
            bits = element_bits(grids, table)  # (N, B)
            want = np.eye(len(names))[names.index(cls)]
            present.append(bits[:, names.index(cls)].mean())
            accuracy.append((bits == want).mean())
        label = "no shift" if attr is None else f"{attr}={shift:+g}"
        shares = " ".join(f"{c}={p:.2f}" for c, p in zip(run.class_names, present))
        print(f"{label:13s} present: {shares} | mean {np.mean(present):.3f} | bit accuracy {np.mean(accuracy):.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
