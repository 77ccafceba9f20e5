"""The levels checker's CPU in `gen sample --width` (stitching) and `--playable`, against a
baseline checkout (main), and proof that both write the same files byte for byte.

For each side, one child process (that side's Python, so that side's code) runs a list of
`gen sample` commands in-process through Typer's CliRunner and times every call of the checker
(playability.check) with CPU time. The sides alternate, `--repeats` times. Then the first-hour
command of issue 18 is timed in fresh processes (CPU and wall), alternating too. Every file the
commands write (levels as text, PNGs, legend) is compared between the sides.

    python bench/levels_checker_speed.py --baseline /work/main --demo-run runs/demo

`--baseline`: a checkout with its own .venv (its `gen` and Python are used). `--demo-run`: a run
trained on builtin:demo (the SMB commands use pretrained:smb). CPU time, so a loaded machine
matters less than wall time; wall times here are only comparable within one run of the bench.
"""
from __future__ import annotations

import argparse
import filecmp
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST_COMMAND = ["-q", "sample", "-r", "pretrained:smb", "--class", "coin", "--n", "4", "--width", "150", "--playable"]

# (run, seed, class or None, width, --playable): raw and --playable, widths 100 and 150
SMB = [("pretrained:smb", 0, "coin", 150, True), ("pretrained:smb", 1, "enemy", 100, True),
       ("pretrained:smb", 2, None, 150, False), ("pretrained:smb", 3, "pipe", 100, False),
       ("pretrained:smb", 4, None, 100, True), ("pretrained:smb", 5, "question", 150, False)]
DEMO = [(0, None, 100, True), (1, "first", 150, True), (2, None, 150, False), (3, "first", 100, False)]

# Runs in the child: each side's own gencore, so the same code measures either checkout.
CHILD = r'''
import json, sys, time
from typer.testing import CliRunner
import gencore_levels.playability as playability
import gencore_levels.sampling as sampling
from gencore.cli import app

spent = {"cpu": 0.0, "calls": 0}
check = playability.check
def timed_check(*args, **kwargs):
    start = time.process_time()
    try:
        return check(*args, **kwargs)
    finally:
        spent["cpu"] += time.process_time() - start
        spent["calls"] += 1
playability.check = sampling.check = timed_check  # repair looks it up in playability, stitching in sampling

for name, args in json.loads(sys.argv[1]):
    spent.update(cpu=0.0, calls=0)
    start = time.process_time()
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    print(json.dumps({"name": name, "cpu": time.process_time() - start, "checker": spent["cpu"],
                      "calls": spent["calls"]}), flush=True)
'''


def commands(demo_run: str | None, demo_class: str | None, out: Path) -> list[tuple[str, list[str]]]:
    rows = list(SMB)
    if demo_run:
        rows += [(demo_run, seed, demo_class if cls == "first" else None, width, playable)
                 for seed, cls, width, playable in DEMO]
    listed = []
    for run, seed, cls, width, playable in rows:
        name = f"{'smb' if run.startswith('pretrained') else 'demo'}-s{seed}-{cls or 'mix'}-w{width}" + \
            ("-playable" if playable else "-raw")
        args = ["-q", "sample", "-r", run, "--seed", str(seed), "--n", "4" if seed == 0 else "3",
                "--width", str(width), "-o", str(out / name)]
        args += ["--class", cls] if cls else []
        args += ["--playable"] if playable else []
        listed.append((name, args))
    return listed


