"""PyOD's detectors as baselines for bench/anomaly_suite.py: the real package (pip install pyod), at
its defaults, fitted on exactly the items gen trains on (the run's normalised training items) and
scoring exactly the items gen scores."""
from __future__ import annotations

import numpy as np

DETECTORS = ("IsolationForest", "ECOD", "KNN", "AutoEncoder", "VAE")


def make(name: str, seed: int, smoke: bool):
    if name == "IsolationForest":
        from pyod.models.iforest import IForest

        return IForest(n_estimators=50 if smoke else 200, random_state=seed)
    if name == "ECOD":
        from pyod.models.ecod import ECOD

        return ECOD()
    if name == "KNN":
        from pyod.models.knn import KNN

        return KNN()
    if name == "AutoEncoder":
        from pyod.models.auto_encoder import AutoEncoder

        return AutoEncoder(epoch_num=2 if smoke else 10, random_state=seed, verbose=0)
    from pyod.models.vae import VAE

    return VAE(epoch_num=2 if smoke else 30, random_state=seed, verbose=0)


def scores(train: np.ndarray, test: np.ndarray, seed: int, smoke: bool = False) -> dict[str, np.ndarray]:
    """Each detector's outlier scores of `test` (higher = more anomalous), fitted on `train`."""
    import torch

    out = {}
    for name in DETECTORS:
        torch.manual_seed(seed)  # PyOD's torch detectors draw from the global generator
        detector = make(name, seed, smoke)
        if name == "KNN":
            detector.n_neighbors = min(detector.n_neighbors, len(train) - 1)
        detector.fit(train)
        out[name] = np.asarray(detector.decision_function(test), dtype=np.float64)
    return out
