"""`gen sample`, `gen reconstruct` and `gen interpolate`: the run's decoder at work."""
from __future__ import annotations

import os
from pathlib import Path

import typer

from gencore import console
from gencore.cli import app, common, global_option
from gencore.errors import GenError
from gencore.storage import write_png

GRID_MAX_COLUMNS = 16


def _describe_classes(run, names: list[str | None]) -> None:
    if not run.conditional:
        console.info("unconditional run: sampling without a class")
        return
    for name in dict.fromkeys(names):
        vector = run.condition(name)
        hot = [run.class_names[i] for i, v in enumerate(vector.tolist()) if v > 0]
        console.info(f"class {name!r} -> {' + '.join(repr(h) for h in hot)} "
                     f"(index {', '.join(str(run.class_names.index(h)) for h in hot)})")


def _item_classes(run, files: list[Path], implied: list[str | None], classes: list[str] | None) -> list[str | None]:
    """The class of each input file: from --class (one for all, or one per file), else its folder."""
    if not run.conditional:
        if classes:
            run.condition(classes[0])
        return [None] * len(files)
    if classes:
        if len(classes) not in (1, len(files)):
            raise GenError(f"got {len(classes)} --class values for {len(files)} files", where="--class",
                           hint="give one class for all files, or one per file")
        return list(classes) * len(files) if len(classes) == 1 else list(classes)
    out = []
    for path, folder in zip(files, implied):
        if folder is None or folder not in run.class_names:
            raise GenError("this conditional run needs the file's class, and its folder name is no class",
                           where=str(path), hint="pass --class, or put the file in a folder named after its class")
        out.append(folder)
    return out


def _read_inputs(run, files: list[Path], args: list[str], command: str):
    from gencore.storage import check_input_file

    for path in files:
        check_input_file(path, hint=f"give files of the run's domain ({run.domain_name})")
    options = common.parse_domain_options(run.domain, command, args)
    return run.domain.load_files(files, run.config.data, options)


@app.command(context_settings=common.EXTRA_ARGS, cls=common.DomainHelpCommand)
@common.handle_errors
def sample(
    ctx: typer.Context,
    classes: list[str] = typer.Option(None, "--class", "-c", help="Class to sample: a name, else an index; `a+b` for multi-label; repeat for several. e.g. --class 7"),
    n: int = typer.Option(16, "--n", "-n", help="Samples per class (or in all, without --class). e.g. --n 64"),
    temperature: float = typer.Option(1.0, "--temperature", "-t", help="Scale of the latent noise; below 1 is safer, above 1 wilder. e.g. --temperature 0.8"),
    run: str = typer.Option(None, "--run", "-r", help=common.RUN_HELP),
    seed: int = typer.Option(None, "--seed", help=common.SEED_HELP),
    device: str = typer.Option(None, "--device", help=common.DEVICE_HELP),
    out: Path = typer.Option(Path("samples"), "--out", "-o", help="Folder for the native files (or samples.npy) and grid.png. e.g. -o sevens"),
    format: str = typer.Option("native", "--format", help="native: one file per sample in the domain's format; npy: one samples.npy (N, *item_shape), uint8 for pixels, plus conditions.npy, for bulk jobs. e.g. --n 1000000 --format npy"),
    precision: str = typer.Option("auto", "--precision", help="Decoder arithmetic: auto (bf16 on GPUs, and on CPUs with native bf16 for items of 16x16 or more), fp32 (exact) or bf16. e.g. --precision fp32"),
    attrs: list[str] = typer.Option(None, "--attr", help="Steer an attribute: NAME=SHIFT in standard deviations along its direction; repeatable; `gen attributes` lists them. e.g. --attr enemies=+2 --attr gaps=-1"),
    prior: str = typer.Option(None, "--prior", help="Latent prior: normal (the arch's own) or gmm (a mixture per class fitted on the training codes by `gen attributes`); default: the domain's (midi: gmm where the run has a mixture), else normal. e.g. --prior normal"),
) -> None:
    """Sample new items with the run's decoder alone (decoder.safetensors).

    e.g. gen sample --class 7 --n 16
    """
    common.positive(n, "--n")
    if format not in ("native", "npy"):
        raise GenError(f"unknown format {format!r}", where="--format", hint="use native or npy")
    if precision not in ("auto", "fp32", "bf16"):
        raise GenError(f"unknown precision {precision!r}", where="--precision", hint="use auto, fp32 or bf16")
    opened, options = common.open_run(ctx, run, global_option(ctx, "device", device, "auto"), classes)
    seed = global_option(ctx, "seed", seed, 0)
    _steer(opened, attrs, prior)
    if format == "npy":
        from gencore.sampling import write_npy

        opened.class_plan(classes or None, 1)  # a bad --class fails before anything is written
        with common.staged_output(out) as staging:
            names, preview = write_npy(opened, n, classes or None, seed, temperature, options, staging, precision)
            grid = opened.domain.preview(preview, opened.config.data, 8, options=options)
            write_png(staging / "grid.png", common.legible(grid))
        _describe_classes(opened, names)
        console.info(f"wrote {len(names)} samples to {out / 'samples.npy'}, and grid.png of the first {len(preview)}")
        return
    items, names, _ = opened.sample_with_labels(n, classes or None, seed, temperature, options=options,
                                                precision=precision)
    _describe_classes(opened, names)
    counters: dict[str | None, int] = {}
    stems = []
    for name in names:
        index = counters[name] = counters.get(name, -1) + 1
        stems.append(f"{common.safe_stem(name) if name is not None else 'sample'}-{index:04d}")
    columns = min(n, GRID_MAX_COLUMNS) if classes else min(len(names), 8)
    with common.staged_output(out) as staging:
        written = opened.domain.export(items, staging, stems, opened.config.data, options=options)
        grid = opened.domain.preview(items, opened.config.data, columns, options=options)
        write_png(staging / "grid.png", common.legible(grid))
    console.info(f"wrote {len(written)} files and grid.png to {out}")


