"""Encoder-only exports, for scoring anomalies without the decoder: `gen export --part encoder`.

- safetensors: a run folder holding config.json, encoder.safetensors and the completion marker;
  `gen score -r BUNDLE --method mahalanobis|kl` works on it, and so does `load_run(BUNDLE).encode`.
- onnx: `items` (batch, *item_shape) prepared as the run prepares data (the `decoding` metadata holds
  the normalisation), plus `condition` for conditional runs -> `mean` (batch, latent), the posterior
  mean; `mahalanobis` (batch,), its squared distance from the training codes; and, for VAEs, `kl`
  (batch,), the KL divergence of the posterior from the N(0, I) prior.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gencore import __version__
from gencore.errors import GenError
from gencore.storage import FORMAT_VERSION


class ScoringGraph(nn.Module):
    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, items: torch.Tensor, condition: torch.Tensor | None = None):
        mu, logvar = self.encoder(items, condition)
        distance = self.encoder.mahalanobis(mu)
        if logvar is None:
            return mu, distance
        return mu, distance, 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)


def _refuse_without_encoder(run) -> None:
    if not run.arch.has_latent:
        raise GenError(f"a {run.config.arch} run has no encoder of its own", where="--part",
                       hint=f"export the whole {run.config.arch} with --part decoder (the default)")


def export_encoder_bundle(run, out: Path) -> Path:
    from gencore.export import write_bundle

    _refuse_without_encoder(run)
    return write_bundle(run, out, "encoder-only", {"encoder": run.encoder.state_dict()})


def export_encoder_onnx(run, out: Path | None, opset: int = 18) -> tuple[bytes, dict[str, Any]]:
    from gencore.export import _finish, _quiet_logger, _require_onnx

    _refuse_without_encoder(run)
    _require_onnx()
    graph = ScoringGraph(run.encoder.cpu().float()).eval()
    spec = run.config.model.to_json()
    shape, k = list(spec["item_shape"]), spec["cond_dim"]
    example = (torch.zeros(2, *shape),) + ((torch.eye(k)[[0, 1 % k]],) if k else ())
    names = ["items"] + (["condition"] if k else [])
    outputs = ["mean", "mahalanobis"] + (["kl"] if run.stochastic else [])
    batch = torch.export.Dim("batch")
    started = time.perf_counter()
    import contextlib
    import io

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _quiet_logger("torch.onnx"):
        warnings.simplefilter("ignore")
        proto = torch.onnx.export(graph, example, None, input_names=names, output_names=outputs,
                                  dynamic_shapes={n: {0: batch} for n in names}, dynamo=True,
                                  opset_version=opset).model_proto
    meta = {
        "format_version": FORMAT_VERSION, "gencore_version": __version__, "domain": run.domain_name,
        "arch": run.config.arch, "part": "encoder", "latent_dim": spec["latent_dim"],
        "item_kind": spec["item_kind"], "item_shape": spec["item_shape"], "class_names": run.class_names,
        "inputs": {"items": f"float32 (batch, {', '.join(map(str, shape))}), prepared as `decoding` describes",
                   **({"condition": "float32 (batch, classes), one-hot over class_names"} if k else {})},
        "outputs": {"mean": "posterior mean (batch, latent_dim)",
                    "mahalanobis": "squared Mahalanobis distance of the mean from the training codes (batch,)",
                    **({"kl": "KL(posterior || N(0, I)) in nats (batch,)"} if run.stochastic else {})},
        "decoding": run.domain.decoding_rules(run.config.data),
    }

    def check(data: bytes) -> float | None:
        try:
            import onnxruntime as ort
        except ImportError:
            return None
        x = torch.randn(5, *shape, generator=torch.Generator().manual_seed(0))
        feeds, args = {"items": x.numpy()}, [x]
        if k:
            cond = torch.eye(k)[torch.arange(5) % k]
            feeds["condition"], args = cond.numpy(), [x, cond]
        got = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)
        with torch.no_grad():
            want = graph(*args)
        return max(float((torch.from_numpy(g).double() - w.double()).abs().max()) for g, w in zip(got, want))

    return _finish(proto, meta, out, started, opset, check)
