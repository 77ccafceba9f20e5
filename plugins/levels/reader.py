"""Finding and reading VGLC-style level files. Pure Python: no torch, no numpy.

A corpus is one or more *groups* (games): `--data` names a game folder, a folder of game folders,
a single level file, or several of these joined with the OS path separator (`:` on Linux). A game
folder holding a `Processed/` subfolder (VGLC's own layout) is read from there; its legend
(`*.json`) and `Paths/` folder may sit beside the level files or one folder up.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from gencore.errors import GenError

MAX_LEVEL_BYTES = 20_000_000
LEVEL_SUFFIX = ".txt"
SKIP_DIRS = {"Paths", "Original", "__pycache__"}


@dataclass
class Level:
    name: str  # a display name: the file path, or builtin:demo/NAME
    group: str
    rows: list[str]

    @property
    def height(self) -> int:
        return len(self.rows)

    @property
    def width(self) -> int:
        return len(self.rows[0])


@dataclass
class Group:
    name: str
    files: list[Path]
    search: list[Path] = field(default_factory=list)  # folders that may hold its legend and Paths/

    def legend_files(self) -> list[Path]:
        seen, out = set(), []
        for folder in self.search:
            for path in sorted(folder.glob("*.json")):
                if path.is_file() and path.resolve() not in seen:
                    seen.add(path.resolve())
                    out.append(path)
        return out

    def paths_folder(self) -> Path | None:
        for folder in self.search:
            if (folder / "Paths").is_dir():
                return folder / "Paths"
        return None


def read_level(path: Path, group: str = "") -> Level:
    """One level file -> rows of equal length. Empty, binary and ragged files are clear errors."""
    hint_text = "a level is a text file with one line per tile row and one character per tile"
    try:
        size = path.stat().st_size
        if size > MAX_LEVEL_BYTES:
            raise GenError(f"is {size:,} bytes, too big for a level file", where=str(path), hint=hint_text)
        raw = path.read_bytes()
    except OSError as exc:
        raise GenError(f"cannot read: {exc.strerror or exc}", where=str(path)) from exc
    if not raw.strip():
        raise GenError("empty level file", where=str(path), hint=hint_text)
    if b"\x00" in raw:
        raise GenError("not a text level (binary data)", where=str(path), hint=hint_text)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise GenError("not a text level (not UTF-8 text; binary data?)", where=str(path), hint=hint_text) from None
    rows = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while rows and rows[-1] == "":
        rows.pop()
    if not rows:  # a byte-order mark and nothing else
        raise GenError("empty level file", where=str(path), hint=hint_text)
    bad = next((ch for row in rows for ch in row if not ch.isprintable() or ch in "\t\x0b\x0c"), None)
    if bad is not None:
        raise GenError(f"not a text level (control character {bad!r})", where=str(path), hint=hint_text)
    width = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise GenError(f"ragged rows: row {i + 1} has {len(row)} tiles but row 1 has {width}",
                           where=str(path), hint="every row of a level must have the same number of tiles")
    return Level(str(path), group, rows)


def _level_files(folder: Path) -> list[Path]:
    out = []
    for path in sorted(folder.rglob(f"*{LEVEL_SUFFIX}")):
        rel = path.relative_to(folder).parts
        if any(p.startswith(".") or p in SKIP_DIRS for p in rel):
            continue
        if path.is_file():
            out.append(path)
    return out


def _processed(folder: Path) -> Path:
    return folder / "Processed" if (folder / "Processed").is_dir() else folder


def _groups_of(root: Path) -> list[Group]:
    if root.is_file():
        folder = root.parent
        if folder.resolve().name == "Processed":
            return [Group(folder.resolve().parent.name, [root], [folder, folder.parent])]
        return [Group(folder.resolve().name or "levels", [root], [folder])]
    level_dir = _processed(root)
    if level_dir != root:  # a VGLC game folder: <game>/Processed/*.txt beside <game>/*.json
        return [Group(root.name, _level_files(level_dir), [level_dir, root])]
    groups = []
    own = sorted(p for p in root.glob(f"*{LEVEL_SUFFIX}") if p.is_file() and not p.name.startswith("."))
    if own:
        if root.resolve().name == "Processed":  # VGLC's level folder named directly
            groups.append(Group(root.resolve().parent.name, own, [root, root.parent]))
        else:
            groups.append(Group(root.resolve().name or "levels", own, [root]))
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        if sub.name.startswith(".") or sub.name in SKIP_DIRS:
            continue
        files = _level_files(_processed(sub))
        if files:
            groups.append(Group(sub.name, files, [_processed(sub), sub]))
    return groups


def split_sources(source: str) -> list[Path]:
    if Path(source).exists():
        return [Path(source)]
    parts = [p for p in source.split(os.pathsep) if p]
    if len(parts) > 1 and all(Path(p).exists() for p in parts):
        return [Path(p) for p in parts]
    missing = next((p for p in parts if not Path(p).exists()), source)
    raise GenError("no such file or folder", where=missing,
                   hint="give a level file, a game folder, or a folder of game folders; join several with "
                        f"{os.pathsep!r}")


def discover(source: str, games: list[str] | None = None) -> list[Group]:
    """The groups (games) of a corpus, in a stable order. `games` keeps only the named ones."""
    groups: list[Group] = []
    for root in split_sources(source):
        groups.extend(_groups_of(root))
    names = [g.name for g in groups]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise GenError(f"two folders are both called {dupes[0]!r}", where=source,
                       hint="rename one: folder names are the class names of --labels folder")
    if games:
        unknown = [g for g in games if g not in names]
        if unknown:
            raise GenError(f"no game folder called {unknown[0]!r} here (found: {', '.join(names) or 'none'})",
                           where="--games", hint="give folder names exactly, separated by commas")
        groups = [g for g in groups if g.name in games]
    if not any(g.files for g in groups):
        raise GenError(f"no {LEVEL_SUFFIX} level files found", where=source,
                       hint=f"point --data at VGLC-style {LEVEL_SUFFIX} levels (a game's Processed/ folder works)")
    return [g for g in groups if g.files]
