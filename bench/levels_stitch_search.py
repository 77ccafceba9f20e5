"""Raw stitching's wider search: how often a raw (no --playable) level passes the checker, and the
CPU cost, with the search (more candidate batches for a step no candidate completes, then one step
of backtracking) against without it (WIDER_DRAWS = BACKTRACKS = 0, the earlier stitching). Same run,
same seeds, interleaved, one torch thread; CPU time, so a loaded machine matters less than wall time.

    python bench/levels_stitch_search.py --run assets/pretrained/smb --n 40     # decides (SMB)
    python bench/levels_stitch_search.py --run runs/smb2j --n 40                # confirms (SMB2J)
"""
import argparse
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="assets/pretrained/smb")
    ap.add_argument("--n", type=int, default=40, help="raw levels per setting")
    ap.add_argument("--width", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from gencore import load_run
    from gencore_levels import sampling
    from gencore_levels.playability import Physics, check

    run = load_run(args.run, device="cpu")
    meta = run.config["data"]["meta"]
    faithful, margin = Physics.from_meta(meta), Physics.from_meta(meta, margin=True)
    search = (sampling.WIDER_DRAWS, sampling.BACKTRACKS)
    print(f"{args.run}: {args.n} raw levels of {args.width} columns, seed {args.seed}")
    for label, (wider, back) in (("without search", (0, 0)), (f"with search {search}", search)):
        sampling.WIDER_DRAWS, sampling.BACKTRACKS = wider, back
        windows = sampling.Windows(run, meta, 1.0, torch.Generator().manual_seed(args.seed),
                                   calibration_seed=args.seed + 7919)
        start = time.process_time()
        grids = sampling._levels(windows, meta, None, args.n, args.width, False, mixed=True)
        cpu = time.process_time() - start
        passed = np.mean([check(g, faithful).passed for g in grids])
        passed_margin = np.mean([check(g, margin).passed for g in grids])
        print(f"{label}: checker {passed:.0%}, margin checker {passed_margin:.0%}, "
              f"{cpu:.1f} s CPU ({cpu / args.n:.2f} s a level)", flush=True)
    sampling.WIDER_DRAWS, sampling.BACKTRACKS = search


if __name__ == "__main__":
    main()