def _steer(run, attrs: list[str] | None, prior: str | None) -> None:
    """`--attr` and `--prior`: checked before anything is sampled, then set on the run's sampler.
    Without --prior, the domain's default prior where the run carries what it needs."""
    from gencore.steering import SamplerSettings, parse_shifts

    if prior is None:
        prior = run.default_prior
    if prior not in ("normal", "gmm"):
        raise GenError(f"unknown prior {prior!r}", where="--prior", hint="use normal or gmm")
    if not attrs and prior == "normal":
        return
    steering = run.steering
    if prior == "gmm" and steering.gmm_weights is None:
        raise GenError("this run has no mixture prior", where="--prior",
                       hint="fit one with `gen attributes -r RUN` (or -o COPY for a pretrained run)")
    run.sampler = SamplerSettings(parse_shifts(attrs, steering), prior)
    for name, shift in run.sampler.shifts.items():
        console.info(f"attribute {name!r} shifted by {shift:+g} standard deviations")


@app.command(context_settings=common.EXTRA_ARGS, cls=common.DomainHelpCommand)
@common.handle_errors
def reconstruct(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="Input files of the run's domain. e.g. gen reconstruct digits/7/a.png"),
    classes: list[str] = typer.Option(None, "--class", "-c", help="Class of the inputs (one for all, or one per file); default: each file's folder name. e.g. --class 7"),
    run: str = typer.Option(None, "--run", "-r", help=common.RUN_HELP),
    device: str = typer.Option(None, "--device", help=common.DEVICE_HELP),
    out: Path = typer.Option(Path("reconstructions"), "--out", "-o", help="Folder for the reconstructions and comparison.png. e.g. -o recon"),
) -> None:
    """Encode and decode files; writes each reconstruction and a side-by-side comparison.

    e.g. gen reconstruct photos/cat/1.png --class cat
    """
    import torch

    opened, _ = common.open_run(ctx, run, global_option(ctx, "device", device, "auto"), classes)
    items, implied = _read_inputs(opened, files, ctx.args, "reconstruct")
    names = _item_classes(opened, files, implied, classes)
    cond = torch.stack([opened.condition(c) for c in names]) if opened.conditional else None
    recon = opened.reconstruct(items, cond)
    for path, a, b in zip(files, items, recon):
        mse = float(((a - b) ** 2).mean())
        console.info(f"{path}: mean squared error {mse:.5f}")
    stems = [f"{common.safe_stem(p.stem)}-recon" for p in files]
    with common.staged_output(out) as staging:
        opened.domain.export(recon, staging, stems, opened.config.data)
        write_png(staging / "comparison.png",
                  common.legible(opened.domain.preview(torch.cat([items, recon]), opened.config.data, len(files))))
    console.info(f"wrote {len(files)} reconstructions and comparison.png (inputs above, reconstructions below) to {out}")


