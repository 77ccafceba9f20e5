"""The `tabular` domain: records of numeric and categorical columns (network flows, lab results)
as feature vectors for MLP autoencoders and VAEs, scored for anomaly by reconstruction error or by
the encoder alone.

A CSV's numeric columns are standardised and its categorical columns (`--categorical`) one-hot
encoded, with the training statistics stored in the run. Records labelled 1 in `is_anomaly` are
left out of training. `gen score -r RUN table.csv` scores every record and writes, beside the
chosen score, the Mahalanobis distance of the posterior mean, the KL of the posterior from the
prior (both from encoder.safetensors alone) and the reconstruction error. With no --method, the
negative ELBO scores. Built in:
`builtin:breast-cancer` (offline, the default) and `kddcup99` (downloaded once by scikit-learn).

Importing this module is cheap: numpy, torch and matplotlib load inside the methods.
"""
from __future__ import annotations

from gencore.plugin import DomainOption
from gencore_csv.domain import CsvAnomalyDomain

__all__ = ["TabularDomain", "plugin"]


class TabularDomain(CsvAnomalyDomain):
    name = "tabular"
    description = ("Tables of numeric and categorical columns (CSV; built in: breast cancer, KDD Cup 99) as "
                   "feature vectors; MLP VAEs that score records by reconstruction or by the encoder alone")
    item_kind = "vector"
    default_data = "builtin:breast-cancer"
    default_val_quantile = 0.99
    # Picked by leave-one-dataset-out over 7 tables (bench/anomaly_suite.py, README), among 6 methods and
    # 6 training configurations; the engine's training defaults (latent 16, auto epochs) won there too.
    default_score_method = "elbo"
    options = (
        DomainOption("columns", "feature columns, comma-separated; default every column but the label column, "
                     "e.g. --columns duration,protocol,bytes"),
        DomainOption("categorical", "columns to one-hot encode (the others must be numbers), comma-separated, "
                     "e.g. --categorical protocol,service"),
        DomainOption("label_column", "0/1 ground-truth column, used when present; records labelled 1 are left out "
                     "of training, e.g. --label-column is_anomaly", default="is_anomaly"),
    )


plugin = TabularDomain()
