"""More `--playable` levels for the A* agent than bench/levels_quality.py plays: N levels of 100
columns from one seed, the agent's first try and best of two, and the lost levels' text. The
margin mode (gencore_levels/mario.py) was tuned on SMB with seed 11; seed 12 was not looked at.

    python bench/levels_playable_agent.py --run assets/pretrained/smb --seed 12 --n 30
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from levels_quality import AGENT_DIR, agent_ready, agent_runs  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="assets/pretrained/smb")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--agent-dir", default=str(AGENT_DIR))
    ap.add_argument("--out", default=None, help="JSON report (default: none)")
    args = ap.parse_args()
    if not agent_ready(Path(args.agent_dir)):
        sys.exit("gen: error: no java or no PlayAstar.jar in --agent-dir (see docs/levels.md)")
    torch.set_num_threads(1)
    from gencore import load_run
    from gencore_levels.render import level_text
    from gencore_levels.sampling import Windows, _levels

    run = load_run(args.run, device="cpu")
    meta = run.config["data"]["meta"]
    windows = Windows(run, meta, 1.0, torch.Generator().manual_seed(args.seed), calibration_seed=args.seed + 7919)
    texts = [level_text(g, meta["tiles"]) for g in _levels(windows, meta, None, args.n, 100, True, mixed=True)]
    runs = agent_runs(texts, Path(args.agent_dir), 2, 6)
    first = float(np.mean([r[0][0] for r in runs]))
    best = float(np.mean([any(won for won, _ in r) for r in runs]))
    lost = {i: texts[i] for i, r in enumerate(runs) if not any(won for won, _ in r)}
    print(f"{args.run}, seed {args.seed}: {args.n} --playable levels of 100 columns; agent first try {first:.0%}, "
          f"best of 2 {best:.0%}; lost: {sorted(lost)}")
    if args.out:
        Path(args.out).write_text(json.dumps({"first": first, "best": best, "runs": runs, "lost": lost}, indent=1) + "\n")


if __name__ == "__main__":
    main()