@app.command(context_settings=common.EXTRA_ARGS, cls=common.DomainHelpCommand)
@common.handle_errors
def interpolate(
    ctx: typer.Context,
    start: str = typer.Option(..., "--from", help="Start: an input file or a class name. e.g. --from 3"),
    end: str = typer.Option(..., "--to", help="End: an input file or a class name. e.g. --to digits/8/b.png"),
    steps: int = typer.Option(8, "--steps", help="Points on the path, ends included. e.g. --steps 12"),
    classes: list[str] = typer.Option(None, "--class", "-c", help="Class of file endpoints, when their folder does not name it. e.g. --class 7"),
    temperature: float = typer.Option(1.0, "--temperature", "-t", help="Latent noise scale for class endpoints. e.g. -t 0.7"),
    run: str = typer.Option(None, "--run", "-r", help=common.RUN_HELP),
    seed: int = typer.Option(None, "--seed", help=common.SEED_HELP),
    device: str = typer.Option(None, "--device", help=common.DEVICE_HELP),
    out: Path = typer.Option(Path("interpolations"), "--out", "-o", help="Folder for the path's native files and strip.png. e.g. -o morph"),
) -> None:
    """Walk the latent space between two files or classes (slerp for VAEs, lines otherwise).

    Class endpoints share one random latent, so the path morphs the class and keeps the style.
    e.g. gen interpolate --from 3 --to 8 --steps 10
    """
    import torch

    common.bounded(steps, "--steps", 2, common.MAX_PATH_STEPS)
    common.bounded(temperature, "--temperature", 1e-6, 1e6)
    opened = common.use_run(run, global_option(ctx, "device", device, "auto"))
    generator = torch.Generator().manual_seed(global_option(ctx, "seed", seed, 0))
    shared_z = opened.decoder.sample_latent(1, generator, temperature)[0].cpu()
    endpoints = []
    for value in (start, end):
        path = Path(value)
        # A file, or something in its place (a folder, a symlink loop), unless it is a class name.
        if os.path.lexists(value) and not (opened.conditional and value in opened.class_names):
            items, implied = _read_inputs(opened, [path], ctx.args, "interpolate")
            name = _item_classes(opened, [path], implied, classes[:1] if classes else None)[0]
            cond = opened.condition(name) if opened.conditional else None
            mu, _ = opened.encode(items, None if cond is None else cond[None])
            endpoints.append((mu[0], cond))
        elif opened.conditional:
            endpoints.append((shared_z, opened.condition(value)))
        else:
            raise GenError("no such file (and this unconditional run has no classes)", where=value,
                           hint="give two input files")
    (z_a, c_a), (z_b, c_b) = endpoints
    path_items = opened.interpolate(z_a, z_b, c_a, c_b, steps)
    stems = [f"step-{i:03d}" for i in range(steps)]
    with common.staged_output(out) as staging:
        opened.domain.export(path_items, staging, stems, opened.config.data)
        strip = opened.domain.preview(path_items, opened.config.data, steps)
        write_png(staging / "strip.png", common.legible(strip))
    console.info(f"wrote {steps} steps and strip.png to {out}")
