"""Built-in tables: breast cancer (offline, ships with scikit-learn) and KDD Cup 99 (downloaded once).

`builtin:breast-cancer` follows the ODDS recipe for anomaly benchmarks built from a classification
set: the 357 benign records are normal, the 212 malignant ones are the anomaly, subsampled. With
`numpy.random.default_rng(SEED)` the benign records are shuffled and halved: 179 train (the
normal-only training table) and 178 go to `builtin:breast-cancer-test`, with 14 malignant records
drawn without replacement (7.3% of the 192 test records, labelled in `is_anomaly`).

`kddcup99` is scikit-learn's `fetch_kddcup99(subset="SA", percent10=True, random_state=0)` (normal traffic plus
3.3% attacks; 41 features, of which protocol_type, service and flag are categorical), cached in
scikit-learn's data folder. Its normal records are shuffled and halved the same way: `kddcup99`
is one half, `kddcup99-test` the other half plus every attack.
"""
from __future__ import annotations

import numpy as np

from gencore.errors import GenError
from gencore_csv.table import Table

SEED = 20242
TEST_ANOMALIES = 14
NAMES = ("breast-cancer", "breast-cancer-test", "kddcup99", "kddcup99-test")
KDD_CATEGORICAL = ("protocol_type", "service", "flag")


def _split(normal: np.ndarray, anomalies: np.ndarray, test: bool, n_anomalies: int | None, seed: int = SEED):
    rng = np.random.default_rng(seed)
    normal = rng.permutation(normal)
    half = (len(normal) + 1) // 2
    if not test:
        return np.sort(normal[:half]), np.zeros(half, dtype=np.int64)
    picked = anomalies if n_anomalies is None else rng.choice(anomalies, n_anomalies, replace=False)
    rows = np.concatenate([normal[half:], picked])
    labels = np.concatenate([np.zeros(len(normal) - half, dtype=np.int64), np.ones(len(picked), dtype=np.int64)])
    order = np.argsort(rows, kind="stable")
    return rows[order], labels[order]


def _table(name: str, header: list[str], data: np.ndarray, rows: np.ndarray, labels: np.ndarray, test: bool) -> Table:
    body = [[_cell(v) for v in data[i]] + ([str(int(y))] if test else []) for i, y in zip(rows, labels)]
    return Table(f"builtin:{name}", header + (["is_anomaly"] if test else []), body)


def _cell(value) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return repr(float(value)) if isinstance(value, (float, np.floating)) else str(value)


def breast_cancer(test: bool, seed: int = SEED) -> Table:
    """The built-in split; another `seed` draws a fresh one the same way."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    header = [n.replace(" ", "_") for n in data.feature_names]
    benign, malignant = np.flatnonzero(data.target == 1), np.flatnonzero(data.target == 0)
    rows, labels = _split(benign, malignant, test, TEST_ANOMALIES, seed)
    return _table("breast-cancer-test" if test else "breast-cancer", header, data.data, rows, labels, test)


def kddcup99(test: bool) -> Table:
    from sklearn.datasets import fetch_kddcup99

    try:
        data = fetch_kddcup99(subset="SA", percent10=True, shuffle=False, random_state=0, download_if_missing=True)
    except Exception as exc:  # URLError, HTTPError, OSError, ...: one clear line whatever the cause
        raise GenError(f"cannot load KDD Cup 99 through scikit-learn's fetcher ({type(exc).__name__}: "
                       f"{' '.join(str(exc).split())[:120]})", where="kddcup99",
                       hint="it downloads once (about 2 MB) and is cached in ~/scikit_learn_data; connect to the "
                       "internet once, or use the offline default builtin:breast-cancer") from None
    header = [str(n) for n in getattr(data, "feature_names", None) or [f"f{i}" for i in range(data.data.shape[1])]]
    target = np.asarray([t.decode() if isinstance(t, bytes) else str(t) for t in data.target])
    normal, attacks = np.flatnonzero(target == "normal."), np.flatnonzero(target != "normal.")
    rows, labels = _split(normal, attacks, test, None)
    return _table("kddcup99-test" if test else "kddcup99", header, data.data, rows, labels, test)


def builtin_table(source: str) -> tuple[Table, list[str]]:
    """The table and its categorical columns, for `builtin:NAME` or `kddcup99[-test]`."""
    name = source.removeprefix("builtin:")
    if name not in NAMES:
        raise GenError(f"unknown built-in table {name!r}", where=source,
                       hint="use builtin:breast-cancer, builtin:breast-cancer-test, kddcup99 or kddcup99-test")
    test = name.endswith("-test")
    if name.startswith("kddcup99"):
        return kddcup99(test), list(KDD_CATEGORICAL)
    return breast_cancer(test), []


def is_builtin(source: str) -> bool:
    return source.startswith("builtin:") or source.removeprefix("builtin:") in NAMES
