"""Finding a domain's files under a `--data` folder laid out as one subfolder per class."""
from __future__ import annotations

import os
from pathlib import Path

from gencore.errors import GenError


def scan_class_folder(root: Path, suffixes: tuple[str, ...],
                      max_entries: int) -> tuple[list[Path], dict[str, list[Path]], int]:
    """Files ending in `suffixes` at the top level, the same per first-level subfolder (the
    class, deeper folders included), and the count of other files. Hidden files and folders
    (.git, macOS ._ files) count as other. Links to folders are followed (class folders are often
    symlinks), each real folder once, so a symlink loop cannot trap the walk."""
    top: list[Path] = []
    classes: dict[str, list[Path]] = {}
    other = seen = 0
    errors: list[OSError] = []
    visited: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append, followlinks=True):
        here = Path(dirpath)
        try:
            info = os.stat(here)
        except OSError:
            dirnames[:] = []
            continue
        if (info.st_dev, info.st_ino) in visited:  # reached again through a link: a loop or a duplicate
            dirnames[:] = []
            continue
        visited.add((info.st_dev, info.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = here.relative_to(root)
        seen += len(filenames) + len(dirnames)
        if seen > max_entries:
            raise GenError(f"the folder holds over {max_entries:,} entries", where=str(root),
                           hint="point --data at a smaller folder")
        for name in sorted(filenames):
            if name.startswith(".") or not name.lower().endswith(suffixes):
                other += 1
                continue
            (classes.setdefault(rel.parts[0], []) if rel.parts else top).append(here / name)
    if errors and errors[0].filename is not None and Path(errors[0].filename) == root:
        raise GenError(f"cannot read the folder ({errors[0].strerror})", where=str(root))
    return top, classes, other
