"""The datasets of bench/anomaly_suite.py: only data that ships inside pip packages (scikit-learn,
statsmodels, matplotlib), so the suite runs offline. Every split and injection is seeded.

Tables, built the ODDS way (Rayana 2016): the normal records are shuffled and halved, one half to
train on (normal records only), the other half to score together with `anomalies` records of a
rare class drawn without replacement. A large table is first cut to `MAX_NORMAL` normal records.

| name | package | normal | anomalies in the test half |
|---|---|---|---|
| breast-cancer | sklearn | benign | 14 malignant |
| wine | sklearn | cultivars 1 and 2 | 10 of cultivar 0 (the ODDS wine recipe) |
| iris | sklearn | setosa, versicolor | 8 virginica |
| optdigits | sklearn digits as 64 features | digits 1-9 | 40 zeros (the ODDS optdigits recipe) |
| anes96 | statsmodels | Democrats (PID 0-2) | 25 strong Republicans (PID 6); PID and vote are not features |
| fair | statsmodels | women with no affair | 40 with one (a weak signal: kept on purpose) |
| diabetes | sklearn | every patient | 24 injected: 12 global (each feature uniform over 1.2x its range), 12 dependency (each feature from another random patient) |

Series: the first half of each real series is the training part; anomalies are written into the
second half by `gencore_series.demo.inject` (spikes of 3 steps at +-5 sd, level shifts of +-2 sd,
noise bursts of 0.7 sd, flatlines; equal numbers of each kind, sd of the training part), with
event lengths scaled to the series (an eighth to a quarter of each event's slot).

| name | package | steps | events |
|---|---|---|---|
| co2 | statsmodels, weekly CO2 at Mauna Loa (gaps interpolated) | 2,284 | 8 |
| elnino | statsmodels, monthly sea surface temperature | 732 | 4 |
| sunspots | statsmodels, yearly sunspot activity | 309 | 4 |
| macro-infl | statsmodels macrodata, quarterly US inflation | 203 | 4 |
| membrane | matplotlib, a neuron's membrane potential (gen's builtin:membrane range) | 5,650 | 8 |
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEED = 20251
MAX_NORMAL = 1200


@dataclass
class TableSet:
    name: str
    header: list[str]
    train: np.ndarray  # (n, d) normal records
    test: np.ndarray  # (m, d)
    labels: np.ndarray  # (m,) 1 = anomaly


@dataclass
class SeriesSet:
    name: str
    train: np.ndarray  # (T,) values
    test: np.ndarray  # (T',) values with injected anomalies
    labels: np.ndarray  # (T',)
    events: list


def odds_split(name, header, data, normal, anomalous, n_anomalies, seed) -> TableSet:
    rng = np.random.default_rng(seed)
    normal = rng.permutation(np.flatnonzero(normal))[:MAX_NORMAL]
    half = (len(normal) + 1) // 2
    picked = rng.choice(np.flatnonzero(anomalous), n_anomalies, replace=False)
    test = np.concatenate([normal[half:], picked])
    labels = np.concatenate([np.zeros(len(normal) - half, dtype=int), np.ones(len(picked), dtype=int)])
    return TableSet(name, header, data[np.sort(normal[:half])].astype(float), data[test].astype(float), labels)


def _sklearn(loader):
    d = loader()
    return [str(n).replace(" ", "_") for n in d.feature_names], d.data, d.target


def _statsmodels(name):
    import statsmodels.api as sm

    return getattr(sm.datasets, name).load_pandas().data


def tables(seed: int = SEED) -> list[TableSet]:
    from sklearn import datasets

    out = []
    header, x, y = _sklearn(datasets.load_breast_cancer)
    out.append(odds_split("breast-cancer", header, x, y == 1, y == 0, 14, seed))
    header, x, y = _sklearn(datasets.load_wine)
    out.append(odds_split("wine", header, x, y != 0, y == 0, 10, seed))
    header, x, y = _sklearn(datasets.load_iris)
    out.append(odds_split("iris", header, x, y != 2, y == 2, 8, seed))
    d = datasets.load_digits()
    out.append(odds_split("optdigits", [f"pixel{i}" for i in range(64)], d.data, d.target != 0, d.target == 0, 40,
                          seed))
    anes = _statsmodels("anes96")
    features = [c for c in anes.columns if c not in ("PID", "vote")]
    pid = anes["PID"].to_numpy()
    out.append(odds_split("anes96", features, anes[features].to_numpy(), pid <= 2, pid == 6, 25, seed))
    fair = _statsmodels("fair")
    features = [c for c in fair.columns if c != "affairs"]
    affairs = fair["affairs"].to_numpy()
    out.append(odds_split("fair", features, fair[features].to_numpy(), affairs == 0, affairs > 0, 40, seed))
    out.append(injected_diabetes(seed))
    return out


def injected_diabetes(seed: int) -> TableSet:
    from sklearn.datasets import load_diabetes

    d = load_diabetes()
    x = d.data.astype(float)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    half = (len(x) + 1) // 2
    train, rest = x[order[:half]], x[order[half:]]
    lo, hi = train.min(axis=0), train.max(axis=0)
    span = hi - lo
    global_ = rng.uniform(lo - 0.1 * span, hi + 0.1 * span, size=(12, x.shape[1]))
    donors = rng.integers(0, len(train), size=(12, x.shape[1]))
    dependency = train[donors, np.arange(x.shape[1])[None, :]]
    test = np.concatenate([rest, global_, dependency])
    labels = np.concatenate([np.zeros(len(rest), dtype=int), np.ones(24, dtype=int)])
    return TableSet("diabetes", [str(n) for n in d.feature_names], train, test, labels)


def _series_values() -> dict[str, np.ndarray]:
    from gencore_series import demo

    co2 = _statsmodels("co2")["co2"].interpolate(limit_direction="both").to_numpy()
    elnino = _statsmodels("elnino").drop(columns="YEAR").to_numpy().ravel()
    sunspots = _statsmodels("sunspots")["SUNACTIVITY"].to_numpy()
    infl = _statsmodels("macrodata")["infl"].to_numpy()
    membrane = demo.recording()[demo.START:demo.END]
    return {"co2": co2, "elnino": elnino, "sunspots": sunspots, "macro-infl": infl, "membrane": membrane}


def series(seed: int = SEED) -> list[SeriesSet]:
    from gencore_series.demo import inject

    out = []
    for k, (name, values) in enumerate(_series_values().items()):
        values = np.asarray(values, dtype=float)
        half = len(values) // 2
        train, rest = values[:half], values[half:]
        events = 8 if len(rest) >= 1000 else 4
        slot = len(rest) // events
        lengths = (max(4, slot // 8), max(5, slot // 4))
        test, labels, placed = inject(rest, float(train.std()), seed + k, events, lengths)
        out.append(SeriesSet(name, train, test, labels, placed))
    return out


def table_csv(header: list[str], rows: np.ndarray, labels: np.ndarray | None = None) -> str:
    lines = [",".join(header + (["is_anomaly"] if labels is not None else []))]
    for i, row in enumerate(rows):
        cells = [repr(float(v)) for v in row] + ([str(int(labels[i]))] if labels is not None else [])
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def series_csv(values: np.ndarray, labels: np.ndarray | None = None) -> str:
    lines = ["t,value" + (",is_anomaly" if labels is not None else "")]
    for t, v in enumerate(values):
        lines.append(f"{t},{float(v)!r}" + (f",{int(labels[t])}" if labels is not None else ""))
    return "\n".join(lines) + "\n"
