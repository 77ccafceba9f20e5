"""Leave-one-dataset-out choices and the printed tables of bench/anomaly_suite.py."""
from __future__ import annotations

import numpy as np

TODAY = {"tables": ("latent=16,epochs=auto", "kl")}  # the defaults before this suite, where the grid has them


def pairs_of(task: dict) -> list[tuple[str, str]]:
    return [(config, method) for config, methods in task["gen"].items() for method in methods]


def auc(task: dict, pair: tuple[str, str]) -> float:
    return task["gen"][pair[0]][pair[1]]["roc_auc"]


def best_pair(tasks: list[dict]) -> tuple[str, str]:
    """The (configuration, method) with the best mean ROC AUC over `tasks`."""
    return max(pairs_of(tasks[0]), key=lambda p: np.mean([auc(t, p) for t in tasks]))


def choose(tasks: list[dict]) -> dict:
    """The default picked on all datasets, and for each dataset the pick made without it."""
    lodo = {}
    for i, task in enumerate(tasks):
        others = tasks[:i] + tasks[i + 1:]
        lodo[task["name"]] = best_pair(others) if others else best_pair(tasks)
    return {"default": best_pair(tasks), "lodo": lodo}


def _cell(row: dict) -> str:
    p = row["precision_at_k"]
    return f"{row['roc_auc']:.3f}/{p:.2f}" if p is not None else f"{row['roc_auc']:.3f}/n/a"


def show_task(part: str, tasks: list[dict]) -> None:
    picked = choose(tasks)
    default = picked["default"]
    today = TODAY.get(part) if TODAY.get(part, ("",))[0] in tasks[0]["gen"] else None
    detectors = list(tasks[0]["baselines"])
    unit = "per-step " if part == "series" else ""
    print(f"\n{part}: {unit}ROC AUC / precision@k. Default picked on all {len(tasks)} datasets: "
          f"{default[0]} + {default[1]}")
    head = ["dataset", "LODO pick (made without it)", "gen LODO", "gen default"] + (["today"] if today else [])
    head += detectors
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    columns: dict[str, list[dict]] = {h: [] for h in head[2:]}
    for task in tasks:
        pick = picked["lodo"][task["name"]]
        cells = {"gen LODO": task["gen"][pick[0]][pick[1]], "gen default": task["gen"][default[0]][default[1]]}
        if today:
            cells["today"] = task["gen"][today[0]][today[1]]
        cells.update(task["baselines"])
        for h, row in cells.items():
            columns[h].append(row)
        print(f"| {task['name']} | {pick[0]} + {pick[1]} | " + " | ".join(_cell(cells[h]) for h in head[2:]) + " |")
    means = []
    for h in head[2:]:
        rows = columns[h]
        ps = [r["precision_at_k"] for r in rows if r["precision_at_k"] is not None]
        means.append(f"**{np.mean([r['roc_auc'] for r in rows]):.3f}/{np.mean(ps):.2f}**")
    print("| mean | | " + " | ".join(means) + " |")
    seconds = [s for t in tasks for s in t["train_seconds"].values()]
    print(f"  ({len(seconds)} trainings, {np.sum(seconds):.0f} s in all)")
    _grid_table(tasks)


def _grid_table(tasks: list[dict]) -> None:
    """Mean ROC AUC over the datasets of every (configuration, method), for the record."""
    configs = list(tasks[0]["gen"])
    methods = list(tasks[0]["gen"][configs[0]])
    print("  mean ROC AUC by configuration (rows) and method (columns):")
    print("  " + f"{'':24s}" + "".join(f"{m:>15s}" for m in methods))
    for c in configs:
        print("  " + f"{c:24s}" + "".join(f"{np.mean([t['gen'][c][m]['roc_auc'] for t in tasks]):15.3f}"
                                          for m in methods))


def _summary(rows: dict, method: str) -> tuple[float, float, str]:
    """Mean and worst pairing AUC of one method over held-out classes, and the worst pair."""
    values = [(v, f"{k} vs {j}") for k, row in rows.items() for j, v in row["pairs"][method].items()]
    worst = min(values)
    return float(np.mean([v for v, _ in values])), worst[0], worst[1]


def show_digits(part: str, rows: dict, chosen_on: dict | None = None) -> None:
    methods = list(next(iter(rows.values()))["pairs"])
    print(f"\n{part}: unseen class K (every item) against the held-out items of each seen class, ROC AUC "
          f"over {sum(len(r['pairs'][methods[0]]) for r in rows.values())} pairings")
    print("| method | mean | worst pairing |")
    print("|---|---|---|")
    for m in methods:
        mean, worst, pair = _summary(rows, m)
        print(f"| {m}{' (today)' if m == 'elbo' else ''} | {mean:.3f} | {worst:.3f} ({pair}) |")
    per_class = {k: {m: float(np.mean(list(r["pairs"][m].values()))) for m in methods} for k, r in rows.items()}
    if part == "digits":
        print("  LODO over classes: the method is picked on the other classes' mean pairing AUC")
        picks = {}
        for k in per_class:
            others = [c for c in per_class if c != k] or [k]
            picks[k] = max(methods, key=lambda m: np.mean([per_class[c][m] for c in others]))
        lodo = [per_class[k][picks[k]] for k in per_class]
        worst = min(min(rows[k]["pairs"][picks[k]].values()) for k in per_class)
        print("  held-out class: pick -> mean pairing AUC: "
              + ", ".join(f"{k}: {picks[k]} {per_class[k][picks[k]]:.3f}" for k in per_class))
        print(f"  LODO mean {np.mean(lodo):.3f}, worst pairing {worst:.3f}")
    elif chosen_on:
        pick = max(methods, key=lambda m: np.mean([np.mean(list(r["pairs"][m].values())) for r in chosen_on.values()]))
        mean, worst, pair = _summary(rows, pick)
        print(f"  confirmation of the 8x8 pick ({pick}): mean {mean:.3f}, worst pairing {worst:.3f} ({pair})")
    seconds = [r["train_seconds"] for r in rows.values()]
    print(f"  ({len(seconds)} trainings, {np.sum(seconds):.0f} s in all)")
