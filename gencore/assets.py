"""Where the project's own shipped assets (tile sprites, jump arcs, palettes) live.

The top-level `assets/` folder of the repository is installed as the package `gencore_assets`
(see pyproject.toml), so the same files are found in a checkout, an editable install and a wheel.
"""
from __future__ import annotations

from pathlib import Path

from gencore.errors import GenError


def assets_root() -> Path:
    try:
        import gencore_assets

        return Path(gencore_assets.__file__).parent
    except ImportError:
        return Path(__file__).resolve().parent.parent / "assets"


def asset_path(*parts: str) -> Path:
    path = assets_root().joinpath(*parts)
    if not path.exists():
        raise GenError("a shipped asset is missing", where=str(path), hint="reinstall gencore")
    return path
