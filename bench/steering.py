"""Designer controls (issue 20): how samples respond to attribute shifts, and the mixture prior
against the normal one, on trained runs.

    python bench/steering.py runs/digits runs/smb runs/chorales --n 200
    python bench/steering.py assets/pretrained/chorales --n 200   # the MIDI rows

For each run: fit the directions and the mixture as `gen attributes` does (on the run's training
codes, seed 0), then

- response: the mean measured attribute of `n` samples at shifts -2..+2 (fresh noise, seed 1,
  not the fitting seed), its Spearman correlation with the shift, and the move from -2 to +2 in
  standard deviations of the attribute over the training reconstructions;
- class control (where the domain reports it) at shifts -2 and +2 of each shipped attribute
  (shift 0: the prior table below). Levels with element bits: the share of `--class ELEMENT`
  windows that carry the element (bench/levels_class_control.py, `--class-n` per class), not
  the unconditioned samples' bit accuracy, whose windows draw their bits from the corpus mix;
- the response and the shifted samples use the prior `gen sample` uses without --prior (the
  domain's default: gmm for MIDI, normal elsewhere) unless --shift-prior says otherwise;
- prior: the domain's own metrics (class control, diversity, nearest-real distance, copy rate,
  levels' structure and enemy rate, MusPy statistics) of `n` samples per class under `--prior
  normal` and `--prior gmm`. MIDI runs add class control by a classifier of real phrases,
  diversity, nearest-real distance and exact copies (`midi_metrics`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/midi_quality.py's class judge


def domain_metrics(run, data, n: int, seed: int) -> dict[str, float]:
    items, _, cond = run.sample_with_labels(n, None, seed, 1.0, options={})
    found = run.domain.metrics(items, cond, data, run.config.data, seed)
    if run.domain_name == "midi":
        found.update(midi_metrics(run, data, items, cond, seed))
    return found


def midi_metrics(run, data, items, cond, seed: int) -> dict[str, float]:
    """What the MIDI domain's own metrics leave out, on the pitch rows of the decoded rolls:
    class control by bench/midi_quality.py's classifier of real phrases (held-out real windows give
    its ceiling), diversity (mean pairwise Jaccard distance of the sounding cells, samples over
    training windows), the Jaccard distance from each sample to its nearest training window, and
    the share of exact copies (onsets and frames equal to a training window's)."""
    import torch
    from midi_quality import class_judge, phrase_features

    from gencore_midi.roll import meters_of
    from gencore_midi.sampling import window_spec

    spec = window_spec(run.config.data)
    real = data.items.numpy().astype(np.uint8)
    val = np.zeros(len(real), dtype=bool)
    val[run.config.split.val_indices] = True
    rolls = items.numpy().astype(np.uint8)
    out = {}
    users = list(run.config.data["meta"].get("classes") or [])
    # Samples drawn with no class ask for no metre either; on a run of several metres the class
    # bits are then not one class, so class control is left to bench/midi_quality.py there.
    if cond is not None and len(users) > 1 and not run.config.data["meta"].get("meter_classes"):
        labels = data.conditions[:, :len(users)].argmax(1).numpy()
        real_meters = meters_of(real, spec)
        judge, ceiling = class_judge(real, real_meters, labels, val, spec, seed)
        judged = judge.predict(phrase_features(rolls, meters_of(rolls, spec), spec))
        out["class_control"] = float((judged == cond[:, :len(users)].argmax(1).numpy()).mean())
        out["class_judge_ceiling"] = ceiling

    def cells(x: np.ndarray) -> torch.Tensor:  # (N, P*T) sounding cells of the pitch rows
        return torch.from_numpy(x[:, 1, :spec.pitch_rows].reshape(len(x), -1).astype(np.float32))

    def jaccard(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # (A, B) distances
        both = a @ b.T
        either = a.sum(1, keepdim=True) + b.sum(1) - both
        return 1 - both / either.clamp(min=1)

    train = real[~val]
    mine, theirs = cells(rolls), cells(train)
    pairs = torch.triu_indices(len(mine), len(mine), 1)
    rng = np.random.default_rng(seed)
    pick = cells(train[rng.choice(len(train), min(len(train), len(rolls)), replace=False)])
    real_pairs = torch.triu_indices(len(pick), len(pick), 1)
    out["diversity_samples"] = float(jaccard(mine, mine)[pairs[0], pairs[1]].mean())
    out["diversity_real"] = float(jaccard(pick, pick)[real_pairs[0], real_pairs[1]].mean())
    out["diversity_ratio"] = out["diversity_samples"] / out["diversity_real"]
    nearest = jaccard(mine, theirs).min(dim=1)
    out["nearest_real_distance"] = float(nearest.values.mean())
    same = [(rolls[i, :2, :spec.pitch_rows] == train[j, :2, :spec.pitch_rows]).all()
            for i, j in enumerate(nearest.indices.tolist())]
    out["copy_rate"] = float(np.mean(same))
    return out


def levels_class_control(run, n: int) -> dict[str, float]:
    """Levels with element bits: presence and bit accuracy of `--class` windows; else nothing."""
    if run.domain_name != "levels" or not run.config.data["meta"].get("elements"):
        return {}
    from levels_class_control import class_control

    return class_control(run, n, seed=1)


def bench_run(path: str, n: int, shift_prior: str | None = None, class_n: int = 40) -> dict:
    from gencore import load_run
    from gencore.attribute_fit import fit_all, measure_response
    from gencore.steering import SamplerSettings
    from gencore.training.data import reload

    run = load_run(path, device="cpu")
    steering, spreads, flat = fit_all(run, seed=0)
    run._steering = steering
    shift_prior = shift_prior or run.default_prior  # what `gen sample` uses without --prior
    response = [measure_response(run, name, n, seed=1, spread=spreads[name], prior=shift_prior)
                for name in steering.names]
    data = reload(run.config, run.domain)
    control = {}
    for r in response:
        if not r.ships:
            continue
        for shift in (-2.0, 2.0):
            run.sampler = SamplerSettings({r.name: shift}, shift_prior)
            got = levels_class_control(run, class_n) or domain_metrics(run, data, n, 1)
            key = "class_present" if "class_present" in got else "class_control"
            if key in got:
                control[f"{r.name}={shift:+g}"] = got[key]
    priors = {}
    for prior in ("normal", "gmm"):
        run.sampler = SamplerSettings({}, prior)
        priors[prior] = domain_metrics(run, data, n, 1)
        priors[prior].update(levels_class_control(run, class_n))
    run.sampler = None
    return {"run": path, "domain": run.domain_name, "arch": run.config.arch, "flat": flat,
            "response": [{"attribute": r.name, "means": r.means, "spearman": r.spearman, "effect": r.effect,
                          "ships": r.ships} for r in response],
            "class_control_at_shift": control, "shift_prior": shift_prior, "priors": priors}


def report(result: dict) -> None:
    print(f"\n## {result['run']} ({result['domain']}, {result['arch']})\n")
    print(f"response under --prior {result.get('shift_prior', 'normal')}\n")
    print("| attribute | -2 | -1 | 0 | +1 | +2 | Spearman | effect (SD) | ships |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in result["response"]:
        cells = " | ".join(f"{m:.3f}" for m in r["means"])
        print(f"| {r['attribute']} | {cells} | {r['spearman']:.2f} | {r['effect']:.2f} | {'yes' if r['ships'] else 'no'} |")
    if result["flat"]:
        print(f"\nno direction (flat on the training reconstructions): {', '.join(result['flat'])}")
    if result["class_control_at_shift"]:
        print(f"\nclass control at shifts (--prior {result.get('shift_prior', 'normal')}): " + ", ".join(f"{k} {v:.3f}" for k, v in result["class_control_at_shift"].items()))
    normal, gmm = result["priors"]["normal"], result["priors"]["gmm"]
    print("\n| metric | normal | gmm |\n|---|---|---|")
    for key in sorted(set(normal) & set(gmm)):
        print(f"| {key} | {normal[key]:.4g} | {gmm[key]:.4g} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="trained run folders")
    parser.add_argument("--n", type=int, default=200, help="samples per shift and per prior")
    parser.add_argument("--class-n", type=int, default=40, help="levels: --class windows per class for class control")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--shift-prior", default=None, choices=("normal", "gmm"),
                        help="the prior of the response and of the class-control samples at shifts -2 and +2 "
                             "(default: the one `gen sample` uses without --prior: gmm for MIDI, else normal)")
    args = parser.parse_args(argv)
    results = []
    for path in args.runs:
        results.append(bench_run(path, args.n, args.shift_prior, args.class_n))
        report(results[-1])
        sys.stdout.flush()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=1, default=float)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
