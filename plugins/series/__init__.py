"""The `series` domain: time series from CSV files, as windows for 1-D conv autoencoders that flag
the windows (and time steps) they cannot reconstruct.

A CSV holds a time column and one or more value columns (`--columns`); an `is_anomaly` column, or
a separate `time,0|1` file, gives optional ground truth. Series are cut into sliding windows
(`--window`, `--stride`) of per-channel standardised values; the statistics are stored in the run
and reused at score time. Missing values: gaps of up to `--max-gap` steps are interpolated, longer
ones are left out (see reading.py). `gen score -r RUN FILE.csv` writes per-window scores, per-step
scores and a plot of the series with the flagged regions shaded.

Importing this module is cheap: numpy, torch and matplotlib load inside the methods.
"""
from __future__ import annotations

from gencore.plugin import DomainOption
from gencore_csv.domain import CsvAnomalyDomain

__all__ = ["SeriesDomain", "plugin"]


class SeriesDomain(CsvAnomalyDomain):
    name = "series"
    description = ("Time series from CSV (a time column, value columns) as sliding windows; 1-D conv "
                   "autoencoders that flag anomalous windows and time steps")
    item_kind = "seq1d"
    default_data = "builtin:membrane"
    default_val_quantile = 0.99
    # Picked by leave-one-dataset-out over 4 series (bench/anomaly_suite.py, README): among 6 methods and
    # latent 4 or 16 x 10 or 30 epochs, latent 4, 10 epochs and the complexity score had the best mean.
    default_score_method = "complexity"
    training_defaults = {"latent_dim": 4, "epochs": 10}
    options = (
        DomainOption("columns", "value columns to model, comma-separated; default every column but the time "
                     "and label columns, e.g. --columns temperature,pressure"),
        DomainOption("time_column", "the time column (numbers or ISO dates): auto (a column named time, "
                     "timestamp, date, datetime or t), a name, or none (row order), e.g. --time-column ts",
                     default="auto"),
        DomainOption("label_column", "0/1 ground-truth column, used when present; windows touching a 1 are left "
                     "out of training, e.g. --label-column is_anomaly", default="is_anomaly"),
        DomainOption("label_file", "separate ground truth for a single training series: rows of time,0|1, "
                     "e.g. --label-file labels.csv"),
        DomainOption("window", "window length in time steps; default 64, or a sixteenth of a shorter series "
                     "(at least 16), e.g. --window 128", type=int),
        DomainOption("stride", "step between training windows (scoring always uses every window), "
                     "e.g. --stride 4", type=int, default=1),
        DomainOption("max_gap", "interpolate runs of up to this many missing steps; longer gaps are left out "
                     "and no window crosses them, e.g. --max-gap 10", type=int, default=3),
    )


plugin = SeriesDomain()
