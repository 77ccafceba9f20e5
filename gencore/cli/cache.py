"""`gen cache ls|rm`: the decoded-data caches under $GENCORE_CACHE/data (gencore/datacache.py)."""
from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from gencore import console
from gencore.cli import app, common

cache_app = typer.Typer(help="List or remove the decoded-data caches (under $GENCORE_CACHE/data). "
                             "e.g. gen cache ls", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@cache_app.command("ls")
@common.handle_errors
def ls(as_json: bool = typer.Option(False, "--json", help="Print a JSON list on stdout instead of a table. "
                                    "e.g. gen cache ls --json")) -> None:
    """List the decoded-data caches: name, items, size, the data folder, when built.

    e.g. gen cache ls
    """
    from gencore.datacache import data_root
    from gencore.datacache_admin import entries

    rows = entries()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        console.info(f"no data caches in {data_root()}")
        return
    table = Table(title=f"data caches in {data_root()}")
    for column in ("name", "items", "size", "data", "built"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["name"], "corrupt" if row["items"] is None else f"{row['items']:,}", _size(row["bytes"]),
                      row["data"] or "?", row["created"] or "?")
    Console(highlight=False, soft_wrap=False).print(table)


@cache_app.command("rm")
@common.handle_errors
def rm(
    names: list[str] = typer.Argument(None, help="Caches to remove, by name (`gen cache ls`); e.g. gen cache rm "
                                                 "images-0123abcd4567-89abcdef0123"),
    all_: bool = typer.Option(False, "--all", help="Remove every data cache. e.g. gen cache rm --all"),
) -> None:
    """Remove decoded-data caches; the next run that needs one decodes its folder again.

    e.g. gen cache rm --all
    """
    from gencore.datacache_admin import remove
    from gencore.errors import GenError

    if not names and not all_:
        raise GenError("name the caches to remove, or pass --all", where="gen cache rm",
                       hint="`gen cache ls` lists them")
    for name in remove([] if all_ else names):
        console.info(f"removed {name}")
