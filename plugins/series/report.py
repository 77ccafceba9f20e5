"""Per-time-step scores and the shaded plot that `gen score` writes for a series run.

A step's score is the lowest score of the windows that cover it (every window, stride 1): a step is
flagged when no window through it looks normal. The score is in the units of the window scores, so
one threshold flags windows and steps alike, and a flagged region has the extent of the anomaly
rather than of the windows around it (a spike raises every window that holds it, but a step beside
the spike also lies in windows without it).
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from gencore.storage import write_bytes, write_text
from gencore_csv.table import csv_text

from .loading import ScoredSeries
from .reading import Series

MAX_PLOTTED_SERIES = 6
MIN_SPAN = 0.004  # of the time axis


def step_scores(series: Series, starts: np.ndarray, scores: np.ndarray, window: int) -> np.ndarray:
    """(T,) the minimum score of the windows covering each step; NaN where no window does."""
    low = np.full(len(series), np.inf)
    for offset in range(window):
        np.minimum.at(low, starts + offset, scores)
    return np.where(np.isfinite(low), low, np.nan)


def step_means(series: Series, starts: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Reconstructed windows (n, C, W) averaged back onto the steps, (T, C); NaN where uncovered."""
    window = windows.shape[2]
    total = np.zeros((len(series), windows.shape[1]))
    count = np.zeros(len(series))
    for offset in range(window):
        np.add.at(total, starts + offset, windows[:, :, offset])
        np.add.at(count, starts + offset, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count[:, None] > 0, total / np.maximum(count, 1)[:, None], np.nan)


def _time_text(series: Series, i: int) -> str:
    if series.time_text[i]:
        return series.time_text[i]
    if series.time_kind == "datetime":
        return str(np.datetime64(int(round(series.times[i])), "s"))
    return f"{series.times[i]:g}"


def _reconstructions(run, data: ScoredSeries, index: np.ndarray, mean: np.ndarray, std: np.ndarray):
    if not (run.path / "decoder.safetensors").is_file():
        return None  # an encoder-only export scores without a decoder
    recon = run.reconstruct(data.items[index]).numpy().astype(np.float64)  # (n, C, W)
    return recon * std[None, :, None] + mean[None, :, None]


def report(run, data: ScoredSeries, index: np.ndarray, scores: np.ndarray, threshold: float | None,
           method: str, out: Path) -> dict[str, Any]:
    norm = run.config["data"]["normalisation"]
    mean, std = np.asarray(norm["mean"]), np.asarray(norm["std"])
    which, starts = data.window_series[index], data.window_starts[index]
    recon = _reconstructions(run, data, index, mean, std)
    header = ["series", "time", *norm["columns"], "score"] + (["anomaly"] if threshold is not None else [])
    header += [f"{c}_reconstruction" for c in norm["columns"]] if recon is not None else []
    labelled = all(s.labels is not None for s in data.series)
    header += ["label"] if labelled else []
    rows, panels, all_scores, all_labels = [], [], [], []
    for k, s in enumerate(data.series):
        mine = which == k
        per_step = step_scores(s, starts[mine], scores[mine], data.window)
        rebuilt = step_means(s, starts[mine], recon[mine]) if recon is not None else None
        flags = per_step > threshold if threshold is not None else np.zeros(len(s), dtype=bool)
        panels.append((s, per_step, rebuilt, flags))
        scored = ~np.isnan(per_step)
        all_scores.append(per_step[scored])
        if labelled:
            all_labels.append(s.labels[scored])
        for i in range(len(s)):
            row = [s.where, _time_text(s, i), *(_num(v) for v in s.values[i]), _num(per_step[i])]
            row += [int(flags[i])] if threshold is not None else []
            row += [_num(v) for v in rebuilt[i]] if rebuilt is not None else []
            row += [int(s.labels[i])] if labelled else []
            rows.append(row)
    steps_path = out.with_name(out.stem + "-steps.csv")
    plot_path = out.with_name(out.stem + ".png")
    write_text(steps_path, csv_text(header, rows))
    write_bytes(plot_path, plot(panels, threshold, method, norm["columns"], str(run.path.name)))
    scored_scores = np.concatenate(all_scores)
    summary: dict[str, Any] = {
        "time_steps": len(rows), "scored_steps": int(scored_scores.size),
        "flagged_steps": int(sum(p[3].sum() for p in panels)) if threshold is not None else None,
        "steps_csv": str(steps_path), "plot": str(plot_path),
    }
    if labelled:
        truth = np.concatenate(all_labels)
        from gencore.scoring import precision_at_k, roc_auc

        summary["step_roc_auc"] = roc_auc(scored_scores, truth)
        summary["step_precision_at_k"] = precision_at_k(scored_scores, truth)
    return summary


