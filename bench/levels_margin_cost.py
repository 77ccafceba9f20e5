"""CPU cost of the checker's margin mode in stitching: `--playable` 100-column levels, stitched
and accepted with the margin mode (the default) against the faithful checker, and against the
margin mode without its dead-end test (mario_dead_ends.dead_ends), same run and seeds, interleaved, one
torch thread. CPU time, so a loaded machine matters less than wall time.

    python bench/levels_margin_cost.py --run runs/smb2j --n 4
"""
import argparse
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="assets/pretrained/smb")
    ap.add_argument("--n", type=int, default=4, help="levels per measurement")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from gencore import load_run
    import numpy as np

    from gencore_levels import mario_dead_ends, sampling
    from gencore_levels.playability import Physics

    run = load_run(args.run, device="cpu")
    meta = run.config["data"]["meta"]
    from_meta, dead_ends = Physics.from_meta, mario_dead_ends.dead_ends
    for _ in range(args.repeats):
        for label, margin, dead in (("faithful", False, True), ("margin, no dead-end test", True, False),
                                    ("margin", True, True)):
            sampling.Physics.from_meta = lambda m, margin=False, _keep=margin: from_meta(m, margin=_keep)
            mario_dead_ends.dead_ends = dead_ends if dead else (lambda graph, backstep=0: np.zeros((0, 2), np.int64))
            windows = sampling.Windows(run, meta, 1.0, torch.Generator().manual_seed(1), calibration_seed=7920)
            start = time.process_time()
            grids = sampling._levels(windows, meta, None, args.n, 100, True, mixed=True)
            print(f"{label}: {time.process_time() - start:.1f} s CPU for {len(grids)} --playable levels of 100 columns",
                  flush=True)
    sampling.Physics.from_meta, mario_dead_ends.dead_ends = from_meta, dead_ends


if __name__ == "__main__":
    main()
