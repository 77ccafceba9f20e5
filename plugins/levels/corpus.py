"""From level files to training items: vocabulary, alignment, windows and labels.

Items are one-hot tile grids (N, K, H, W) over the corpus vocabulary (K tile characters). Levels
are aligned at the bottom (horizontal games) or the left (vertical games) and padded with the
empty tile to the corpus maximum, then cut into windows that span the full height (or width) and
`--window` tiles along the level, or kept whole when they are small and all alike (Lode Runner).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gencore import console
from gencore.errors import GenError
from gencore.plugin import LoadedData

from . import tiles as T
from .reader import Group, Level, discover, read_level

WHOLE_MAX_SIDE = 64  # levels that all share one shape this small are trained whole
MIN_WINDOW = 4


@dataclass
class LevelData(LoadedData):
    """LoadedData plus what the metrics need: the level each item came from."""

    level_ids: Any = None  # (N,) int array


@dataclass
class Corpus:
    levels: list[Level]
    legend: dict[str, list[str]]
    physics: dict[str, Any] | None
    profile: str | None
    groups: list[str] = field(default_factory=list)


# -- reading ------------------------------------------------------------------------------------
def _first_use(levels: list[Level], char: str) -> tuple[str, int, int]:
    for level in levels:
        for r, row in enumerate(level.rows):
            c = row.find(char)
            if c >= 0:
                return level.name, r + 1, c + 1
    return "?", 0, 0


BUILTIN_GAMES = {  # builtin:NAME -> the VGLC game folder shipped under assets/levels/vglc/
    "smb": "Super Mario Bros", "smb2j": "Super Mario Bros 2 (Japan)",
    "kid-icarus": "Kid Icarus", "lode-runner": "Lode Runner",
}
BUILTIN_NAMES = ", ".join(f"builtin:{n}" for n in [*BUILTIN_GAMES, "demo"])


def builtin_folder(name: str) -> Path:
    """The shipped VGLC folder behind builtin:NAME (assets/levels/vglc/, MIT, see PROVENANCE.md)."""
    from gencore.assets import asset_path

    if name not in BUILTIN_GAMES:
        raise GenError(f"unknown built-in corpus 'builtin:{name}'", where="--data",
                       hint=f"the built-in corpora are {BUILTIN_NAMES}")
    return asset_path("levels", "vglc", BUILTIN_GAMES[name])


def _demo_corpus(legend_file: str | None, games: list[str] | None) -> Corpus:
    if games:
        raise GenError("--games picks folders of a --data folder; builtin:demo has none", where="--games")
    from .demo import demo_levels

    levels = demo_levels()
    legend = {c: list(t) for c, t in T.profiles()["smb"]["tiles"].items()}
    if legend_file:
        legend = T.read_legend(Path(legend_file))
        _check_chars(levels, legend, legend_file)
    return Corpus(levels, legend, T.project_physics("smb"), "smb", ["demo"])


def read_corpus(source: str, legend_file: str | None, games: list[str] | None) -> Corpus:
    builtin = None
    if source.startswith("builtin:"):
        builtin = source.split(":", 1)[1]
        if builtin == "demo":
            return _demo_corpus(legend_file, games)
        if games:
            raise GenError(f"--games picks folders of a --data folder; {source} is one game", where="--games")
        source = str(builtin_folder(builtin))
    groups = discover(source, games)
    levels = [read_level(path, g.name) for g in groups for path in g.files]
    if builtin is not None:  # names that do not depend on where the package is installed
        for level in levels:
            level.name = f"builtin:{builtin}/{Path(level.name).name}"
    if legend_file:
        legend = T.read_legend(Path(legend_file))
        _check_chars(levels, legend, legend_file)
    else:
        legend = _legends_of(groups, levels)
    chars = {ch for level in levels for row in level.rows for ch in row}
    profile = T.match_profile(chars)
    physics = None
    if profile is not None and T.profiles()[profile].get("physics_model"):  # the engine's rules beat VGLC's estimates
        physics = T.project_physics(profile)
    for g in groups if physics is None else []:
        folder = g.paths_folder()
        if folder is not None:
            physics = T.read_paths_folder(folder)
            if physics is not None:
                break
    if physics is None and profile is not None:
        physics = T.project_physics(profile)
    return Corpus(levels, legend, physics, profile, [g.name for g in groups])


def _check_chars(levels: list[Level], legend: dict[str, list[str]], legend_file: str) -> None:
    for level in levels:
        for r, row in enumerate(level.rows):
            for c, ch in enumerate(row):
                if ch not in legend:
                    raise GenError(f"tile {ch!r} at row {r + 1}, column {c + 1} is missing from the legend "
                                   f"{legend_file}", where=level.name,
                                   hint="add the character to the legend's \"tiles\", or fix the level")


def _inferred_legend(levels: list[Level], chars: set[str]) -> dict[str, list[str]]:
    """No legend beside the levels: the roles of a matching profile, else only the empty tile."""
    counts: dict[str, int] = {}
    for level in levels:
        for row in level.rows:
            for ch in row:
                counts[ch] = counts.get(ch, 0) + 1
    profile = T.match_profile(chars)
    if profile:
        legend = {c: list(T.profiles()[profile]["tiles"][c]) for c in sorted(chars)}
        note = f"they fit the project's {profile!r} profile, which gives their roles"
    else:
        empty = max(counts, key=counts.get)
        legend = {c: (["passable", "empty"] if c == empty else []) for c in sorted(chars)}
        note = f"{empty!r}, the most common, is taken as empty; give a legend for the others' roles"
    console.warn(f"no legend (*.json) found beside the levels: inferred {len(legend)} tile characters "
                 f"from the data ({''.join(sorted(chars))}); {note}")
    return legend


def _tile_specs(group: Group) -> dict[str, Any] | None:
    folder = group.paths_folder()
    if folder is None:
        return None
    try:
        return T.read_paths_folder(folder)
    except GenError:
        return None


def _fill_missing(legend: dict[str, list[str]], merged: dict[str, list[str]], group: Group, own: dict,
                  names: list[str], missing: list[str], levels: list[Level]) -> None:
    """Characters a game uses that its own legend lacks: from the corpus's other legends, or
    its Paths/ tile specs; defined nowhere is an error. One warning per game."""
    specs = _tile_specs(group)
    for ch in missing:
        if ch in merged:
            continue
        if specs is not None and (ch in specs["solid"] or ch in specs["passable"]):
            legend[ch] = (["solid"] if ch in specs["solid"] else []) + (["passable"] if ch in specs["passable"] else [])
            continue
        level, r, c = _first_use([lv for lv in levels if lv.group == group.name], ch)
        shown = ", ".join(names) or "the corpus's legends"
        raise GenError(f"tile {ch!r} at row {r}, column {c} is missing from the legend ({shown})",
                       where=level, hint="add the character to the legend's \"tiles\", or pass "
                                         "--legend FILE with a legend that has it")
    what = ", ".join(repr(c) for c in missing)
    console.warn(f"{group.name}: levels use {what}, which its legend ({', '.join(names) or 'none'}) lacks; "
                 f"taking {'them' if len(missing) > 1 else 'it'} from the merged legend")


def _legends_of(groups: list[Group], levels: list[Level]) -> dict[str, list[str]]:
    """Merge the legends found beside each game. A game that uses a character its own legend
    lacks gets a warning when another legend of the corpus or its Paths/ tile specs define it
    (SMB2J uses B/b); a character defined nowhere is an error. No legend at all: the vocabulary
    is inferred from the data, with a warning."""
    per_group = {}
    for g in groups:
        found = [T.read_legend(p) for p in g.legend_files()]
        per_group[g.name] = (T.merge_legends(found), [p.name for p in g.legend_files()])
    merged = T.merge_legends([legend for legend, _ in per_group.values()])
    chars_used: dict[str, set[str]] = {}
    for level in levels:
        chars_used.setdefault(level.group, set()).update(ch for row in level.rows for ch in row)
    if not merged:
        return _inferred_legend(levels, set().union(*chars_used.values()))
    legend = dict(merged)
    for g in groups:
        own, names = per_group[g.name]
        missing = sorted(chars_used.get(g.name, set()) - set(own))
        if missing:
            _fill_missing(legend, merged, g, own, names, missing, levels)
    return legend


# -- layout and windows -------------------------------------------------------------------------
def choose_layout(levels: list[Level], profile: str | None, requested: str) -> str:
    if requested != "auto":
        return requested
    shapes = {(lv.height, lv.width) for lv in levels}
    if profile is not None:
        layout = T.profiles()[profile]["layout"]
        if layout != "whole" or len(shapes) == 1:
            return layout
    if len(shapes) == 1 and max(next(iter(shapes))) <= WHOLE_MAX_SIDE:
        return "whole"
    if all(lv.height > lv.width for lv in levels):
        return "vertical"
    return "horizontal"


def vocabulary(legend: dict[str, list[str]], levels: list[Level], empty: str) -> list[str]:
    """Tile characters, the empty tile first, then by frequency in the corpus, then the legend's
    unused characters (so samples may use every legend character and nothing else)."""
    counts: dict[str, int] = {}
    for level in levels:
        for row in level.rows:
            for ch in set(row):
                counts[ch] = counts.get(ch, 0) + row.count(ch)
    order = sorted(legend, key=lambda c: (c != empty, -counts.get(c, 0), c))
    return order


def pick_empty(legend: dict[str, list[str]], profile: str | None, levels: list[Level]) -> str:
    if profile and T.profiles()[profile]["empty"] in legend:
        return T.profiles()[profile]["empty"]
    tagged = [c for c, tags in legend.items() if "empty" in {t.lower() for t in tags}]
    if tagged:
        return tagged[0]
    counts: dict[str, int] = {}
    for level in levels:
        for row in level.rows:
            for ch in set(row):
                counts[ch] = counts.get(ch, 0) + row.count(ch)
    return max(counts, key=counts.get)


def pick_ground(legend: dict[str, list[str]], roles: dict[str, str], profile: str | None) -> str | None:
    if profile and T.profiles()[profile]["ground"] in legend:
        return T.profiles()[profile]["ground"]
    tagged = [c for c, tags in legend.items() if "ground" in {t.lower() for t in tags}]
    solid = [c for c, role in roles.items() if role == "solid"]
    return (tagged or solid or [None])[0]


def to_grid(level: Level, index: dict[str, int]) -> np.ndarray:
    return np.array([[index[ch] for ch in row] for row in level.rows], dtype=np.uint8)


def align(grids: list[np.ndarray], layout: str, empty_index: int) -> list[np.ndarray]:
    """Pad to the corpus maximum: at the top (levels align at the bottom), and at the right."""
    if layout == "horizontal":
        height = max(g.shape[0] for g in grids)
        return [np.pad(g, ((height - g.shape[0], 0), (0, 0)), constant_values=empty_index) for g in grids]
    if layout == "vertical":
        width = max(g.shape[1] for g in grids)
        return [np.pad(g, ((0, 0), (0, width - g.shape[1])), constant_values=empty_index) for g in grids]
    height = max(g.shape[0] for g in grids)
    width = max(g.shape[1] for g in grids)
    return [np.pad(g, ((height - g.shape[0], 0), (0, width - g.shape[1])), constant_values=empty_index)
            for g in grids]


def windows(grid: np.ndarray, layout: str, window: int, stride: int) -> np.ndarray:
    """(n, H, W) windows of one aligned level grid."""
    if layout == "whole":
        return grid[None]
    axis = 1 if layout == "horizontal" else 0
    length = grid.shape[axis]
    starts = list(range(0, length - window + 1, stride))
    if starts and starts[-1] != length - window:
        starts.append(length - window)  # the level's end is always covered
    if axis == 1:
        return np.stack([grid[:, s:s + window] for s in starts])
    return np.stack([grid[s:s + window, :] for s in starts])


def check_sizes(levels: list[Level], layout: str, window: int) -> None:
    for level in levels:
        length, what = (level.width, "columns wide") if layout == "horizontal" else (level.height, "rows long")
        if layout != "whole" and length < window:
            unit = "column" if layout == "horizontal" else "row"
            raise GenError(f"the level is {length} {what}, smaller than the {window}-{unit} window",
                           where=level.name, hint=f"use a smaller --window (at least {MIN_WINDOW}), or leave "
                                                  "this level out")


def one_hot(grids: np.ndarray, k: int):
    import torch

    idx = torch.from_numpy(grids.astype(np.int64))
    return torch.nn.functional.one_hot(idx, k).permute(0, 3, 1, 2).float().contiguous()


def tile_weights(grids: np.ndarray, k: int, power: float) -> list[float] | None:
    """Per-tile loss weights (frequency ** -power, scaled to average 1 over the data), so that
    the 86% of empty tiles do not drown the rare ones. Unseen tiles get the rarest seen weight."""
    if power <= 0:
        return None
    counts = np.bincount(grids.reshape(-1), minlength=k).astype(np.float64)
    freq = counts / counts.sum()
    seen = freq > 0
    weights = np.zeros(k)
    weights[seen] = freq[seen] ** -power
    weights /= float((freq * weights).sum())
    weights[~seen] = weights[seen].max() if seen.any() else 1.0
    return [round(float(w), 6) for w in weights]
