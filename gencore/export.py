"""Decoder-only exports: an ONNX graph that samples without gen, and a safetensors bundle.

The ONNX graph takes standard-normal `noise` (batch, latent) and, for conditional runs, a
`condition` (batch, classes) one-hot or multi-hot; it applies the run's latent prior and the
decoder, and returns the likelihood mean (or a post-processed form). Everything a consumer needs
to turn outputs into content is embedded as metadata, under the key "gencore" as JSON.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gencore import __version__
from gencore.errors import GenError
from gencore.runs import CONFIG, write_complete
from gencore.storage import FORMAT_VERSION, save_tensors, write_bytes, write_folder, write_json

POSTPROCESS = ("none", "argmax", "threshold")
ONNX_HINT = "pip install 'gencore[onnx]' (onnx, onnxscript, onnxruntime)"
PARITY_TOLERANCE = 1e-4


class SamplingGraph(nn.Module):
    """noise (B, d) [+ condition (B, K)] -> decoded items, with the latent prior built in."""

    def __init__(self, decoder: nn.Module, postprocess: str, threshold: float):
        super().__init__()
        self.decoder, self.postprocess, self.threshold = decoder, postprocess, threshold

    def forward(self, noise: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        z = self.decoder.prior_mean + noise @ self.decoder.prior_chol.T  # (B, d)
        mean = self.decoder.mean(self.decoder(z, condition))  # (B, *item_shape)
        if self.postprocess == "argmax":
            return mean.argmax(dim=1)  # (B, *spatial) category indices
        if self.postprocess == "threshold":
            return (mean > self.threshold).to(torch.uint8)
        return mean


def check_postprocess(postprocess: str, likelihood: str) -> None:
    if postprocess not in POSTPROCESS:
        raise GenError(f"unknown post-processing {postprocess!r}", where="--postprocess",
                       hint=f"use one of {', '.join(POSTPROCESS)}")
    if postprocess == "argmax" and likelihood != "categorical":
        raise GenError(f"argmax needs a categorical run; this one is {likelihood}", where="--postprocess",
                       hint="use threshold for Bernoulli runs, or none")
    if postprocess == "threshold" and likelihood != "bernoulli":
        raise GenError(f"threshold needs a Bernoulli run; this one is {likelihood}", where="--postprocess",
                       hint="use argmax for categorical runs, or none")


def metadata(run, postprocess: str, threshold: float) -> dict[str, Any]:
    spec = run.config.model.to_json()
    output = {"none": "likelihood mean (pixel/cell probabilities, Gaussian means, or category "
                      "probabilities on axis 1)",
              "argmax": "category index per position (int64); categories are axis 1 of the mean",
              "threshold": f"1 where the Bernoulli mean exceeds {threshold}, else 0 (uint8)"}[postprocess]
    return {
        "format_version": FORMAT_VERSION, "gencore_version": __version__, "domain": run.domain_name,
        "arch": run.config.arch, "latent_dim": spec["latent_dim"], "item_kind": spec["item_kind"],
        "item_shape": spec["item_shape"], "likelihood": spec["likelihood"],
        "class_names": run.class_names, "condition": {"type": run.config.condition_type, "dim": run.config.cond_dim},
        "inputs": {"noise": "float32 (batch, latent_dim), standard normal; multiply by a temperature",
                   **({"condition": "float32 (batch, classes), one-hot (or multi-hot) over class_names"}
                      if run.conditional else {})},
        "output": {"name": "items", "postprocess": postprocess, "meaning": output},
        "decoding": run.domain.decoding_rules(run.config.data, run=run),
    }


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise GenError("ONNX export needs the onnx and onnxscript packages", where="--format onnx",
                       hint=ONNX_HINT) from None


def _to_onnx(module: nn.Module, example: tuple, names: list[str], output: str, dynamic: dict, opset: int):
    # The exporter talks on stdout, through warnings and through logging; gen keeps stdout for
    # data and stderr for its own lines.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _quiet_logger("torch.onnx"):
        warnings.simplefilter("ignore")
        return torch.onnx.export(module, example, None, input_names=names, output_names=[output],
                                 dynamic_shapes=dynamic, dynamo=True, opset_version=opset).model_proto


def _finish(model, meta: dict[str, Any], out: Path | None, started: float, opset: int, parity_fn) -> tuple[bytes, dict]:
    for key, value in {"gencore": json.dumps(meta), "domain": meta["domain"],
                       "class_names": json.dumps(meta.get("class_names", [])),
                       "latent_dim": str(meta.get("latent_dim", "")),
                       "output_shape": json.dumps(meta.get("item_shape"))}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name, model.producer_version = "gencore", __version__
    data = model.SerializeToString()
    report = {"bytes": len(data), "export_s": time.perf_counter() - started, "opset": opset,
              "parity_max_abs_diff": parity_fn(data)}
    if out is not None:
        write_bytes(out, data)
    return data, report


def export_whole_onnx(run, out: Path | None, opset: int, arch: str) -> tuple[bytes, dict[str, Any]]:
    """A whole fully convolutional image-to-image network (the denoiser arch): noisy (B, C, H, W)
    in [0, 1] and sigma (B,) in [0, 1] units -> denoised (B, C, H, W); batch, height and width
    are dynamic."""
    _require_onnx()
    model = run.model().cpu().float().eval()
    c = model.spec["channels"]
    started = time.perf_counter()
    dims = {"batch": torch.export.Dim("batch"), "height": torch.export.Dim("height", min=8, max=16384),
            "width": torch.export.Dim("width", min=8, max=16384)}
    proto = _to_onnx(model, (torch.rand(1, c, 64, 64), torch.tensor([0.1])), ["noisy", "sigma"], "denoised",
                     {"noisy": {0: dims["batch"], 2: dims["height"], 3: dims["width"]}, "sigma": {0: dims["batch"]}},
                     opset)
    meta = {"format_version": FORMAT_VERSION, "gencore_version": __version__, "domain": run.domain_name,
            "arch": arch, "item_shape": [c, "height", "width"],
            "inputs": {"noisy": f"float32 (batch, {c}, height, width) in [0, 1]",
                       "sigma": "float32 (batch,), the noise standard deviation in [0, 1] units (25/255 for sigma 25)"},
            "output": {"name": "denoised", "meaning": "float32 (batch, channels, height, width); clip to [0, 1]"}}

    def check(data: bytes) -> float | None:
        try:
            import onnxruntime as ort
        except ImportError:
            return None
        x = torch.rand(2, c, 45, 70, generator=torch.Generator().manual_seed(0))
        sigma = torch.tensor([0.05, 0.2])
        got = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(
            None, {"noisy": x.numpy(), "sigma": sigma.numpy()})[0]
        with torch.no_grad():
            return float((torch.from_numpy(got).double() - model(x, sigma).double()).abs().max())

    return _finish(proto, meta, out, started, opset, check)


def export_onnx(run, out: Path | None, opset: int = 18, postprocess: str = "none",
                threshold: float | None = None) -> tuple[bytes, dict[str, Any]]:
    """Build the ONNX model as the run's arch exports it (the sampling decoder, or the whole
    network); write it to `out` (None: return bytes only). Returns (bytes, report)."""
    return run.arch.export_onnx(run, out, opset, postprocess, threshold)


def export_decoder_onnx(run, out: Path | None, opset: int, postprocess: str,
                        threshold: float | None) -> tuple[bytes, dict[str, Any]]:
    _require_onnx()
    likelihood = run.config.model.likelihood
    check_postprocess(postprocess, likelihood)
    if threshold is None:
        threshold = float(run.config.data.get("meta", {}).get("threshold", 0.5))
    d, k = run.latent_dim, run.config.cond_dim
    steering = run.steering
    if steering.names or steering.gmm_weights is not None:
        return _export_steered(run, out, opset, postprocess, threshold)
    graph = SamplingGraph(run.decoder.cpu().float(), postprocess, threshold).eval()
    example = (torch.zeros(2, d),) + ((torch.eye(k)[[0, 1 % k]],) if k else ())
    names = ["noise"] + (["condition"] if k else [])
    batch = torch.export.Dim("batch")
    started = time.perf_counter()
    proto = _to_onnx(graph, example, names, "items", {n: {0: batch} for n in ["noise", "condition"][:len(names)]},
                     opset)
    return _finish(proto, metadata(run, postprocess, threshold), out, started, opset,
                   lambda data: parity(data, graph, d, k))


def _export_steered(run, out: Path | None, opset: int, postprocess: str, threshold: float):
    """The sampling graph with attribute shifts and the mixture prior (gencore.export_steering)."""
    from gencore import export_steering

    graph = export_steering.SteeredSamplingGraph(run, postprocess, threshold).eval()
    d, k = run.latent_dim, run.config.cond_dim
    names = graph.input_names
    batch = torch.export.Dim("batch")
    started = time.perf_counter()
    proto = _to_onnx(graph, graph.example(d, k), names, "items", {"inputs": tuple({0: batch} for _ in names)}, opset)
    meta = {**metadata(run, postprocess, threshold), **export_steering.metadata(graph)}
    return _finish(proto, meta, out, started, opset, lambda data: steered_parity(data, graph, d, k))


def steered_feeds(graph, d: int, k: int, n: int = 16) -> dict[str, torch.Tensor]:
    """A seeded batch for every input of a steered graph: shifts from -2 to 2, half of the
    samples from the mixture."""
    g = torch.Generator().manual_seed(0)
    feeds = {"noise": torch.randn(n, d, generator=g)}
    if k:
        feeds["condition"] = torch.eye(k)[torch.arange(n) % k]
    if graph.names:
        feeds["attributes"] = torch.rand(n, len(graph.names), generator=g) * 4 - 2
    if graph.has_gmm:
        feeds["uniform"] = torch.rand(n, generator=g)
        feeds["mixture"] = (torch.arange(n) % 2).float()
    return feeds


def steered_parity(data: bytes, graph, d: int, k: int) -> float | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    feeds = steered_feeds(graph, d, k)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {n: v.numpy() for n, v in feeds.items()})[0])
    with torch.no_grad():
        want = graph(*[feeds[n] for n in graph.input_names])
    return float((got.double() - want.double()).abs().max())


@contextlib.contextmanager
def _quiet_logger(name: str):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def parity(data: bytes, graph: SamplingGraph, d: int, k: int) -> float | None:
    """Max abs difference between onnxruntime and torch on a seeded batch (None without ORT)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(16, d, generator=g)
    feeds = {"noise": noise.numpy()}
    args = [noise]
    if k:
        cond = torch.eye(k)[torch.arange(16) % k]
        feeds["condition"], args = cond.numpy(), [noise, cond]
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, feeds)[0])
    with torch.no_grad():
        want = graph(*args)
    return float((got.double() - want.double()).abs().max())


def export_bundle(run, out: Path) -> Path:
    """A run folder with what the run's arch needs to be used: for the autoencoder family,
    config.json, decoder.safetensors and the completion marker (`gen sample -r BUNDLE` and
    `load_run(BUNDLE)` work on it)."""
    return write_bundle(run, out, run.arch.bundle_kind, run.arch.bundle_weights(run))


def write_bundle(run, out: Path, bundle: str, weights: dict[str, dict]) -> Path:
    """A run folder holding part of `run`: config.json, `KIND.safetensors` for each of `weights`
    and the completion marker, staged and renamed into place so it is whole or absent."""
    def fill(staging: Path) -> None:
        config = {**run.config.to_json(), "bundle": bundle, "exported_from": str(run.path)}
        for kind, state in weights.items():
            save_tensors(staging / f"{kind}.safetensors", state, kind, run.domain_name)
        write_json(staging / CONFIG, config)
        write_complete(staging, run.domain_name, {"finished": run.config.created, "exported": True})

    return write_folder(out, fill)


def onnx_stdout(data: bytes) -> None:
    import sys

    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
