"""The shared shape of the CSV anomaly domains (series, tabular): every method lives in the
domain package's own modules (loading, report, render), imported on first use so that importing
the plugin stays cheap."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gencore.plugin import Domain, LoadedData

if TYPE_CHECKING:
    import torch
    from PIL import Image


class CsvAnomalyDomain(Domain):
    def _part(self, name: str):
        return importlib.import_module(f"{type(self).__module__}.{name}")

    # -- data ---------------------------------------------------------------------------------
    def load(self, source: str | None, options: dict[str, Any]) -> LoadedData:
        return self._part("loading").load_training(source, options)

    def load_files(self, paths: list[Path], spec: dict[str, Any], options: dict[str, Any]):
        return self._part("loading").load_files(paths, spec)

    # -- anomaly scoring ----------------------------------------------------------------------
    def read_scored(self, inputs: list[str], spec: dict[str, Any], labels: dict[str, int] | None):
        return self._part("loading").read_scored(inputs, spec, labels)

    def score_report(self, run, data, index, scores, threshold, method, out: Path) -> dict[str, Any]:
        return self._part("report").report(run, data, index, scores, threshold, method, out)

    # -- output -------------------------------------------------------------------------------
    def export(self, items: "torch.Tensor", out_dir: Path, stems: list[str], spec: dict[str, Any],
               options: dict[str, Any] | None = None) -> list[Path]:
        return self._part("render").export(items, out_dir, stems, spec)

    def preview(self, items: "torch.Tensor", spec: dict[str, Any], columns: int,
                options: dict[str, Any] | None = None) -> "Image.Image":
        return self._part("render").preview(items, spec, columns)

    def corrupt(self, items: "torch.Tensor", generator: "torch.Generator",
                spec: dict[str, Any] | None = None) -> "torch.Tensor":
        """For --arch dae: Gaussian noise of 0.2 standard deviations (items are standardised)."""
        import torch

        return items + 0.2 * torch.randn(items.shape, generator=generator).to(items.device)
