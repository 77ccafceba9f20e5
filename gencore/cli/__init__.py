"""The `gen` command line: a thin layer over the Python API (gencore.api).

The root callback holds the global flags; each command group lives in its own module. Nothing
here imports torch until a command that needs it runs.
"""
from __future__ import annotations

import sys

import typer

from gencore import __version__, console
from gencore import threads as gencore_threads
from gencore.cli import common

app = typer.Typer(
    name="gen",
    help="Train convolutional (conditional) autoencoders and VAEs on images, levels, music and more; "
         "sample new content with the decoder alone.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"gen {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    device: str = typer.Option(None, "--device", help=common.DEVICE_HELP),
    seed: int = typer.Option(None, "--seed", help="Default seed for every command. e.g. gen --seed 3 sample"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks of internal errors. e.g. gen -v train images"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors on stderr. e.g. gen -q sample"),
    threads: int = typer.Option(None, "--threads", help="CPU threads for torch (default: $OMP_NUM_THREADS, else the "
                                "cores the load average leaves idle). e.g. gen --threads 1 train images"),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit. e.g. gen --version"),
) -> None:
    console.settings.verbose = verbose
    console.settings.quiet = quiet
    with common.errors_to_exit():
        ctx.obj = {"device": device, "seed": seed, "threads": gencore_threads.apply(threads)}


MAX_SEED = 2**32 - 1  # what every generator here (torch, numpy, Python) takes as a seed


def global_option(ctx: typer.Context, name: str, value, default):
    """A command's own flag wins over the root one, which wins over the default."""
    if value is None:
        root_value = (ctx.find_root().obj or {}).get(name)
        value = default if root_value is None else root_value
    if name == "seed" and not 0 <= value <= MAX_SEED:
        from gencore.errors import GenError

        raise GenError(f"must be from 0 to {MAX_SEED}, got {value}", where="--seed")
    return value


# The command modules register on `app` when imported; train first, so it leads `gen --help`.
from gencore.cli import train  # noqa: E402,F401
from gencore.cli import analyze, denoise, export, generate, inspect, studio  # noqa: E402,F401
from gencore.cli import attributes  # noqa: E402,F401
from gencore.cli import cache  # noqa: E402,F401


def main(argv: list[str] | None = None) -> None:
    """Console entry point: usage errors become one line and exit code 2."""
    args = sys.argv[1:] if argv is None else argv
    command = typer.main.get_command(app)
    try:
        code = command.main(args, prog_name="gen", standalone_mode=False)
    except KeyboardInterrupt:
        common.fail("interrupted", 130)
        sys.exit(130)
    except Exception as exc:  # click's usage errors carry exit_code and format_message
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            ctx = getattr(exc, "ctx", None)
            where = f" (hint: see `{ctx.command_path} --help`)" if ctx is not None else ""
            common.fail(f"error: {' '.join(exc.format_message().split())}{where}", exc.exit_code)
            sys.exit(exc.exit_code)
        if type(exc).__name__ == "Abort":
            common.fail("aborted", 1)
            sys.exit(1)
        raise
    sys.exit(code if isinstance(code, int) else 0)
