"""`gen denoise IN...`: clean up noisy photos with the shipped denoiser (or a run of yours)."""
from __future__ import annotations

import glob
import os
import sys
from pathlib import Path

import typer

from gencore import console
from gencore.cli import app, common, global_option
from gencore.errors import GenError
from gencore.storage import write_bytes

SUFFIXES = (".png", ".jpg", ".jpeg")


def _inputs(values: list[str]) -> list[Path | None]:
    """Files, folders (their PNG/JPEG files) and globs; None stands for stdin."""
    out: list[Path | None] = []
    for value in values:
        if value == "-":
            out.append(None)
            continue
        path = Path(value)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
            if not found:
                raise GenError("no PNG or JPEG files in the folder", where=value)
            out += found
        elif path.is_file():
            out.append(path)
        elif os.path.lexists(value):  # a symlink loop, a device or a pipe
            from gencore.storage import check_input_file

            check_input_file(value, hint="give PNG or JPEG files")
        else:
            matches = sorted(Path(m) for m in glob.glob(value, recursive=True) if Path(m).is_file())
            if not matches:
                raise GenError("no such file, folder or matching glob", where=value)
            out += matches
    if out.count(None) and len(out) > 1:
        raise GenError("stdin (-) cannot be mixed with other inputs", where="-")
    return out


def _open_model(run: str | None, device: str):
    from gencore.api import load_run
    from gencore.archs.denoiser import SHIPPED_RUN
    from gencore.plugin import provides

    opened = load_run(run if run is not None else SHIPPED_RUN, device=device)
    if not provides(opened.domain, "read_native"):
        raise GenError(f"the {opened.domain_name} domain cannot read files to denoise", where=str(opened.path),
                       hint="pick a run of a domain that reads images, e.g. one trained with --arch denoiser")
    console.info(f"using {'the shipped denoiser (' + SHIPPED_RUN + ')' if run is None else 'run ' + str(opened.path)} "
                 f"({opened.config.arch}) on {opened.device}")
    return opened, opened.model()


def _denoise_one(opened, model, values, sigma, precision: str):
    from gencore.denoising import denoise

    if not opened.arch.has_latent:  # a whole image-to-image network
        return denoise(model, values, sigma, opened.device, precision=precision)
    # an autoencoder (the classic digits tutorial): reconstruct the image
    shape = tuple(opened.config.model.item_shape)
    if tuple(values.shape) != shape:
        raise GenError(f"this run denoises {shape[1]}x{shape[2]} images with {shape[0]} channel(s), "
                       f"not {tuple(values.shape)}", where="-r", hint="use the shipped denoiser for photos")
    if opened.conditional:
        raise GenError("a conditional run needs a class to reconstruct with", where="-r",
                       hint="train with --no-condition for denoising, or use the shipped denoiser")
    return opened.reconstruct(values[None])[0]


@app.command("denoise")
@common.handle_errors
def denoise_command(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(..., help="Images: files, folders or globs; `-` reads stdin. e.g. gen denoise 'shots/*.jpg' --out-dir clean"),
    out: str = typer.Option(None, "--out", "-o", help="Output file for a single input (`-` for stdout). e.g. -o clean.png"),
    out_dir: Path = typer.Option(None, "--out-dir", help="Folder for the outputs of several inputs (default ./denoised). e.g. --out-dir clean"),
    run: str = typer.Option(None, "--run", "-r", help="A denoiser run, or an unconditional autoencoder run of image files; default the shipped denoiser. e.g. -r runs/my-denoiser"),
    sigma: float = typer.Option(None, "--sigma", help="Noise level in 0-255 pixel units; default estimated per image. e.g. --sigma 25"),
    reference: Path = typer.Option(None, "--reference", help="Clean image to report PSNR and SSIM against (one input). e.g. --reference clean.png"),
    precision: str = typer.Option("auto", "--precision", help="auto (bf16 where the CPU or GPU does it natively), fp32 or bf16. e.g. --precision fp32"),
    device: str = typer.Option(None, "--device", help=common.DEVICE_HELP),
) -> None:
    """Remove noise from photos; format, size, mode, alpha, 16-bit depth, ICC and EXIF are kept.

    e.g. gen denoise noisy.png -o clean.png
    """
    if precision not in ("auto", "fp32", "bf16"):
        raise GenError(f"unknown precision {precision!r}", where="--precision", hint="use auto, fp32 or bf16")
    files = _inputs(inputs)
    if sigma is not None and not 0 < sigma <= 255:
        raise GenError(f"must be in (0, 255], got {sigma}", where="--sigma")
    single = len(files) == 1
    if out is not None and not single:
        raise GenError(f"-o names one output, but there are {len(files)} inputs", where="-o",
                       hint="use --out-dir DIR for several inputs")
    if reference is not None and not single:
        raise GenError("--reference needs exactly one input", where="--reference")
    opened, model = _open_model(run, global_option(ctx, "device", device, "auto"))
    level = None if sigma is None else sigma / 255.0
    to_stdout = single and (out == "-" or (out is None and files[0] is None))
    for path in console.track(files, len(files), "denoising"):
        where = "stdin" if path is None else str(path)
        try:
            data = sys.stdin.buffer.read() if path is None else path.read_bytes()
        except OSError as exc:
            raise GenError(f"cannot read ({exc.strerror or exc})", where=where) from None
        values, state = opened.domain.read_native(data, where)
        clean = _denoise_one(opened, model, values, level, precision)
        encoded = opened.domain.encode_native(clean, state)
        if reference is not None:
            _report(opened, reference, values, clean)
        if to_stdout:
            sys.stdout.buffer.write(encoded)  # only now, with the whole result ready
            sys.stdout.buffer.flush()
            continue
        target = Path(out) if single and out else (out_dir or Path("denoised")) / (path.name if path else "stdin.png")
        write_bytes(target, encoded)
        console.info(f"{where} -> {target}")


def _report(opened, reference: Path, noisy, clean) -> None:
    from gencore.denoising import psnr, ssim

    try:
        ref, _ = opened.domain.read_native(reference.read_bytes(), str(reference))
    except OSError as exc:
        raise GenError(f"cannot read ({exc.strerror or exc})", where=str(reference)) from None
    if ref.shape != clean.shape:
        raise GenError(f"reference is {tuple(ref.shape)}, the output {tuple(clean.shape)}", where=str(reference))
    console.info(f"PSNR {psnr(ref, clean):.2f} dB, SSIM {ssim(ref, clean):.4f} "
                 f"(input: PSNR {psnr(ref, noisy):.2f} dB, SSIM {ssim(ref, noisy):.4f})")
