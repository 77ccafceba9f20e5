"""The `levels` domain: tile-map game levels (VGLC text format) as one-hot 2-D grids.

Items are (K, H, W) one-hot grids over the corpus's tile characters, trained with a categorical
likelihood weighted against the sea of empty tiles. Levels are cut into full-height windows
(`--window` columns; rows for vertical games) or kept whole when small (Lode Runner). Labels are
the game folder or the element bits of Sarkar et al. 2020 (`--class enemy+pipe`). `gen sample
--width 200` stitches windows into full-length levels, `--playable` guarantees they can be
completed. See docs/levels.md.

Importing this module is cheap: numpy, torch and Pillow load inside the methods.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gencore.plugin import Domain, DomainOption, LoadedData

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = ["LevelsDomain", "plugin"]

ELEMENT_NAMES = ("enemy", "pipe", "coin", "breakable", "question", "hazard", "door", "moving-platform",
                 "fixed-platform", "rope", "bedrock", "ladder", "gold")


class LevelsDomain(Domain):
    name = "levels"
    description = ("Tile-map game levels (VGLC text: Super Mario Bros, Kid Icarus, Lode Runner, ...) as "
                   "one-hot grids; full-length and playable sampling")
    item_kind = "grid2d"
    default_data = "builtin:smb"
    # how `gen eval` reads each metric: lower tile-pattern KL and copy rate are better, the
    # baselines (real data, held-out levels) are information
    metric_goals = {
        "tpkl_2x2": "min", "tpkl_3x3": "min", "playable": "max", "playable_progress": "max",
        "structure_valid": "max", "copy_rate": "min", "novelty": "info", "diversity": "max",
        "bit_acc_mean": "max", "class_control": "max", "enemies_per_100_cols": "info", "enemy_run_max": "min",
        **{f"bit_acc_{name}": "max" for name in ELEMENT_NAMES},
    }
    options = (
        DomainOption("labels", "what --class means: auto (element bits for one game, else the game), folder "
                     "(the game or subfolder), elements (enemy, pipe, coin, ... bits), or none, "
                     "e.g. --labels elements", default="auto", choices=("auto", "folder", "elements", "none")),
        DomainOption("window", "window length along the level in tiles (columns; rows for vertical games), "
                     "e.g. --window 16", type=int, default=16),
        DomainOption("stride", "step between windows in tiles, e.g. --stride 2", type=int, default=1),
        DomainOption("layout", "how levels are cut: auto, horizontal (windows of columns), vertical (windows of "
                     "rows) or whole (one item per level), e.g. --layout whole", default="auto",
                     choices=("auto", "horizontal", "vertical", "whole")),
        DomainOption("legend", "a VGLC legend JSON for every level, instead of the *.json found beside them; "
                     "levels may use only its characters, e.g. --legend smb.json"),
        DomainOption("games", "only these game folders of --data, comma-separated, e.g. "
                     "--games \"Super Mario Bros,Super Mario Bros 2 (Japan)\""),
        DomainOption("tile_weighting", "loss weight of each tile type is frequency^-P, so rare tiles are not "
                     "drowned by empty ones; 0 turns it off, e.g. --tile-weighting 1", type=float, default=0.75),
        DomainOption("width", "stitch windows into levels this many columns wide (horizontal games), "
                     "e.g. --width 200", type=int, commands=("sample",)),
        DomainOption("length", "stitch windows into levels this many rows long (vertical games such as Kid "
                     "Icarus), e.g. --length 150", type=int, commands=("sample",)),
        DomainOption("playable", "guarantee every level can be completed (jump-physics games): regenerate, "
                     "then repair, e.g. --playable", type=bool, default=False, commands=("sample",)),
    )

    # -- data ---------------------------------------------------------------------------------
    def load(self, source: str | None, options: dict[str, Any]) -> LoadedData:
        from .loading import load_training

        return load_training(source, options)

    def source_files(self, source: str, options: dict[str, Any]) -> list[Path] | None:
        from .loading import builtin_files

        return builtin_files(source)

    def load_files(self, paths: list[Path], spec: dict[str, Any], options: dict[str, Any]):
        from .loading import load_files

        return load_files(paths, spec)

    # -- conditions ---------------------------------------------------------------------------
    def parse_class(self, text: str, class_names: list[str], multi_label: bool) -> list[float]:
        if not multi_label:
            return super().parse_class(text, class_names, multi_label)
        from .labels import parse_elements
        from .tiles import profiles

        aliases = {alias: target for prof in profiles().values() for alias, target in prof.get("aliases", {}).items()
                   if target in class_names}
        return parse_elements(text, class_names, aliases)

    # -- generation ---------------------------------------------------------------------------
    def generate(self, run, classes, conditions, options, seed, temperature):
        from .sampling import generate

        return generate(run, classes, conditions, options, seed, temperature)

    # -- output -------------------------------------------------------------------------------
    def export(self, items: "torch.Tensor", out_dir: Path, stems: list[str], spec: dict[str, Any],
               options: dict[str, Any] | None = None) -> list[Path]:
        from .render import export

        return export(items, out_dir, stems, spec, options)

    def preview(self, items: "torch.Tensor", spec: dict[str, Any], columns: int,
                options: dict[str, Any] | None = None) -> "Image.Image":
        from .render import preview

        return preview(items, spec, columns, options)

    def annotate(self, items: "torch.Tensor", spec: dict[str, Any],
                 options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        from .viewing import annotate

        return annotate(items, spec, options)

    def attributes(self, items: "torch.Tensor", spec: dict[str, Any]) -> dict[str, Any]:
        from .attributes import measure

        return measure(items, spec)

    def metrics(self, samples, sample_conditions, reference: LoadedData, spec: dict[str, Any],
                seed: int) -> dict[str, float]:
        from .metrics import compute

        return compute(samples, sample_conditions, reference, spec, seed)


plugin = LevelsDomain()
