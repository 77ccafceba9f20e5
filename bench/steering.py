"""Designer controls (issue 20): how samples respond to attribute shifts, and the mixture prior
against the normal one, on trained runs.

    python bench/steering.py runs/digits runs/smb runs/chorales --n 200

For each run: fit the directions and the mixture as `gen attributes` does (on the run's training
codes, seed 0), then

- response: the mean measured attribute of `n` samples at shifts -2..+2 (fresh noise, seed 1,
  not the fitting seed), its Spearman correlation with the shift, and the move from -2 to +2 in
  standard deviations of the attribute over the training reconstructions;
- class control (where the domain reports it; for levels with element bits, the mean bit
  accuracy) at shifts -2 and +2 of each shipped attribute (shift 0: the `normal` column below);
- prior: the domain's own metrics (class control, diversity, nearest-real distance, copy rate,
  levels' structure and enemy rate, MusPy statistics) of `n` samples per class under `--prior
  normal` and `--prior gmm`.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def domain_metrics(run, data, n: int, seed: int) -> dict[str, float]:
    items, _, cond = run.sample_with_labels(n, None, seed, 1.0, options={})
    return run.domain.metrics(items, cond, data, run.config.data, seed)


def bench_run(path: str, n: int) -> dict:
    from gencore import load_run
    from gencore.attribute_fit import fit_all, measure_response
    from gencore.steering import SamplerSettings
    from gencore.training.data import reload

    run = load_run(path, device="cpu")
    steering, spreads, flat = fit_all(run, seed=0)
    run._steering = steering
    response = [measure_response(run, name, n, seed=1, spread=spreads[name]) for name in steering.names]
    data = reload(run.config, run.domain)
    control = {}
    for r in response:
        if not r.ships:
            continue
        for shift in (-2.0, 2.0):
            run.sampler = SamplerSettings({r.name: shift})
            got = domain_metrics(run, data, n, 1)
            key = "class_control" if "class_control" in got else "bit_acc_mean"  # levels: element bits
            if key in got:
                control[f"{r.name}={shift:+g}"] = got[key]
    priors = {}
    for prior in ("normal", "gmm"):
        run.sampler = SamplerSettings({}, prior)
        priors[prior] = domain_metrics(run, data, n, 1)
    run.sampler = None
    return {"run": path, "domain": run.domain_name, "arch": run.config.arch, "flat": flat,
            "response": [{"attribute": r.name, "means": r.means, "spearman": r.spearman, "effect": r.effect,
                          "ships": r.ships} for r in response],
            "class_control_at_shift": control, "priors": priors}


def report(result: dict) -> None:
    print(f"\n## {result['run']} ({result['domain']}, {result['arch']})\n")
    print("| attribute | -2 | -1 | 0 | +1 | +2 | Spearman | effect (SD) | ships |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in result["response"]:
        cells = " | ".join(f"{m:.3f}" for m in r["means"])
        print(f"| {r['attribute']} | {cells} | {r['spearman']:.2f} | {r['effect']:.2f} | {'yes' if r['ships'] else 'no'} |")
    if result["flat"]:
        print(f"\nno direction (flat on the training reconstructions): {', '.join(result['flat'])}")
    if result["class_control_at_shift"]:
        print("\nclass control at shifts: " + ", ".join(f"{k} {v:.3f}" for k, v in result["class_control_at_shift"].items()))
    normal, gmm = result["priors"]["normal"], result["priors"]["gmm"]
    print("\n| metric | normal | gmm |\n|---|---|---|")
    for key in sorted(set(normal) & set(gmm)):
        print(f"| {key} | {normal[key]:.4g} | {gmm[key]:.4g} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="trained run folders")
    parser.add_argument("--n", type=int, default=200, help="samples per shift and per prior")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    results = []
    for path in args.runs:
        results.append(bench_run(path, args.n))
        report(results[-1])
        sys.stdout.flush()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=1, default=float)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
