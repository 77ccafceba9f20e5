"""Quality of the levels domain against the real game: the table issue 22 asks for.

    python bench/levels_quality.py                               # trains `gen train levels` (SMB), then measures
    python bench/levels_quality.py --run runs/smb                # measures an existing run
    python bench/levels_quality.py --data builtin:smb2j          # the same on SMB2J (trained with the same defaults)

Rows: the real levels (and their 16-column windows), raw windows (no --class: the corpus's
element-bit mix; and per element bit, conditions drawn from the training windows carrying that
bit), and 100-column levels, raw and --playable (`--n 20 --width 100`, seeds 1 and 2, as in the
issue; --seed-offset 100 draws levels at seeds 101 and 102 instead). Columns:

- valid: share with no malformed cell (structure.malformed_map, the issue's rules);
- enemies/100: enemy tiles per 100 columns, beside the same for the real windows or levels compared;
- run: the longest horizontal run of adjacent enemies;
- TPKL 3x3: tile-pattern KL against the training windows, one unit at a time and averaged (a
  100-column level's windows, or a chunk of as many raw windows); the real rows give the same
  unit held out: each real level's 100-column stretches, or random sets of as many of its
  windows, against the other levels' windows;
- copies: share of windows identical to a training window;
- checker: share the built-in checker passes; agent: share Robin Baumgarten's A* agent finishes
  (PlayAstar.jar of mario-gpt 0.1.3, `java -jar PlayAstar.jar LEVEL norender IMGDIR/`), when Java
  and the jar are present (--agent-dir, default bench/.agent/); the column is left out otherwise.
  The agent plans against a time budget per frame, so on a loaded machine it can fail a level
  it finishes on an idle one: Java runs under `nice -n -10` where allowed, a lost level gets up
  to --agent-tries runs, and the table gives the first try and the best of the tries. Runs are
  kept by level text in AGENT_DIR/agent_runs.json.

Writes a JSON report and a Markdown table (default runs/levels_quality-<game>.{json,md}).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
AGENT_DIR = ROOT / "bench" / ".agent"


# -- the independent agent ---------------------------------------------------------------------------
def agent_ready(folder: Path) -> bool:
    return shutil.which("java") is not None and (folder / "PlayAstar.jar").is_file()


def agent_play(text: str, folder: Path) -> tuple[bool, float]:
    """One run of the A* agent: (won, share of the level completed). Java runs at raised priority
    (`nice -n -10` where allowed): the agent plans against a time budget per frame."""
    images = folder / "img"
    if not images.is_dir():  # the jar wants its sprite folder; mario-gpt ships it beside the jar
        images = folder / "whl" / "mario_gpt" / "simulator" / "img"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "level.txt"
        path.write_text(text)
        command = ["java", "-jar", str(folder / "PlayAstar.jar"), str(path), "norender", f"{images}/"]
        try:
            out = subprocess.run(["nice", "-n", "-10", *command], capture_output=True, text=True, timeout=900).stdout
        except subprocess.TimeoutExpired:
            return False, 0.0
    done = re.search(r"Percentage Completion:\s*([0-9.]+)", out)
    return bool(re.search(r"Game Status:\s*WIN", out)), float(done.group(1)) if done else 0.0


def agent_runs(texts: list[str], folder: Path, tries: int, workers: int) -> list[list[list]]:
    """Per level, the agent's runs [[won, completion], ...]: a level it wins is not played again,
    one it loses gets up to `tries` runs in all. Kept by level text in folder/agent_runs.json, so
    the real levels are played once and reruns are cheap."""
    import hashlib

    cache_path = folder / "agent_runs.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
    for _ in range(tries):
        todo = [(k, t) for k, t in dict(zip(keys, texts)).items()
                if len(cache.get(k, [])) < tries and not any(won for won, _ in cache.get(k, []))]
        with ThreadPoolExecutor(workers) as pool:
            for (k, _), result in zip(todo, pool.map(lambda kt: agent_play(kt[1], folder), todo)):
                cache.setdefault(k, []).append(list(result))
        cache_path.write_text(json.dumps(cache, indent=0) + "\n")
    return [cache[k] for k in keys]


# -- measures -----------------------------------------------------------------------------------------
def tpkl_heldout(levels: list[np.ndarray], k: int, windows_of, width: int, seed: int = 0) -> dict[str, float]:
    """The baselines of TPKL 3x3, in the samples' unit: each real level against the windows of
    the other levels, as (a) its `width`-column stretches (non-overlapping; a level's windows as a
    100-column sampled level gives them) and (b) sets of as many of its windows drawn at random
    (as a chunk of raw sampled windows gives them). Means over stretches and over sets."""
    from gencore_levels.metrics import tpkl

    rng = np.random.default_rng(seed)
    stretches, chunks = [], []
    for i, level in enumerate(levels):
        rest = np.concatenate([windows_of(lv) for j, lv in enumerate(levels) if j != i])
        own = windows_of(level)
        unit = windows_of(level[:, :width]).shape[0]
        for start in range(0, level.shape[1] - width + 1, width):
            stretches.append(tpkl(windows_of(level[:, start:start + width]), rest, 3, k))
        for _ in range(max(1, len(own) // unit)):
            chunks.append(tpkl(own[rng.choice(len(own), min(unit, len(own)), replace=False)], rest, 3, k))
    return {"levels": float(np.mean(stretches)), "windows": float(np.mean(chunks)), "unit_windows": unit}


def tpkl_per_unit(grids, ctx: dict) -> float:
    """TPKL 3x3 against the training windows, one unit at a time (a level, or a chunk of as many
    raw windows as a level has), averaged: the same unit as the held-out baselines."""
    from gencore_levels.metrics import tpkl

    if isinstance(grids, np.ndarray):  # raw windows
        unit = ctx["unit_windows"]
        sets = [grids[s:s + unit] for s in range(0, len(grids) - unit + 1, unit)]
    else:
        sets = [ctx["windows_of"](g) for g in grids]
    return float(np.mean([tpkl(w, ctx["train_windows"], 3, ctx["k"]) for w in sets]))


def row(name: str, grids: list[np.ndarray] | np.ndarray, ctx: dict, compare: str, copies: bool = False,
        levels: bool = False, texts: list[str] | None = None) -> dict:
    from gencore_levels import metrics as M
    from gencore_levels import structure
    from gencore_levels.playability import check

    stack = grids if isinstance(grids, np.ndarray) else None
    windows = stack if stack is not None else np.concatenate([ctx["windows_of"](g) for g in grids])
    out = {"rows": name, "n": len(grids), "compare": compare,
           "valid": float(np.mean([structure.malformed(g[None], ctx["idx"])[0] == 0 for g in grids])),
           "enemies_per_100": float(np.mean([np.isin(g, ctx["enemy"]).sum() / g.shape[1] * 100 for g in grids])),
           "enemies_ref": ctx["enemy_ref"][compare],
           "run": max(M.longest_run(g[None], ctx["enemy"]) for g in grids),
           "tpkl_3x3": tpkl_per_unit(grids, ctx)}
    if copies:
        out["copies"] = M.copy_rate(windows, ctx["train_windows"])
    if levels:
        out["checker"] = float(np.mean([check(g, ctx["physics"]).passed for g in grids]))
        if ctx["agent"] is not None and texts is not None:
            runs = agent_runs(texts, *ctx["agent"])
            out["agent_first"] = float(np.mean([r[0][0] for r in runs]))
            out["agent"] = float(np.mean([any(won for won, _ in r) for r in runs]))
            out["agent_lost"] = {i: [done for _, done in r] for i, r in enumerate(runs) if not any(w for w, _ in r)}
    return out


def markdown(report: dict) -> str:
    cols = [("rows", "samples", "{}"), ("n", "n", "{}"), ("valid", "valid", "{:.0%}"),
            ("enemies_per_100", "enemies/100", "{:.1f}"), ("enemies_ref", "real enemies/100", "{:.1f}"),
            ("run", "longest run", "{}"), ("tpkl_3x3", "TPKL 3x3", "{:.3f}"), ("copies", "copies", "{:.1%}"),
            ("checker", "checker", "{:.0%}"), ("agent_first", "agent, 1st try", "{:.0%}"),
            ("agent", "agent, best of tries", "{:.0%}")]
    lines = ["| " + " | ".join(c[1] for c in cols) + " |", "|" + "---|" * len(cols)]
    for r in report["table"]:
        lines.append("| " + " | ".join(fmt.format(r[key]) if key in r and r[key] is not None else "–"
                                       for key, _, fmt in cols) + " |")
    b = report["baselines"]
    lines.append("")
    lines.append(f"TPKL 3x3 per unit, held out (each real level against the other levels' windows): "
                 f"{b['tpkl_heldout_levels']:.3f} for its 100-column stretches (compare the level rows), "
                 f"{b['tpkl_heldout_windows']:.3f} for random sets of as many of its windows (compare the "
                 f"window rows). Longest enemy run in training: {b['enemy_run_max']}. "
                 f"Real windows valid: {b['real_windows_valid']:.0%}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="an existing levels run (default: train one with `gen train levels --data DATA`)")
    ap.add_argument("--data", default="builtin:smb", help="the corpus to train on, e.g. builtin:smb2j")
    ap.add_argument("--raw", type=int, default=1000, help="raw windows with no --class")
    ap.add_argument("--per-class", type=int, default=200, help="raw windows per element bit")
    ap.add_argument("--levels", type=int, default=20, help="100-column levels, raw and --playable")
    ap.add_argument("--width", type=int, default=100)
    ap.add_argument("--agent-dir", default=str(AGENT_DIR), help="folder holding PlayAstar.jar (and img/)")
    ap.add_argument("--agent-tries", type=int, default=1, help="runs per level; a level counts as finished if one wins")
    ap.add_argument("--agent-workers", type=int, default=6)
    ap.add_argument("--seed-offset", type=int, default=0,
                    help="added to the level rows' seeds (1 raw, 2 --playable), e.g. 100 for levels never looked at")
    ap.add_argument("--out", default=None, help="report path stem (default runs/levels_quality-<game>)")
    args = ap.parse_args()

    from gencore import load_run
    from gencore.cli import main as gen_main
    from gencore.training.data import reload
    from gencore_levels import plugin, structure
    from gencore_levels.corpus import align, read_corpus, to_grid
    from gencore_levels.decoding import rules_of
    from gencore_levels.playability import Physics
    from gencore_levels.render import level_text
    from gencore_levels.sampling import Windows, _levels, cpu_threads

    timings = {}
    if args.run is None:
        run_dir = ROOT / "runs" / f"levels-bench-{args.data.split(':')[-1]}-{time.strftime('%Y%m%d-%H%M%S')}"
        start, cpu = time.perf_counter(), time.process_time()
        try:
            gen_main(["train", "levels", "--data", args.data, "-o", str(run_dir)])
        except SystemExit as exc:
            if exc.code:
                raise
        timings = {"train_s": round(time.perf_counter() - start, 1), "train_cpu_s": round(time.process_time() - cpu, 1)}
    else:
        run_dir = Path(args.run)
    run = load_run(run_dir, device="cpu")
    config = run.config
    meta = config["data"]["meta"]
    game = args.data.split(":")[-1] if args.run is None else meta["games"][0]
    k = len(meta["tiles"])
    data = reload(config, plugin)
    val = np.zeros(data.items.shape[0], dtype=bool)
    val[config["split"]["val_indices"]] = True
    real_windows = data.items.argmax(dim=1).numpy().astype(np.uint8)
    train_windows = real_windows[~val]
    bits = data.conditions.numpy() if data.conditions is not None else None
    source = config["data"]["source"]
    corpus = read_corpus(source, None, None)
    index = {ch: i for i, ch in enumerate(meta["tiles"])}
    levels = align([to_grid(lv, index) for lv in corpus.levels], "horizontal", index[meta["empty"]])
    window = meta["window"]

    def windows_of(grid: np.ndarray) -> np.ndarray:
        return np.stack([grid[:, s:s + window] for s in range(0, grid.shape[1] - window + 1)])

    rules = rules_of(meta)
    idx = structure.indices(meta)
    physics = Physics.from_meta(meta)
    agent = (Path(args.agent_dir), args.agent_tries, args.agent_workers) if agent_ready(Path(args.agent_dir)) else None
    enemy_ref = {"real windows": float(np.isin(real_windows, rules["enemy"]).sum() / len(real_windows) / window * 100),
                 "real levels": float(np.mean([np.isin(g, rules["enemy"]).sum() / g.shape[1] * 100 for g in levels]))}
    names = config["class_names"]
    for j, name in enumerate(names):
        carry = real_windows[bits[:, j] > 0.5]
        enemy_ref[f"windows with {name}"] = float(np.isin(carry, rules["enemy"]).sum() / len(carry) / window * 100)
    ctx = {"idx": idx, "enemy": rules["enemy"], "k": k, "train_windows": train_windows, "windows_of": windows_of,
           "physics": physics, "agent": agent, "enemy_ref": enemy_ref}
    report = {"run": str(run_dir), "game": game, "source": source, "torch_threads": torch.get_num_threads(), **timings,
              "agent": "PlayAstar.jar (mario-gpt 0.1.3)" if agent else "absent: no java or no PlayAstar.jar",
              "agent_tries": args.agent_tries, "table": []}
    heldout = tpkl_heldout(levels, k, windows_of, args.width)
    ctx["unit_windows"] = heldout["unit_windows"]
    report["baselines"] = {"tpkl_heldout_levels": heldout["levels"], "tpkl_heldout_windows": heldout["windows"],
                           "enemy_run_max": meta.get("enemy_run_max"),
                           "real_windows_valid": float((structure.malformed(real_windows, idx) == 0).mean())}
    texts = [level_text(g, meta["tiles"]) for g in levels]
    table = report["table"]
    table.append(row("real windows", real_windows, ctx, "real windows", copies=False))
    table.append(row(f"real levels ({len(levels)})", levels, ctx, "real levels", levels=True, texts=texts))
    table[0]["tpkl_3x3"], table[1]["tpkl_3x3"] = heldout["windows"], heldout["levels"]  # held out, per unit

    start = time.perf_counter()
    with cpu_threads(torch, run.device):
        windows = Windows(run, meta, 1.0, torch.Generator().manual_seed(0), calibration_seed=7919)
        raw, _ = windows.draw(None, args.raw, mixed=True)
        table.append(row("raw windows, no --class", raw, ctx, "real windows", copies=True))
        for j, name in enumerate(names):
            carry = torch.from_numpy(bits[(bits[:, j] > 0.5) & ~val])
            pick = torch.randint(len(carry), (args.per_class,), generator=torch.Generator().manual_seed(j))
            grids = []
            for key in torch.unique(carry[pick], dim=0):
                n = int((carry[pick] == key).all(dim=1).sum())
                grids.append(windows.draw(key, n)[0])
            table.append(row(f"raw windows, {name}", np.concatenate(grids), ctx, f"windows with {name}", copies=True))
        for label, playable, seed in (("raw", False, 1 + args.seed_offset), ("--playable", True, 2 + args.seed_offset)):
            windows = Windows(run, meta, 1.0, torch.Generator().manual_seed(seed), calibration_seed=seed + 7919)
            grids = _levels(windows, meta, None, args.levels, args.width, playable, mixed=True)
            texts = [level_text(g, meta["tiles"]) for g in grids]
            table.append(row(f"{args.width}-column levels, {label}", grids, ctx, "real levels", levels=True,
                             texts=texts))
            report[f"levels_{label.strip('-')}_lost_text"] = {i: texts[int(i)] for i in table[-1].get("agent_lost", {})}
            report[f"levels_{label.strip('-')}_text"] = [level_text(g, meta["tiles"]) for g in grids[:3]]
    report["sample_s"] = round(time.perf_counter() - start, 1)
    stem = Path(args.out) if args.out else ROOT / "runs" / f"levels_quality-{game}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    text = markdown(report)
    stem.with_suffix(".md").write_text(text)
    print(text)
    print(f"wrote {stem}.json and {stem}.md")


if __name__ == "__main__":
    sys.exit(main())
