"""Quality of the levels domain on Super Mario Bros: the figures issue 3 asks for.

    python bench/levels_quality.py                      # trains SMB with the defaults, then measures
    python bench/levels_quality.py --run runs/smb       # measures an existing run

Figures (conditions are drawn from the training set's label vectors, temperature 1):
- raw windows: playable share and progress, structure validity, tile-pattern KL (2x2, 3x3) vs the
  training windows beside a held-out split vs training (the run's validation windows, and whole
  held-out levels), exact-copy rate of 100 samples beside the real duplicate share, novelty,
  diversity, balanced accuracy per element bit;
- 150-column stitched levels: playable share with the default stitching (overlap likelihood plus
  generate-and-test), and with overlap likelihood alone; the tiles `--playable`'s repair changes.

Writes a JSON report (default runs/levels_quality.json) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SMB = ROOT.parent / "shared" / "data" / "vglc" / "Super Mario Bros"


def grids_of(items: torch.Tensor) -> np.ndarray:
    return items.argmax(dim=1).numpy().astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="an existing levels run (default: train one on --data with the defaults)")
    ap.add_argument("--data", default=str(SMB), help="SMB levels folder (default: ../shared/data/vglc/Super Mario Bros)")
    ap.add_argument("--raw", type=int, default=1000, help="raw windows to sample")
    ap.add_argument("--stitched", type=int, default=100, help="stitched levels to sample")
    ap.add_argument("--width", type=int, default=150, help="columns of each stitched level")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/levels_quality.json")
    args = ap.parse_args()

    from gencore import load_run
    from gencore.cli import main as gen_main
    from gencore_levels import plugin
    from gencore_levels import metrics as M
    from gencore_levels import render, structure
    from gencore_levels.playability import Physics, check, repair
    from gencore_levels.sampling import Stitcher, cpu_threads

    timings = {}
    if args.run is None:
        if not Path(args.data).is_dir():
            sys.exit(f"no SMB data at {args.data}; pass --data or --run")
        run_dir = Path("runs") / f"levels-smb-bench-{time.strftime('%Y%m%d-%H%M%S')}"
        start = time.perf_counter()
        try:
            gen_main(["train", "levels", "--data", args.data, "-o", str(run_dir)])
        except SystemExit as exc:
            if exc.code:
                raise
        timings["train_s"] = round(time.perf_counter() - start, 1)
    else:
        run_dir = Path(args.run)
    run = load_run(run_dir, device="cpu")
    config = run.config
    meta = config["data"]["meta"]
    k = len(meta["tiles"])
    from gencore.training.data import reload

    data = reload(config, plugin)  # the run's own items, checked against its fingerprint
    val = np.zeros(data.items.shape[0], dtype=bool)
    val[config["split"]["val_indices"]] = True
    real = grids_of(data.items)
    train_grids, val_grids = real[~val], real[val]
    train_conds = data.conditions[torch.from_numpy(~val)]
    physics = Physics.from_meta(meta)
    idx = structure.indices(meta)
    g = torch.Generator().manual_seed(args.seed)
    report: dict = {"run": str(run_dir), "device": "cpu", "torch_threads": torch.get_num_threads(), **timings,
                    "windows": int(len(real)), "train_windows": int(len(train_grids))}

    # -- raw windows ------------------------------------------------------------------------
    pick = torch.randint(len(train_conds), (args.raw,), generator=g)
    conds = train_conds[pick]
    start = time.perf_counter()
    probs = run.decode(run.decoder.sample_latent(args.raw, g, 1.0).cpu(), conds)
    samples = grids_of(probs)
    report["raw_sample_s"] = round(time.perf_counter() - start, 2)
    results = [check(s, physics) for s in samples]
    report["raw_playable"] = float(np.mean([r.passed for r in results]))
    report["raw_progress"] = float(np.mean([r.fraction for r in results]))
    report["real_playable"] = float(np.mean([check(w, physics).passed for w in val_grids]))
    report["raw_structure_valid"] = float(structure.validity(samples, idx, lenient=True).mean())
    report["real_structure_valid"] = float(structure.validity(real, idx, lenient=True).mean())
    for size in (2, 3):
        report[f"tpkl_{size}x{size}_samples_vs_train"] = M.tpkl(samples, train_grids, size, k)
        report[f"tpkl_{size}x{size}_heldout_windows_vs_train"] = M.tpkl(val_grids, train_grids, size, k)
        rest, held = M.heldout_split(data, len(real), args.seed)
        report[f"tpkl_{size}x{size}_heldout_levels_vs_rest"] = M.tpkl(real[held], real[rest], size, k)
    report["copy_rate_100"] = M.copy_rate(samples[:100], train_grids)
    report["copy_rate_all"] = M.copy_rate(samples, train_grids)
    report["real_duplicate_rate"] = M.duplicate_rate(real)
    report["novelty"] = float(M.nearest_hamming(samples, train_grids, k).mean())
    report["novelty_real_val"] = float(M.nearest_hamming(val_grids, train_grids, k).mean())
    report["diversity"] = M.mean_pairwise_hamming(samples, k)
    report["diversity_real"] = M.mean_pairwise_hamming(train_grids[np.random.default_rng(0).choice(len(train_grids), min(1000, len(train_grids)), replace=False)], k)
    report.update({f"raw_{key}": v for key, v in M.element_accuracy(samples, conds.numpy(), meta).items()})
    tiles = meta["tiles"]
    share = lambda grids, ch: float((grids == tiles.index(ch)).mean())  # noqa: E731
    report["tile_share_real"] = {ch: round(share(train_grids, ch), 5) for ch in "EoS?"}
    for boost in (1.0, 0.75, 0.5):  # `gen sample --rare-boost`: how much of the tile weighting shows
        b = render.grids_of(probs, config["data"], boost)
        acc = M.element_accuracy(b, conds.numpy(), meta)
        report[f"boost_{boost}"] = {
            "tile_share": {ch: round(share(b, ch), 5) for ch in "EoS?"},
            "tpkl_3x3": round(M.tpkl(b, train_grids, 3, k), 4),
            "bit_acc": {n[8:]: round(v, 3) for n, v in acc.items()},
            "playable": float(np.mean([check(x, physics).passed for x in b[:500]])),
        }
    report["label_share_train"] = dict(zip(config["class_names"], train_conds.mean(dim=0).round(decimals=3).tolist()))

    # -- stitched levels ----------------------------------------------------------------------
    pick = torch.randint(len(train_conds), (args.stitched,), generator=g)
    for variant, test_reach in (("stitched", True), ("stitched_overlap_only", False)):
        stitcher = Stitcher(run, meta, 1.0, torch.Generator().manual_seed(args.seed + 1), test_reach=test_reach)
        start = time.perf_counter()
        with cpu_threads(torch, run.device):
            levels = [stitcher.level(train_conds[i], args.width) for i in pick.tolist()]
        report[f"{variant}_s_per_level"] = round((time.perf_counter() - start) / len(levels), 3)
        results = [check(lv, physics) for lv in levels]
        report[f"{variant}_playable"] = float(np.mean([r.passed for r in results]))
        report[f"{variant}_progress"] = float(np.mean([r.fraction for r in results]))
        report[f"{variant}_pipes_whole"] = float(np.mean([structure.pipe_errors(lv, idx) == 0 for lv in levels]))
        report[f"{variant}_tpkl_3x3_vs_train"] = M.tpkl(np.stack(levels), train_grids, 3, k)
        if test_reach:
            changed = [int((np.array(repair(lv.tolist(), physics, idx)) != lv).sum()) for lv, r in zip(levels, results)
                       if not r.passed]
            report["stitched_failing_repair_tiles_changed_mean"] = float(np.mean(changed)) if changed else 0.0

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    width = max(map(len, report))
    for key, value in report.items():
        shown = f"{value:.4g}" if isinstance(value, float) else value
        print(f"{key:<{width}}  {shown}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
