"""`gen cache ls|rm` behind the command line: the decoded-data caches under $GENCORE_CACHE/data."""
from __future__ import annotations

import shutil
from typing import Any

from gencore.datacache import _locked, data_root, read_manifest
from gencore.errors import GenError


def entries() -> list[dict[str, Any]]:
    """One row per cache under the root: name, folder, items, bytes, created, root, intact or not."""
    rows = []
    root = data_root()
    if not root.is_dir():
        return rows
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        manifest = read_manifest(folder)
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        rows.append({"name": folder.name, "folder": str(folder), "bytes": size,
                     "items": manifest["count"] if manifest else None,
                     "data": manifest["root"] if manifest else None,
                     "created": manifest["created"] if manifest else None})
    return rows


def remove(names: list[str]) -> list[str]:
    """Delete the named caches (all of them for an empty list); returns the names removed."""
    rows = {row["name"]: row for row in entries()}
    if names:
        unknown = [n for n in names if n not in rows]
        if unknown:
            raise GenError(f"no data cache named {unknown[0]!r}", where="gen cache rm",
                           hint="`gen cache ls` lists the caches")
    removed = []
    for name in names or list(rows):
        with _locked(name):
            shutil.rmtree(data_root() / name, ignore_errors=True)
        (data_root() / f".{name}.lock").unlink(missing_ok=True)
        removed.append(name)
    return removed
