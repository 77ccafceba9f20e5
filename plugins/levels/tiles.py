"""Tile vocabularies: VGLC legends, the project's game profiles, and jump physics.

Pure Python (json only): importing this never imports torch or numpy.

- A *legend* is VGLC's JSON: ``{"tiles": {"X": ["solid", "ground"], ...}}``, one character per tile.
- A *profile* (assets/levels/games.json) is what the project knows about a family of games: its
  element bits, sprites, structure rules and, for side-scrollers, jump physics.
- *Physics* is VGLC's Paths/ pair (``*_tile_specs.json`` with solid/passable lists and
  ``*_estimated_jumps.json`` with jump arcs), or the project's own ``smb_physics.json``.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from gencore.errors import GenError

MAX_JSON_BYTES = 4_000_000


@lru_cache(maxsize=1)
def profiles() -> dict[str, dict[str, Any]]:
    from gencore.assets import asset_path

    return json.loads(asset_path("levels", "games.json").read_text(encoding="utf-8"))["profiles"]


def _read_json(path: Path, what: str, hint: str) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise GenError(f"cannot read the {what}: {exc.strerror or exc}", where=str(path), hint=hint) from exc
    if len(raw) > MAX_JSON_BYTES:
        raise GenError(f"the {what} is {len(raw):,} bytes, too big for a {what}", where=str(path), hint=hint)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        detail = getattr(exc, "msg", None) or "not UTF-8 text"
        line = f" at line {exc.lineno}" if hasattr(exc, "lineno") else ""
        raise GenError(f"malformed {what}: not valid JSON ({detail}{line})", where=str(path), hint=hint) from None
    except RecursionError:
        raise GenError(f"malformed {what}: nested too deeply", where=str(path), hint=hint) from None


LEGEND_HINT = 'a legend is VGLC JSON like {"tiles": {"X": ["solid", "ground"], "-": ["passable", "empty"]}}'


def read_legend(path: Path) -> dict[str, list[str]]:
    """A VGLC legend file -> {char: [tags]}. Anything else is a clear error."""
    data = _read_json(path, "legend", LEGEND_HINT)
    tiles = data.get("tiles") if isinstance(data, dict) else None
    if not isinstance(tiles, dict) or not tiles:
        raise GenError('malformed legend: expected an object with a non-empty "tiles" mapping',
                       where=str(path), hint=LEGEND_HINT)
    legend: dict[str, list[str]] = {}
    for char, tags in tiles.items():
        if not isinstance(char, str) or len(char) != 1 or char in "\r\n" or not char.isprintable():
            raise GenError(f"malformed legend: tile key {char!r} is not one printable character",
                           where=str(path), hint=LEGEND_HINT)
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise GenError(f"malformed legend: the tags of {char!r} are not a list of strings",
                           where=str(path), hint=LEGEND_HINT)
        legend[char] = [t.strip() for t in tags]
    return legend


def merge_legends(legends: list[dict[str, list[str]]]) -> dict[str, list[str]]:
    """Union of legends; the first legend that defines a character gives its tags."""
    merged: dict[str, list[str]] = {}
    for legend in legends:
        for char, tags in legend.items():
            merged.setdefault(char, list(tags))
    return merged


def match_profile(chars: set[str]) -> str | None:
    """The profile whose tiles cover every character used, with its required ones present."""
    for name, prof in profiles().items():
        if chars <= set(prof["tiles"]) and set(prof["required"]) <= chars:
            return name
    return None


# -- physics ------------------------------------------------------------------------------------
PHYSICS_HINT = "VGLC Paths/ files hold {\"solid\": [...], \"passable\": [...]} and {\"jumps\": [[[dx, dy], ...], ...]}"


def read_paths_folder(folder: Path) -> dict[str, Any] | None:
    """VGLC's Paths/ folder -> {"solid", "passable", "jumps", "source"}, or None without both parts."""
    specs, jumps, sources = None, None, []
    for path in sorted(folder.glob("*.json")):
        data = _read_json(path, "Paths file", PHYSICS_HINT)
        if isinstance(data, dict) and "jumps" in data:
            jumps = _check_jumps(data["jumps"], path)
            sources.append(path.name)
        elif isinstance(data, dict) and "solid" in data:
            specs = _check_specs(data, path)
            sources.append(path.name)
    if specs is None or jumps is None:
        return None
    return {**specs, "jumps": jumps, "source": f"{folder.name}/" + "+".join(sources)}


def _check_specs(data: dict, path: Path) -> dict[str, list[str]]:
    out = {}
    for key in ("solid", "passable"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(c, str) and len(c) == 1 for c in value):
            raise GenError(f"malformed tile specs: {key!r} is not a list of single characters",
                           where=str(path), hint=PHYSICS_HINT)
        out[key] = list(value)
    return out


def _check_jumps(value: Any, path: Path) -> list[list[list[int]]]:
    ok = isinstance(value, list) and value and all(
        isinstance(arc, list) and arc and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, int) for v in p) for p in arc)
        for arc in value)
    if not ok:
        raise GenError("malformed jump arcs: expected a list of arcs of [dx, dy] integer pairs",
                       where=str(path), hint=PHYSICS_HINT)
    return dedupe_arcs(value)


def dedupe_arcs(arcs: list[list[list[int]]]) -> list[list[list[int]]]:
    """Drop repeated consecutive cells inside an arc and repeated arcs (VGLC lists many twice)."""
    seen, out = set(), []
    for arc in arcs:
        cells = []
        for dx, dy in arc:
            if not cells or cells[-1] != [dx, dy]:
                cells.append([int(dx), int(dy)])
        key = tuple(map(tuple, cells))
        if key not in seen:
            seen.add(key)
            out.append(cells)
    return out


def project_physics(profile: str) -> dict[str, Any] | None:
    """The project's own jump arcs and tile specs for a profile, when it has any."""
    from gencore.assets import asset_path

    name = profiles().get(profile, {}).get("physics")
    if not name:
        return None
    data = json.loads(asset_path("levels", name).read_text(encoding="utf-8"))
    if profiles()[profile].get("physics_model") == "mario":  # arcs simulated at check time (mario.py)
        return {"solid": data["solid"], "passable": data["passable"], "model": "mario",
                "source": "small Mario, Mario AI framework rules (gencore_levels/mario.py)"}
    return {"solid": data["solid"], "passable": data["passable"], "jumps": dedupe_arcs(data["jumps"]),
            "source": f"gencore_assets/levels/{name}"}


def tile_roles(legend: dict[str, list[str]], physics: dict[str, Any] | None) -> dict[str, str]:
    """Each character's role for movement: "solid", "platform" (stand on it, jump through it)
    or "passable". Enemies are passable. The physics' tile specs win over legend tags, except
    that a tile listed both solid and passable is a platform when its legend says solidtop and
    passable otherwise."""
    roles = {}
    for char, tags in legend.items():
        lowered = {t.lower() for t in tags}
        if "solidtop" in lowered:
            role = "platform"
        elif "solid" in lowered and "enemy" not in lowered:
            role = "solid"
        else:
            role = "passable"
        if physics is not None:
            solid, passable = char in physics["solid"], char in physics["passable"]
            if solid and passable:
                role = "platform" if "solidtop" in lowered else "passable"
            elif solid:
                role = "solid"
            elif passable:
                role = "passable"
        roles[char] = role
    return roles
