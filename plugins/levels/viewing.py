"""What a viewer (`gen studio`) draws over a level: the checker's playthrough, for games whose
levels run left to right under jump physics: the standing cells from the start to the furthest
one reached, and whether that is the goal."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .playability import Physics, check
from .render import grids_of

if TYPE_CHECKING:
    import torch


def annotate(items: "torch.Tensor", spec: dict[str, Any], options: dict[str, Any] | None) -> list[dict[str, Any]]:
    meta = spec["meta"]
    physics = Physics.from_meta(meta) if meta.get("playable") else None
    if physics is None:
        return [{} for _ in range(items.shape[0])]
    out = []
    for grid in grids_of(items, spec):
        result = check(grid, physics, trace=True)
        out.append({"play": {"finished": result.passed, "furthest": result.furthest, "length": result.length,
                             "fraction": round(result.fraction, 4), "axis": "columns",
                             "rows": int(grid.shape[0]), "cols": int(grid.shape[1]),
                             "path": [[int(r), int(c)] for r, c in result.path or []]}})
    return out
