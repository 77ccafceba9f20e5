"""Shared CSV reading and the common shape of the CSV anomaly domains (series, tabular).

Installed as the top-level package `gencore_csv`; it is no domain of its own and has no entry
point."""