def side(python: str, listed: list[tuple[str, list[str]]], cwd: Path) -> dict[str, dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([python, "-c", CHILD, json.dumps(listed)], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode:
        sys.exit(f"{python} failed:\n{done.stderr[-3000:]}")
    return {row["name"]: row for row in map(json.loads, done.stdout.splitlines())}


def cold(gen: str, out: Path, cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of the first-hour command in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # gen's own thread default, as a user runs it
    subprocess.run([gen, *FIRST_COMMAND, "-o", str(out)], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def same_files(a: Path, b: Path) -> tuple[int, list[str]]:
    """(files compared, paths that differ or are missing on one side)."""
    names = sorted({p.relative_to(a) for p in a.rglob("*") if p.is_file()} |
                   {p.relative_to(b) for p in b.rglob("*") if p.is_file()})
    bad = [str(n) for n in names if not ((a / n).is_file() and (b / n).is_file()
                                         and filecmp.cmp(a / n, b / n, shallow=False))]
    return len(names), bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", type=Path, required=True, help="a checkout with its .venv, e.g. /work/main")
    ap.add_argument("--demo-run", help="a run trained on builtin:demo, e.g. runs/demo")
    ap.add_argument("--demo-class", help="a class of the demo run (default: its first)")
    ap.add_argument("--repeats", type=int, default=2, help="alternations of the in-process commands")
    ap.add_argument("--cold", type=int, default=3, help="alternations of the first-hour command, fresh processes")
    args = ap.parse_args()
    demo_class = args.demo_class
    if args.demo_run and demo_class is None:
        config = json.loads((Path(args.demo_run) / "config.json").read_text())
        demo_class = (config.get("class_names") or [None])[0]
    sides = {"baseline": (str(args.baseline / ".venv/bin/python"), str(args.baseline / ".venv/bin/gen")),
             "this": (sys.executable, str(Path(sys.executable).with_name("gen")))}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fresh = work / "fresh"  # no ./runs here, as for a new user
        fresh.mkdir()
        demo = str(Path(args.demo_run).resolve()) if args.demo_run else None
        rows: dict[str, list[dict[str, dict]]] = {name: [] for name in sides}
        for r in range(args.repeats):
            for name, (python, _) in sides.items():
                rows[name].append(side(python, commands(demo, demo_class, work / f"{name}-{r}"), fresh))
        colds: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
        for r in range(args.cold):
            for name, (_, gen) in sides.items():
                colds[name].append(cold(gen, work / f"cold-{name}-{r}", fresh))
        compared, differ = same_files(work / "baseline-0", work / "this-0")
        for r in range(args.cold):
            n, bad = same_files(work / f"cold-baseline-{r}", work / f"cold-this-{r}")
            compared, differ = compared + n, differ + [f"cold-{r}/{b}" for b in bad]
        repeat_n, repeat_bad = same_files(work / "this-0", work / f"this-{args.repeats - 1}")

    print(f"baseline {args.baseline}; this {Path(__file__).resolve().parents[1]}; {os.cpu_count()} CPUs; "
          f"1-minute load average {os.getloadavg()[0]:.1f}; medians of {args.repeats} (CPU seconds, one thread)")
    print(f"{'command':<34} {'checker calls':>13} {'checker CPU/level':>18} {'ratio':>6} {'command CPU':>14} {'ratio':>6}")
    totals = {name: [0.0, 0.0] for name in sides}
    for command in rows["this"][0]:
        per = {name: [rep[command] for rep in rows[name]] for name in sides}
        levels = 4 if "-s0-" in command else 3
        check = {name: statistics.median(p["checker"] for p in per[name]) for name in sides}
        total = {name: statistics.median(p["cpu"] for p in per[name]) for name in sides}
        for name in sides:
            totals[name][0] += check[name]
            totals[name][1] += total[name]
        calls = f"{per['baseline'][0]['calls']} -> {per['this'][0]['calls']}"
        print(f"{command:<34} {calls:>13} {check['baseline'] / levels:>8.3f} -> {check['this'] / levels:.3f} "
              f"{check['baseline'] / check['this']:>5.1f}x {total['baseline']:>5.2f} -> {total['this']:<5.2f} "
              f"{total['baseline'] / total['this']:>5.2f}x")
    b, t = totals["baseline"], totals["this"]
    print(f"{'all':<34} {'':>13} {'':>18} {b[0] / t[0]:>5.1f}x {b[1]:>5.1f} -> {t[1]:<5.1f} {b[1] / t[1]:>5.2f}x  "
          f"(checker {b[0]:.1f} -> {t[0]:.1f} s)")
    for name in sides:
        walls, cpus = [c[0] for c in colds[name]], [c[1] for c in colds[name]]
        print(f"first-hour command, fresh process, {name}: {statistics.median(cpus):.2f} s CPU, "
              f"{statistics.median(walls):.2f} s wall  [CPU {' '.join(f'{c:.2f}' for c in cpus)}]")
    ratio = statistics.median(c[1] for c in colds["baseline"]) / statistics.median(c[1] for c in colds["this"])
    print(f"first-hour command CPU ratio, baseline / this: {ratio:.2f}x")
    print(f"byte for byte: {compared} files compared between the sides, {len(differ)} differ"
          + (f": {differ[:10]}" if differ else "") + f"; this side against its own repeat: {repeat_n} files, "
          f"{len(repeat_bad)} differ")
    if differ or repeat_bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
