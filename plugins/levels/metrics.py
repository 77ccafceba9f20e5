"""Level metrics of generated samples against the training corpus (docs/metrics.md).

All take tile-index grids (N, H, W). Figures returned by `compute` are plain floats:

- `tpkl_2x2`, `tpkl_3x3`: tile-pattern KL (Lucas & Volz 2019), samples vs the corpus, beside
  `tpkl_*_heldout`: the same for real windows of held-out levels vs the other levels' windows;
- `playable`, `playable_progress`: the checker's pass rate and mean furthest-column fraction, and
  `playable_real`: the pass rate of real windows;
- `structure_valid` (and `structure_valid_real`): pipes whole and floor present;
- `copy_rate`: share of samples identical to a real window; `real_duplicate_rate`: share of real
  windows identical to another real window;
- `novelty`: mean Hamming distance (tiles) to the nearest real window; `diversity`: mean pairwise
  Hamming distance between samples (`diversity_real`: between real windows);
- element runs: `bit_acc_NAME` (balanced accuracy of each element bit asked for vs found) and
  `bit_acc_mean`; folder runs: `judge_accuracy` and `class_control` (a 1-nearest-neighbour judge
  on real windows).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import decoding, structure
from .playability import Physics, check

if TYPE_CHECKING:
    from gencore.plugin import LoadedData

EPS = 1e-6
CAP_REAL = 3000  # real windows used for pairwise and checker baselines
HELDOUT_SHARE = 0.2


def _codes(grids: np.ndarray, k: int, n_tiles: int) -> np.ndarray:
    n, h, w = grids.shape
    if h < k or w < k:
        return np.zeros(0, dtype=np.int64)
    g = grids.astype(np.int64)
    if n_tiles ** (k * k) < 2 ** 62:
        codes = np.zeros((n, h - k + 1, w - k + 1), dtype=np.int64)
        for dr in range(k):
            for dc in range(k):
                codes = codes * n_tiles + g[:, dr:dr + h - k + 1, dc:dc + w - k + 1]
        return codes.reshape(-1)
    stacked = np.stack([g[:, dr:dr + h - k + 1, dc:dc + w - k + 1] for dr in range(k) for dc in range(k)], -1)
    _, inverse = np.unique(stacked.reshape(-1, k * k), axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def tpkl(a: np.ndarray, b: np.ndarray, k: int, n_tiles: int) -> float:
    """0.5 KL(P||Q) + 0.5 KL(Q||P) of the k x k pattern distributions, eps-smoothed over the union."""
    if n_tiles ** (k * k) >= 2 ** 62:  # pattern ids must agree between the two sets
        both = _codes(np.concatenate([a, b]), k, n_tiles)
        split = len(_codes(a, k, n_tiles))
        ca, cb = both[:split], both[split:]
    else:
        ca, cb = _codes(a, k, n_tiles), _codes(b, k, n_tiles)
    if not len(ca) or not len(cb):
        return float("nan")
    ua, na = np.unique(ca, return_counts=True)
    ub, nb = np.unique(cb, return_counts=True)
    union = np.union1d(ua, ub)
    p = np.zeros(len(union))
    q = np.zeros(len(union))
    p[np.searchsorted(union, ua)] = na
    q[np.searchsorted(union, ub)] = nb
    p = p / p.sum() + EPS
    q = q / q.sum() + EPS
    p, q = p / p.sum(), q / q.sum()
    return float(0.5 * np.sum(p * np.log(p / q)) + 0.5 * np.sum(q * np.log(q / p)))


def _one_hot_flat(grids: np.ndarray, n_tiles: int):
    import torch

    idx = torch.from_numpy(grids.reshape(len(grids), -1).astype(np.int64))
    return torch.nn.functional.one_hot(idx, n_tiles).reshape(len(grids), -1).float()


def nearest_hamming(samples: np.ndarray, real: np.ndarray, n_tiles: int, chunk: int = 256) -> np.ndarray:
    """(N,) the Hamming distance from each sample to its nearest real grid (same shape)."""
    r = _one_hot_flat(real, n_tiles)
    cells = samples[0].size
    out = []
    for start in range(0, len(samples), chunk):
        s = _one_hot_flat(samples[start:start + chunk], n_tiles)
        same = (s @ r.T).max(dim=1).values
        out.append(cells - same.numpy())
    return np.rint(np.concatenate(out)).astype(np.int64)


def mean_pairwise_hamming(grids: np.ndarray, n_tiles: int) -> float:
    if len(grids) < 2:
        return float("nan")
    x = _one_hot_flat(grids, n_tiles)
    same = (x @ x.T).numpy()
    n = len(grids)
    cells = grids[0].size
    return float((cells * n * (n - 1) - (same.sum() - np.trace(same))) / (n * (n - 1)))


def duplicate_rate(grids: np.ndarray) -> float:
    """Share of grids identical to at least one other grid."""
    flat = np.ascontiguousarray(grids.reshape(len(grids), -1))
    _, inverse, counts = np.unique(flat, axis=0, return_inverse=True, return_counts=True)
    return float((counts[inverse.reshape(-1)] > 1).mean())


def copy_rate(samples: np.ndarray, real: np.ndarray) -> float:
    seen = {g.tobytes() for g in np.ascontiguousarray(real)}
    return float(np.mean([g.tobytes() in seen for g in np.ascontiguousarray(samples)]))


def balanced_accuracy(want: np.ndarray, got: np.ndarray) -> float:
    want, got = want.astype(bool), got.astype(bool)
    parts = []
    if want.any():
        parts.append((got & want).sum() / want.sum())
    if (~want).any():
        parts.append((~got & ~want).sum() / (~want).sum())
    return float(np.mean(parts)) if parts else float("nan")


def element_accuracy(samples: np.ndarray, conditions: np.ndarray, meta: dict[str, Any]) -> dict[str, float]:
    from .labels import element_bits

    table = meta["elements"]
    got = element_bits(samples, table)
    out = {f"bit_acc_{name}": balanced_accuracy(conditions[:, j] > 0.5, got[:, j]) for j, name in enumerate(table)}
    values = [v for v in out.values() if v == v]
    if values:
        out["bit_acc_mean"] = float(np.mean(values))
    return out


def nearest_labels(query: np.ndarray, real: np.ndarray, labels: np.ndarray, n_tiles: int,
                   chunk: int = 256) -> np.ndarray:
    """The label of each query grid's nearest real grid (Hamming distance): a 1-NN judge."""
    r = _one_hot_flat(real, n_tiles)
    out = []
    for start in range(0, len(query), chunk):
        q = _one_hot_flat(query[start:start + chunk], n_tiles)
        out.append(labels[(q @ r.T).argmax(dim=1).numpy()])
    return np.concatenate(out) if out else np.zeros(0, labels.dtype)


