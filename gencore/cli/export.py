"""`gen export`: the decoder alone (to sample) or the encoder alone (to score), as ONNX or as a
safetensors bundle."""
from __future__ import annotations

from pathlib import Path

import typer

from gencore import console
from gencore.cli import app, common
from gencore.errors import GenError


@app.command("export")
@common.handle_errors
def export_command(
    ctx: typer.Context,
    fmt: str = typer.Option("onnx", "--format", help="onnx (a standalone sampler) or safetensors (a decoder-only run folder). e.g. --format safetensors"),
    run: str = typer.Option(None, "--run", "-r", help=common.RUN_HELP),
    out: str = typer.Option(None, "--out", "-o", help="File (onnx; `-` for stdout) or folder (safetensors); default RUN-NAME-decoder.onnx or RUN-NAME-decoder/. e.g. -o digits.onnx"),
    opset: int = typer.Option(18, "--opset", help="ONNX opset version. e.g. --opset 17"),
    postprocess: str = typer.Option("none", "--postprocess", help="Bake a decoding step into the graph: none, argmax (categorical runs), threshold (Bernoulli runs). e.g. --postprocess argmax"),
    threshold: float = typer.Option(None, "--threshold", help="Threshold for --postprocess threshold; default the run's calibrated one, else 0.5. e.g. --threshold 0.3"),
    part: str = typer.Option("decoder", "--part", help="decoder (sample without gen) or encoder (score anomalies: posterior mean, Mahalanobis distance, KL). e.g. --part encoder"),
) -> None:
    """Export the run's decoder (or encoder) to run without gen.

    e.g. gen export --format onnx -o digits.onnx
    """
    if fmt not in ("onnx", "safetensors"):
        raise GenError(f"unknown format {fmt!r}", where="--format", hint="use onnx or safetensors")
    if part not in ("decoder", "encoder"):
        raise GenError(f"unknown part {part!r}", where="--part", hint="use decoder or encoder")
    common.positive(opset, "--opset", 7)
    opened = common.use_run(run, "cpu")
    name = opened.path.resolve().name
    if part == "encoder":
        _export_encoder(opened, fmt, out, name, opset, postprocess)
        return
    if fmt == "safetensors":
        from gencore.export import export_bundle

        arch = opened.arch
        target = export_bundle(opened, Path(out or f"{name}-{'decoder' if arch.has_latent else 'model'}"))
        console.info(f"wrote a {arch.bundle_kind} bundle to {target} (use it with: {arch.bundle_use(target)})")
        return
    from gencore.export import export_onnx, onnx_stdout

    to_stdout = out == "-"
    target = None if to_stdout else Path(out or f"{name}-decoder.onnx")
    data, report = export_onnx(opened, target, opset=opset, postprocess=postprocess, threshold=threshold)
    if to_stdout:
        onnx_stdout(data)
    _report_onnx(target, report, opset, "")


def _export_encoder(opened, fmt: str, out: str | None, name: str, opset: int, postprocess: str) -> None:
    from gencore import export_encoder

    if postprocess != "none":
        raise GenError("an encoder export has no post-processing", where="--postprocess")
    if fmt == "safetensors":
        target = export_encoder.export_encoder_bundle(opened, Path(out or f"{name}-encoder"))
        console.info(f"wrote an encoder-only bundle to {target} (use it with: gen score -r {target} "
                     "--method mahalanobis INPUTS)")
        return
    from gencore.export import onnx_stdout

    to_stdout = out == "-"
    target = None if to_stdout else Path(out or f"{name}-encoder.onnx")
    data, report = export_encoder.export_encoder_onnx(opened, target, opset=opset)
    if to_stdout:
        onnx_stdout(data)
    _report_onnx(target, report, opset, "the encoder, ")


def _report_onnx(target: Path | None, report: dict, opset: int, what: str) -> None:
    parity = report["parity_max_abs_diff"]
    check = ("onnxruntime not installed, parity unchecked" if parity is None
             else f"onnxruntime matches torch to {parity:.1e}")
    console.info(f"wrote {target or 'stdout'}: {what}{report['bytes'] / 1e6:.2f} MB, opset {opset}, {check}")
    if parity is not None and parity > 1e-4:
        console.warn(f"the ONNX outputs differ from torch by {parity:.2e} (more than 1e-4)")
