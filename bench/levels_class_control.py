"""Levels class control, unshifted and under attribute shifts. For each element class, windows
sampled with `--class ELEMENT` (the path `gen sample` takes) are measured:

- present: the share of windows that carry the element asked for (what class control means for
  multi-label levels; the README's figure);
- bit accuracy: their element bits against the asked one-hot, averaged over the bits;
- added: the share of windows the decoding had to give the element (decoding.py's `require`),
  measured on the same first draw decoded without it;
- enemies per 100 columns against the training windows with the same element bits, the longest
  enemy run against the corpus's, malformed windows (issue 22's rules) and exact copies.

    python bench/levels_class_control.py pretrained:smb --n 40          # windows per class and shift
    python bench/levels_class_control.py runs/smb2j --n 40 --prior gmm
"""
from __future__ import annotations

import argparse

import numpy as np


def longest_enemy_run(grids: np.ndarray, enemy: list[int]) -> int:
    """(N, H, W) -> the longest horizontal run of adjacent enemy tiles."""
    is_enemy = np.isin(grids, enemy).astype(np.int8)
    best = 0
    for row in is_enemy.reshape(-1, grids.shape[-1]):
        run = 0
        for v in row:
            run = run + 1 if v else 0
            best = max(best, run)
    return best


def class_rows(run, n: int, seed: int) -> list[dict]:
    """One row per element class of `run` at its current sampler settings (run.sampler)."""
    import torch

    from gencore_levels import decoding, structure
    from gencore_levels.labels import element_bits, required_tiles
    from gencore_levels.sampling import Windows

    meta = run.config.data["meta"]
    table = meta["elements"]  # element -> tile indices, in the run's class order
    names = list(table)
    rules, idx = decoding.rules_of(meta), structure.indices(meta)
    rows = []
    for j, cls in enumerate(names):
        items, _, _ = run.sample_with_labels(n, [cls], seed=seed, options={})
        grids = items.numpy().argmax(axis=1)  # (N, H, W) tile indices
        bits = element_bits(grids, table)  # (N, B)
        want = np.eye(len(names))[j]
        cond = torch.tensor(want, dtype=torch.float32)
        windows = Windows(run, meta, 1.0, torch.Generator().manual_seed(seed), calibration_seed=seed + 7919)
        logp, _, _ = windows.logits(cond, n, carry=True)  # the CLI's first draw, before copy redraws
        plain = decoding.decode(logp, rules)
        key = "".join(str(int(b)) for b in want)
        freq = meta["tile_freq"].get(key, meta["tile_freq"][""])
        height, width = grids.shape[1:]
        rows.append({
            "class": cls,
            "present": float(bits[:, j].mean()),
            "bit_accuracy": float((bits == want).mean()),
            "added": float(1 - element_bits(plain, table)[:, j].mean()),
            "enemies_per_100": float(np.isin(grids, rules["enemy"]).sum() / n / width * 100),
            "enemies_per_100_real": float(sum(freq[e] for e in rules["enemy"]) * height * 100),
            "enemy_run": longest_enemy_run(grids, rules["enemy"]),
            "malformed": float((structure.malformed(grids, idx) > 0).mean()),
            "copies": float(decoding.is_copy(grids.astype(np.uint8), meta.get("window_filter")).mean()),
            "required": len(required_tiles(meta, want)),
        })
    return rows


def class_control(run, n: int, seed: int) -> dict[str, float]:
    """The mean over classes of `present` and of `bit_accuracy` (bench/steering.py's levels rows)."""
    rows = class_rows(run, n, seed)
    return {"class_present": float(np.mean([r["present"] for r in rows])),
            "class_bit_accuracy": float(np.mean([r["bit_accuracy"] for r in rows]))}


def main() -> None:
    from gencore import load_run
    from gencore.steering import SamplerSettings, parse_shifts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", default="pretrained:smb")
    parser.add_argument("--n", type=int, default=40, help="windows per class and shift")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--prior", default="normal", choices=("normal", "gmm"))
    args = parser.parse_args()
    run = load_run(args.run, device="cpu")
    names = run.steering.names if run.steering is not None else []
    print(f"{args.run}, {args.n} windows per class and shift, seed {args.seed}, prior {args.prior}; "
          f"corpus longest enemy run {run.config.data['meta'].get('enemy_run_max')}")
    print("| shift | present (per class) | present, mean | bit accuracy | added by decoding | "
          "enemies/100 cols (real) | longest enemy run | malformed | copies |")
    print("|---|---|---|---|---|---|---|---|---|")
    for attr, shift in [(None, 0.0)] + [(a, s) for a in names for s in (-2.0, 2.0)]:
        shifts = {} if attr is None else parse_shifts([f"{attr}={shift:+g}"], run.steering)
        run.sampler = SamplerSettings(shifts, args.prior) if (attr or args.prior != "normal") else None
        rows = class_rows(run, args.n, args.seed)
        mean = lambda key, rows=rows: np.mean([r[key] for r in rows])  # noqa: E731
        per = " ".join(f"{r['class']} {r['present']:.2f}" for r in rows)
        enemy = next((r for r in rows if r["class"] == "enemy"), None)
        enemies = f"{enemy['enemies_per_100']:.1f} ({enemy['enemies_per_100_real']:.1f})" if enemy else "-"
        label = "none" if attr is None else f"{attr}={shift:+g}"
        print(f"| {label} | {per} | {mean('present'):.3f} | {mean('bit_accuracy'):.3f} | {mean('added'):.2f} | "
              f"{enemies} | {max(r['enemy_run'] for r in rows)} | {mean('malformed'):.3f} | {mean('copies'):.3f} |",
              flush=True)
    print("enemies/100 cols: windows of --class enemy, against the training windows with the same bits")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
