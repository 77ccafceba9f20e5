"""What every command shares: one-line errors and exit codes, domain-declared options, staged
output folders, and `-r/--run` resolution. No torch at import time."""
from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import typer

from gencore import console  # noqa: F401  (re-exported for the command modules)
from gencore.errors import GenError
from gencore.plugin import Domain, DomainOption
from gencore.storage import _OS_HINTS

RUN_HELP = ("Run folder; `latest` (the default: newest completed run under ./runs); `latest:DOMAIN`; or a shipped "
            "run, `pretrained:NAME` (see `gen runs`). e.g. -r pretrained:digits")
SEED_HELP = "Random seed; the same seed gives the same result. e.g. --seed 7"
DEVICE_HELP = "Where to compute: auto (CUDA, then MPS, then CPU), cpu, cuda or mps. e.g. --device cpu"


def fail(line: str, code: int) -> None:
    console.stderr().print(f"gen: {line}", markup=False, style="red" if code else None)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    console.warn(str(message))


@contextlib.contextmanager
def errors_to_exit() -> Iterator[None]:
    """A GenError becomes one line and exit code 2 (for code outside a command, e.g. global flags)."""
    try:
        yield
    except GenError as exc:
        fail(f"error: {exc.line()}", 2)
        raise typer.Exit(2) from None


def handle_errors(fn: Callable) -> Callable:
    """Bad input -> one line, exit 2; a bug -> one line, exit 1 (--verbose adds the traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        previous = warnings.showwarning
        warnings.showwarning = _show_warning
        try:
            return fn(*args, **kwargs)
        except GenError as exc:
            if exc.param is not None:  # a library error names a parameter; show its flag
                exc.where = flag_for(exc.param)
            fail(f"error: {exc.line()}", 2)
            raise typer.Exit(2) from None
        except OSError as exc:
            if exc.errno in _OS_HINTS:
                problem, hint = _OS_HINTS[exc.errno]
                where = exc.filename or "output"
                fail(f"error: {where}: {problem} (hint: {hint})", 2)
                raise typer.Exit(2) from None
            _internal(exc)
        except KeyboardInterrupt:
            fail("interrupted", 130)
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            _internal(exc)
        finally:
            warnings.showwarning = previous

    return wrapper


# Library parameters whose flag is not "--" + the name with dashes.
PARAM_FLAGS = {"latent_dim": "--latent", "drop_classes": "--drop-class", "condition": "--no-condition",
               "cls": "--class", "compile": "--compile"}


def flag_for(param: str) -> str:
    return PARAM_FLAGS.get(param, "--" + param.replace("_", "-"))


def _internal(exc: BaseException) -> None:
    if console.settings.verbose:
        traceback.print_exception(exc, file=sys.stderr)
    message = " ".join(str(exc).split())[:300]
    fail(f"internal error: {type(exc).__name__}: {message} (run with --verbose for the traceback)", 1)
    raise typer.Exit(1) from None


# -- domain-declared options -------------------------------------------------------------------
def _convert(option: DomainOption, raw: str) -> Any:
    if option.type is bool:
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise GenError(f"expects true or false, got {raw!r}", where=option.flag)
    try:
        value = option.type(raw)
    except (TypeError, ValueError):
        raise GenError(f"expects {option.type.__name__}, got {raw!r}", where=option.flag,
                       hint=option.help) from None
    if option.choices and value not in option.choices:
        raise GenError(f"{raw!r} is not one of {', '.join(option.choices)}", where=option.flag)
    return value


def parse_domain_options(domain: Domain, command: str, args: list[str],
                         command_flags: list[str] = ()) -> dict[str, Any]:
    """Parse the extra arguments of `command` against the options the domain declared;
    `command_flags` (the command's own) only serve "did you mean"."""
    declared = [o for o in domain.options if command in o.commands]
    by_flag = {o.flag: o for o in declared}
    values = {o.name: o.default for o in declared}
    known = ", ".join(by_flag) or "none"
    i = 0
    while i < len(args):
        arg = args[i]
        name, has_value, raw = arg.partition("=")
        option = by_flag.get(name)
        negated = option is None and name.startswith("--no-") and by_flag.get("--" + name[5:])
        if negated and negated.type is bool and not has_value:
            values[negated.name] = False
        elif option is None:
            what = f"no such option {name}" if arg.startswith("-") else f"unexpected argument {arg!r}"
            guess = did_you_mean(name, [*by_flag, *command_flags]) if arg.startswith("-") else ""
            raise GenError(f"{what} for `gen {command}` with the {domain.name} domain", where=name,
                           hint=f"{guess}{domain.name} options for {command}: {known}; see `gen {command} --help`")
        elif option.type is bool and not has_value:
            values[option.name] = True
        else:
            if not has_value:
                i += 1
                if i >= len(args):
                    raise GenError("needs a value", where=name, hint=option.help)
                raw = args[i]
            values[option.name] = _convert(option, raw)
        i += 1
    return values


def did_you_mean(word: str, choices: list[str]) -> str:
    """`did you mean 'x'? ` for the closest choice, or nothing."""
    import difflib

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def command_flags(ctx) -> list[str]:
    """The long flags a command declares itself (for "did you mean")."""
    return [o for p in ctx.command.params for o in getattr(p, "opts", []) if o.startswith("--")]


def domain_options_epilog(command: str) -> str:
    """Help text listing each installed domain's options for `command` (loads plugins, not torch)."""
    from gencore.registry import all_plugins

    lines = []
    for info in all_plugins():
        if info.domain is None:
            continue
        opts = [o for o in info.domain.options if command in o.commands]
        if not opts:
            continue
        lines.append(f"Options of the {info.name} domain:")
        for o in opts:
            metavar = "" if o.type is bool else " " + ("|".join(o.choices) if o.choices else o.type.__name__.upper())
            default = "" if o.default in (None, False) else f" (default: {o.default})"  # brackets would read as Rich markup
            lines.append(f"  {o.flag}{metavar}  {o.help}{default}")
    return "\n".join(lines)


class DomainHelpCommand(typer.core.TyperCommand):
    """A command whose --help also lists the domains' own options, computed only when shown."""

    @property
    def epilog(self):
        return domain_options_epilog(self.name) if self.name else None

    @epilog.setter
    def epilog(self, value):
        pass

    def format_epilog(self, ctx, formatter) -> None:
        text = self.epilog
        if text:
            formatter.write("\n" + text + "\n")


EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}


