"""The latent nearest-neighbour score: how far an input's code lies from the codes of the training items.

A likelihood score asks "how well does the decoder redraw this?"; a plain input is redrawn well
whatever it is (Nalisnick et al. 2019). The encoder's posterior means answer another question: does
this input land where training items land? `gen score --method knn` scores an input by the distance
from its posterior mean to the K-th nearest posterior mean of the run's training items (a deep kNN
detector; Sun et al. 2022 apply it to learned features, Lee et al. 2018 the class-conditional
Gaussian form). For a conditional run, the input is encoded under each class and compared with that
class's training items only, and its score is the nearest class's: an input is normal if it lands
among the items of some class.

The references are the training items with the validation split left out, so the held-out items
measure the distances a normal input gets; a seeded subset of at most REFERENCE_ITEMS keeps the
cost bounded on large corpora.
"""
from __future__ import annotations

import numpy as np
import torch

NEIGHBOURS = 1  # the K of the K-th nearest training code: 1, 5 or 20, chosen on 8x8 digits (bench/anomaly_knn_choice.py)
REFERENCE_ITEMS = 10_000


@torch.no_grad()
def _codes(run, items: torch.Tensor, conditions: torch.Tensor | None, batch: int = 512) -> torch.Tensor:
    """Posterior means (N, d) of `items` under their `conditions` (N, K), or unconditioned."""
    out = []
    for start in range(0, items.shape[0], batch):
        x = items[start:start + batch].to(run.device)
        c = None if conditions is None else conditions[start:start + batch].to(run.device)
        out.append(run.encoder(x, c)[0].float().cpu())
    return torch.cat(out) if out else torch.empty(0, run.config["model"]["latent_dim"])


def _kth_distance(queries: torch.Tensor, reference: torch.Tensor, k: int, batch: int = 1024) -> np.ndarray:
    """Euclidean distance from each query (N, d) to its k-th nearest reference row, (N,)."""
    k = min(k, reference.shape[0])
    out = [torch.cdist(queries[i:i + batch].double(), reference.double()).kthvalue(k, dim=1).values
           for i in range(0, queries.shape[0], batch)]
    return torch.cat(out).numpy() if out else np.empty(0)


class LatentNeighbours:
    """The training items' codes, per class for a conditional run, and the distances to them."""

    def __init__(self, run, train_items: torch.Tensor, train_conditions: torch.Tensor | None):
        if train_items.shape[0] > REFERENCE_ITEMS:
            keep = torch.randperm(train_items.shape[0], generator=torch.Generator().manual_seed(0))[:REFERENCE_ITEMS]
            train_items = train_items[keep]
            train_conditions = None if train_conditions is None else train_conditions[keep]
        self.run = run
        if not run.conditional:
            self.reference = {None: _codes(run, train_items, None)}
            return
        owner = train_conditions.argmax(dim=1)  # (N,) each training item's class
        self.reference = {}
        for j in range(len(run.class_names)):
            mine = owner == j
            if mine.any():
                self.reference[j] = _codes(run, train_items[mine], train_conditions[mine])

    def distances(self, items: torch.Tensor, cls_index: int | None = None, k: int = NEIGHBOURS) -> np.ndarray:
        """(N,) distance to the k-th nearest training code: of the nearest class, or of `cls_index`."""
        if not self.run.conditional:
            return _kth_distance(_codes(self.run, items, None), self.reference[None], k)
        classes = [cls_index] if cls_index is not None else list(self.reference)
        eye = torch.eye(len(self.run.class_names))
        columns = []
        for j in classes:
            if j not in self.reference:
                continue  # a class with no training item has no codes to compare with
            codes = _codes(self.run, items, eye[j].expand(items.shape[0], -1))
            columns.append(_kth_distance(codes, self.reference[j], k))
        return np.min(np.stack(columns, axis=1), axis=1)
