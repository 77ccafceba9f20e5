"""How the latent nearest-neighbour score and its K were chosen: leave-one-class-out on 8x8 digits.

    python bench/anomaly_suite.py --parts digits --out suite      # trains the ten runs (or reuse them)
    python bench/anomaly_knn_choice.py --runs suite/digits        # features of each run, then the choice

For each held-out class K (run suite/digits/noK), every unseen item and the run's held-out normal
items are scored by the likelihood scores and by candidate latent scores: the distance of the
posterior mean to the k-th nearest training code of the class it is encoded under (k = 1, 5, 20,
the nearest class's distance), the class-conditional Mahalanobis distance of Lee et al. 2018, and
sums of the ratio score and one of these, each standardised on the held-out normal items (as
`gencore.scoring` does for `ratio+knn`). A candidate is picked for each class on the other nine
classes' mean pairing ROC AUC. 28x28 digits took no part: bench/anomaly_suite.py confirms there.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def features(run_dir: Path, k: int, cache: Path) -> Path:
    import torch

    from gencore import scoring
    from gencore.api import load_run
    from gencore.scoring_corrected import compressed_nats
    from gencore.training.data import heldout, reload

    out = cache / f"{run_dir.name}.npz"
    if out.is_file():
        return out
    run = load_run(run_dir, device="cpu")
    full = run.domain.load(None, run.config["data"]["options"])
    unseen = full.items[full.conditions[:, full.class_names.index(str(k))] == 1]
    data = reload(run.config, run.domain)
    held = heldout(run.config, data)
    mask = torch.ones(data.items.shape[0], dtype=torch.bool)
    mask[torch.tensor(run.config["split"]["val_indices"], dtype=torch.long)] = False
    train_items, train_cond = data.items[mask], data.conditions[mask]
    items = torch.cat([unseen, held.items])
    eye = torch.eye(len(run.class_names))
    with torch.no_grad():
        mus = np.stack([run.encoder(items, eye[j].expand(len(items), -1))[0].numpy()
                        for j in range(len(run.class_names))], axis=1)  # (N, K, d)
        train_mu = np.concatenate([run.encoder(train_items[i:i + 512], train_cond[i:i + 512])[0].numpy()
                                   for i in range(0, len(train_items), 512)])
    np.savez(out, n_unseen=len(unseen), held_class=held.conditions.argmax(1).numpy(),
             elbo=scoring.per_class(run, items, "elbo", seed=0), bg=scoring._background(run).nll(items),
             comp=compressed_nats(items, run.decoder.likelihood), mus=mus, train_mu=train_mu,
             train_class=train_cond.argmax(1).numpy())
    return out


def _line_fit(base, measure, held):
    slope, intercept = np.polyfit(measure[held], base[held], 1)
    return base - (intercept + slope * measure)


def _knn(mus, train_mu, train_class, k):  # (N, K): k-th nearest training code of each class
    out = np.empty(mus.shape[:2])
    for j in range(mus.shape[1]):
        ref = train_mu[train_class == j]
        dist = np.sqrt(((mus[:, j, None, :] - ref[None]) ** 2).sum(-1))
        out[:, j] = np.sort(dist, axis=1)[:, min(k, len(ref)) - 1]
    return out


def _lee(mus, train_mu, train_class):  # (N, K): class means, one shared covariance
    means = np.stack([train_mu[train_class == j].mean(0) for j in range(mus.shape[1])])
    resid = train_mu - means[train_class]
    precision = np.linalg.inv(np.cov(resid.T) + 1e-6 * np.eye(resid.shape[1]))
    diff = mus - means[None]
    return np.einsum("nkd,de,nke->nk", diff, precision, diff)


def candidates(f) -> dict[str, np.ndarray]:
    n = int(f["n_unseen"])
    held = np.arange(len(f["bg"])) >= n
    elbo = f["elbo"].min(1)
    c = {"elbo": elbo, "ratio": _line_fit(elbo, f["bg"], held), "complexity": _line_fit(elbo, f["comp"], held)}
    for k in (1, 5, 20):
        c[f"knn{k}"] = _knn(f["mus"], f["train_mu"], f["train_class"], k).min(1)
    c["lee"] = _lee(f["mus"], f["train_mu"], f["train_class"]).min(1)

    def z(s):
        return (s - s[held].mean()) / (s[held].std() + 1e-12)

    for other in ("knn1", "knn5", "knn20", "lee", "complexity"):
        c[f"ratio+{other}"] = z(c["ratio"]) + z(c[other])
    return c


def pairings(path: Path) -> dict[str, list[float]]:
    from sklearn.metrics import roc_auc_score

    f = np.load(path)
    n, held_class = int(f["n_unseen"]), f["held_class"]
    out = {}
    for name, s in candidates(f).items():
        out[name] = []
        for j in sorted(set(held_class)):
            normal = s[n:][held_class == j]
            out[name].append(roc_auc_score(np.r_[np.ones(n), np.zeros(len(normal))], np.r_[s[:n], normal]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True, help="the digits runs noK of anomaly_suite.py, e.g. suite/digits")
    parser.add_argument("--cache", type=Path, default=None, help="keep the features here, e.g. --cache knn-features")
    args = parser.parse_args()
    import torch

    from gencore import console

    console.settings.quiet = True
    torch.set_num_threads(1)
    cache = args.cache or args.runs / "knn-features"
    cache.mkdir(parents=True, exist_ok=True)
    per = {k: pairings(features(args.runs / f"no{k}", k, cache)) for k in range(10)}
    names = list(per[0])
    print("8x8 digits, each class held out: mean / worst pairing ROC AUC over 90 pairings, then per held-out class")
    for m in names:
        every = np.concatenate([per[k][m] for k in per])
        print(f"  {m:18s} {every.mean():.3f} / {every.min():.3f}   " + " ".join(f"{np.mean(per[k][m]):.3f}" for k in per))
    picks = []
    for k in per:
        best = max(names, key=lambda m: np.mean(np.concatenate([per[q][m] for q in per if q != k])))
        picks.append(f"{k}: {best} {np.mean(per[k][best]):.3f}/{np.min(per[k][best]):.3f}")
    print("  LODO over classes (pick -> mean/worst pairing of the held-out class): " + ", ".join(picks))


if __name__ == "__main__":
    main()
