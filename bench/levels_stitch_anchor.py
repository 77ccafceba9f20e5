"""Raw stitching before and after the anchored completion test: how often a raw (no --playable)
level passes the checker (faithful and margin mode), and the CPU cost. The baseline is
gencore_levels/sampling.py as it was at BASELINE (the test on the last 4 windows as a bare level,
uncut), loaded from git beside the current one. Same run, same seeds, interleaved, one torch
thread; CPU time, so a loaded machine matters less than wall time.

    python bench/levels_stitch_anchor.py --run assets/pretrained/smb --n 40              # decides (SMB)
    python bench/levels_stitch_anchor.py --run assets/pretrained/smb --n 10 --width 150  # `gen sample --width 150` cost
    python bench/levels_stitch_anchor.py --run runs/smb2j --n 40                         # confirms (SMB2J)
"""
import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

BASELINE = "694e11f"  # main before the anchored test
ROOT = Path(__file__).resolve().parents[1]


def baseline_module():
    import gencore_levels

    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{BASELINE}:plugins/levels/sampling.py"],
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "sampling.py"
    path.write_text(source)
    name = "gencore_levels._baseline_sampling"  # inside the package, so its relative imports resolve
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = gencore_levels.__name__
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="assets/pretrained/smb")
    ap.add_argument("--n", type=int, default=40, help="raw levels per setting")
    ap.add_argument("--width", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from gencore import load_run
    from gencore_levels import sampling
    from gencore_levels.playability import Physics, check

    run = load_run(args.run, device="cpu")
    meta = run.config["data"]["meta"]
    faithful, margin = Physics.from_meta(meta), Physics.from_meta(meta, margin=True)
    print(f"{args.run}: {args.n} raw levels of {args.width} columns, seed {args.seed}")
    for repeat in range(args.repeats):
        for label, module in ((f"before ({BASELINE})", baseline_module()), ("anchored", sampling)):
            windows = module.Windows(run, meta, 1.0, torch.Generator().manual_seed(args.seed),
                                     calibration_seed=args.seed + 7919)
            start = time.process_time()
            grids = module._levels(windows, meta, None, args.n, args.width, False, mixed=True)
            cpu = time.process_time() - start
            print(f"{label}, repeat {repeat}: checker {np.mean([check(g, faithful).passed for g in grids]):.0%}, "
                  f"margin checker {np.mean([check(g, margin).passed for g in grids]):.0%}, "
                  f"{cpu:.1f} s CPU ({cpu / args.n:.2f} s a level)", flush=True)


if __name__ == "__main__":
    main()