def _num(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.6g}"


def _spans(mask: np.ndarray, x: np.ndarray):
    """(start, end) x-coordinates of each run of True, half a step wider on either side, and at
    least MIN_SPAN of the axis wide, so that a one-step spike still shows."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    half = (x[1] - x[0]) / 2 if len(x) > 1 else 0
    pad = (x[-1] - x[0]) * MIN_SPAN / 2 if len(x) > 1 else 0
    for a, b in zip(edges[::2], edges[1::2]):
        lo, hi = x[a] - half, x[b - 1] + half
        centre = lo + (hi - lo) / 2
        yield min(lo, centre - pad), max(hi, centre + pad)


def plot(panels, threshold: float | None, method: str, columns: list[str], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import Patch

    shown = panels[:MAX_PLOTTED_SERIES]
    fig, axes = plt.subplots(2 * len(shown), 1, figsize=(13, 4.2 * len(shown)), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1] * len(shown)})
    for k, (s, per_step, rebuilt, flags) in enumerate(shown):
        ax, ax_score = axes[2 * k, 0], axes[2 * k + 1, 0]
        x = s.times.astype("datetime64[s]") if s.time_kind == "datetime" else s.times
        for c, name in enumerate(columns):
            ax.plot(x, s.values[:, c], lw=0.9, label=name)
            if rebuilt is not None:
                ax.plot(x, rebuilt[:, c], lw=0.8, ls="--", color="0.35",
                        label="reconstruction" if c == 0 else None)
        for target, mask, colour, alpha in ((ax, flags, "tab:red", 0.25), (ax_score, flags, "tab:red", 0.25),
                                            (ax, ~s.valid, "0.6", 0.4)):
            for lo, hi in _spans(mask, x):
                target.axvspan(lo, hi, color=colour, alpha=alpha, lw=0)
        if s.labels is not None:
            for lo, hi in _spans(s.labels.astype(bool), x):
                ax.axvspan(lo, hi, ymin=0, ymax=0.06, color="tab:orange", lw=0)
        ax.set_title(f"{s.where}  ({title}, {method} score)", fontsize=10)
        handles, labels = ax.get_legend_handles_labels()
        handles += [Patch(color="tab:red", alpha=0.25, label="flagged")]
        if s.labels is not None:
            handles += [Patch(color="tab:orange", label="labelled anomaly")]
        if (~s.valid).any():
            handles += [Patch(color="0.6", alpha=0.4, label="gap (not scored)")]
        ax.legend(handles=handles, loc="upper right", fontsize=8, ncol=min(6, len(handles)))
        ax.margins(x=0)
        ax_score.plot(x, per_step, color="tab:purple", lw=0.9)
        if threshold is not None:
            ax_score.axhline(threshold, color="tab:red", ls="--", lw=0.9, label=f"threshold {threshold:.4g}")
            ax_score.legend(loc="upper right", fontsize=8)
        ax_score.set_ylabel("step score")
        ax_score.margins(x=0)
    if len(panels) > len(shown):
        fig.suptitle(f"first {len(shown)} of {len(panels)} series; all are in the steps CSV", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