def judge(real: np.ndarray, labels: np.ndarray, samples: np.ndarray, wanted: np.ndarray, n_tiles: int,
          seed: int) -> dict[str, float]:
    """Class control with a 1-nearest-neighbour judge on real items (docs/metrics.md), and the
    judge's own accuracy on a held-out fifth of them."""
    if len(np.unique(labels)) < 2:
        return {}
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(real))[:CAP_REAL]
    cut = int(len(order) * 0.8)
    fit, test = order[:cut], order[cut:]
    acc = float((nearest_labels(real[test], real[fit], labels[fit], n_tiles) == labels[test]).mean())
    pred = nearest_labels(samples, real[order], labels[order], n_tiles)
    return {"judge_accuracy": acc, "class_control": float((pred == wanted).mean())}


def heldout_split(reference: "LoadedData", n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out items: whole levels (about a fifth) when the level of each item is known,
    else a random fifth of the items."""
    rng = np.random.default_rng(seed)
    ids = getattr(reference, "level_ids", None)
    if ids is not None and len(ids) == n and len(np.unique(ids)) >= 4:
        levels = np.unique(ids)
        held = rng.choice(levels, max(1, round(len(levels) * HELDOUT_SHARE)), replace=False)
        mask = np.isin(ids, held)
    else:
        mask = np.zeros(n, dtype=bool)
        mask[rng.choice(n, max(1, round(n * HELDOUT_SHARE)), replace=False)] = True
    return ~mask, mask


def playability(grids: np.ndarray, physics: Physics) -> tuple[float, float]:
    results = [check(g, physics) for g in grids]
    return float(np.mean([r.passed for r in results])), float(np.mean([r.fraction for r in results]))


def enemies_per_100(grids: np.ndarray, enemy: list[int]) -> float:
    """Enemy tiles per 100 columns (of horizontal levels or windows)."""
    return float(np.isin(grids, enemy).sum() / (len(grids) * grids.shape[-1]) * 100) if len(grids) else float("nan")


def longest_run(grids: np.ndarray, enemy: list[int]) -> int:
    """The longest horizontal run of adjacent enemy tiles."""
    is_enemy = np.isin(grids, enemy)
    run = longest = np.zeros(grids.shape[:-1], dtype=np.int64)
    for c in range(grids.shape[-1]):
        run = (run + 1) * is_enemy[..., c]
        longest = np.maximum(longest, run)
    return int(longest.max()) if longest.size else 0


def _enemies_expected(conditions, meta: dict[str, Any], enemy: list[int], height: int) -> float:
    """Enemy tiles per 100 columns of the training windows with the samples' element bits."""
    table = meta.get("tile_freq") or {}
    keys = [""] if conditions is None else [
        "".join("1" if v > 0.5 else "0" for v in c.tolist()) for c in conditions.detach().cpu()]
    shares = [sum(table.get(k, table.get("", [0.0] * (max(enemy) + 1)))[e] for e in enemy) for k in keys]
    return float(np.mean(shares) * height * 100) if shares else float("nan")


def decoded(samples, conditions, meta: dict[str, Any]) -> np.ndarray:
    """Decoder outputs (N, K, H, W) -> grids as `gen sample` decodes them (decoding.py), each
    condition vector calibrated on its own samples."""
    import torch

    x = samples.detach().float().cpu()
    if float(x.amax(dim=1).min()) >= 0.999:  # one-hot tiles (real windows, or gen sample's output)
        return x.argmax(dim=1).numpy().astype(np.uint8)
    logp = torch.log(x.clamp_min(1e-9)).numpy()
    rules = decoding.rules_of(meta)
    keys = ["all"] * len(logp) if conditions is None else [
        "".join("1" if v > 0.5 else "0" for v in c.tolist()) for c in conditions.detach().cpu()]
    out = np.zeros((len(logp), *logp.shape[2:]), dtype=np.uint8)
    for key in dict.fromkeys(keys):
        where = np.array([i for i, k in enumerate(keys) if k == key])
        bits = None if key == "all" else np.array([float(b) for b in key])
        offset = decoding.calibrate(logp[where], decoding.target_frequencies(meta, bits), rules)
        out[where] = decoding.decode(logp[where], rules, offset)
    return out


def compute(samples, sample_conditions, reference: "LoadedData", spec: dict[str, Any], seed: int) -> dict[str, float]:
    from .render import grids_of

    meta = spec["meta"]
    k = len(meta["tiles"])
    s = decoded(samples, sample_conditions, meta)
    r = grids_of(reference.items)
    if not len(s) or not len(r) or s.shape[1:] != r.shape[1:]:
        return {}
    rng = np.random.default_rng(seed)
    real_subset = r[np.sort(rng.choice(len(r), min(len(r), CAP_REAL), replace=False))]
    out: dict[str, float] = {}
    train, held = heldout_split(reference, len(r), seed)
    for size in (2, 3):
        out[f"tpkl_{size}x{size}"] = tpkl(s, r, size, k)
        if held.any() and train.any():
            out[f"tpkl_{size}x{size}_heldout"] = tpkl(r[held], r[train], size, k)
    physics = Physics.from_meta(meta) if meta.get("playable") else None
    if physics is not None:
        out["playable"], out["playable_progress"] = playability(s, physics)
        out["playable_real"], _ = playability(real_subset[:500], physics)
    idx = structure.indices(meta)
    if idx["pipes"] or idx["cannons"]:
        out["structure_valid"] = float((structure.malformed(s, idx) == 0).mean())
        out["structure_valid_real"] = float((structure.malformed(real_subset, idx) == 0).mean())
    enemy = decoding.rules_of(meta)["enemy"]
    if enemy:
        out["enemies_per_100_cols"] = enemies_per_100(s, enemy)
        out["enemies_per_100_cols_real"] = _enemies_expected(sample_conditions, meta, enemy, s.shape[1])
        out["enemy_run_max"] = float(longest_run(s, enemy))
    out["copy_rate"] = copy_rate(s, r)
    out["real_duplicate_rate"] = duplicate_rate(r)
    out["novelty"] = float(nearest_hamming(s, r, k).mean())
    out["diversity"] = mean_pairwise_hamming(s[:1000], k)
    out["diversity_real"] = mean_pairwise_hamming(real_subset[:1000], k)
    if sample_conditions is not None and reference.conditions is not None:
        conds = sample_conditions.detach().cpu().numpy()
        if meta.get("labels") == "elements":
            out.update(element_accuracy(s, conds, meta))
        else:
            out.update(judge(r, reference.conditions.numpy().argmax(1), s, conds.argmax(1), k, seed))
    return {key: float(v) for key, v in out.items() if v == v}