# -- output ------------------------------------------------------------------------------------
_SAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


def safe_stem(text: str) -> str:
    return _SAFE.sub("_", text).strip("._") or "item"


@contextlib.contextmanager
def staged_output(folder: Path) -> Iterator[Path]:
    """Write into a hidden staging folder; only on success move the files into `folder`.
    A failed command leaves no partial output."""
    existed = folder.exists()
    if existed and not folder.is_dir():
        raise GenError("exists and is not a folder", where=str(folder), hint="pass a folder to -o")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".gen-partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
    except OSError as exc:
        from gencore.storage import os_error
        raise os_error(exc, folder) from exc
    try:
        yield staging
        for item in sorted(staging.iterdir()):
            os.replace(item, folder / item.name)
        staging.rmdir()
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if not existed:
            shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, GenError) and exc.where and str(staging) in exc.where:
            exc.where = exc.where.replace(str(staging), str(folder))  # name the output, not the staging folder
        raise


MIN_PREVIEW_WIDTH = 256  # pixels: small items (8x8 digits, short strips) stay legible


def legible(image):
    """A preview PIL image at least MIN_PREVIEW_WIDTH wide: whole-factor nearest-neighbour
    upscaling, so every pixel stays a crisp block."""
    if image.width >= MIN_PREVIEW_WIDTH or image.width == 0:
        return image
    from PIL import Image

    factor = -(-MIN_PREVIEW_WIDTH // image.width)
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


def positive(value: float | int | None, flag: str, minimum: float = 1) -> None:
    if value is not None and not value >= minimum:
        raise GenError(f"must be at least {minimum}, got {value}", where=flag)


MAX_PATH_STEPS = 1000  # points on an interpolation or traversal: every one becomes a file


def bounded(value: float | int, flag: str, low: float, high: float) -> None:
    """`low <= value <= high`, or one line naming the option (NaN and infinities included)."""
    if not low <= value <= high:
        raise GenError(f"must be from {low:g} to {high:g}, got {value}", where=flag)


def use_run(run: str | None, device: str | None = None):
    """Open the `-r` run and say which one was used."""
    from gencore.api import load_run

    opened = load_run(run, device=device)
    shipped = f"{run}, shipped in " if run and run.startswith("pretrained:") else ""
    console.info(f"using run {shipped}{opened.path} ({opened.domain_name}, {opened.config.arch})")
    return opened


def open_run(ctx, run: str | None, device: str | None, classes: list[str] | None):
    """Open the `-r` run and check that it takes the command's classes and domain options:
    (run, parsed domain options). When an implicit `latest` cannot, the error names the newest
    run of a domain that can, as `-r latest:DOMAIN`."""
    command, args = ctx.command.name, ctx.args
    opened = use_run(run, device)
    try:
        return opened, _honour(opened, command, classes, args, command_flags(ctx))
    except GenError as exc:
        if run in (None, "latest"):
            other = _domain_that_takes(opened.domain_name, command, classes, args)
            if other:
                exc.hint = (f"the latest run is a {opened.domain_name} run; the newest {other} run takes "
                            f"these arguments: -r latest:{other}")
        raise


def _honour(opened, command: str, classes: list[str] | None, args: list[str], flags: list[str] = ()) -> dict[str, Any]:
    options = parse_domain_options(opened.domain, command, args, flags)
    if classes:
        opened.class_plan(classes, 1)
    return options


def _domain_that_takes(current: str, command: str, classes: list[str] | None, args: list[str]) -> str | None:
    """The domain of the newest completed run under ./runs, other than `current`, that takes
    these classes and options."""
    from gencore.api import load_run
    from gencore.runs import list_runs

    tried = {current}
    for summary in reversed(list_runs()):
        domain = (summary.config or {}).get("domain")
        if not summary.complete or domain in tried:
            continue
        tried.add(domain)
        try:
            _honour(load_run(summary.path, device="cpu"), command, classes, args)
        except GenError:
            continue
        return domain
    return None
