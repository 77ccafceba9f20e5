"""Make the levels domain's shipped assets procedurally: tile sprites and SMB-like jump physics.

    python scripts/make_level_sprites.py            # rewrites assets/levels/{sprites.png,sprites.json,smb_physics.json}

Everything is drawn or computed here from scratch (flat colours, rectangles, ellipses and a
parabola), so the assets are the project's own work; nothing is copied from a game or from VGLC.
The output is deterministic: running the script twice gives identical files.

- `sprites.png` is a sheet of 16x16 RGBA tiles in one row; `sprites.json` maps each sprite name
  to its column. Overlay sprites (enemies, coins, ropes, ...) are transparent where the game's
  background shows through; the renderer composites them over the profile's background sprite.
- `smb_physics.json` lists the solid and passable tiles of SMB-like games and jump arcs: for an
  apex height h of 1 to 4 tiles and a run-up a of 0 to min(4, h + 1) tiles to the apex, the cells
  of the parabola y(x) = -h + h((x - a)/a)^2, continued 3 tiles below the take-off height, in both
  directions. So a jump rises at most 4 tiles and clears at most 8 columns.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "assets" / "levels"
T = 16  # sprite side in pixels


def rgba(hex_colour: str, alpha: int = 255) -> tuple[int, int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), alpha


def blank(fill: str | None = None) -> Image.Image:
    return Image.new("RGBA", (T, T), rgba(fill) if fill else (0, 0, 0, 0))


def flat(colour: str) -> Image.Image:
    return blank(colour)


def bricks(base: str, mortar: str, highlight: str | None = None, rows: int = 4) -> Image.Image:
    img = blank(base)
    d = ImageDraw.Draw(img)
    step = T // rows
    for r in range(rows):
        y = r * step
        d.line([(0, y), (T - 1, y)], fill=rgba(mortar))
        offset = 0 if r % 2 == 0 else T // 4
        for x in range(offset, T, T // 2):
            d.line([(x, y), (x, y + step - 1)], fill=rgba(mortar))
        if highlight:
            d.line([(1, y + 1), (T - 2, y + 1)], fill=rgba(highlight))
    return img


def ground() -> Image.Image:
    img = blank("#b0501c")
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, T - 1, T - 1], outline=rgba("#5a2408"))
    d.line([(0, 7), (T - 1, 7)], fill=rgba("#5a2408"))
    d.line([(7, 0), (7, 7)], fill=rgba("#5a2408"))
    d.line([(11, 8), (11, 15)], fill=rgba("#5a2408"))
    d.line([(1, 1), (6, 1)], fill=rgba("#f0a070"))
    d.line([(8, 1), (14, 1)], fill=rgba("#f0a070"))
    d.line([(1, 9), (10, 9)], fill=rgba("#f0a070"))
    return img


def question(full: bool) -> Image.Image:
    img = blank("#e8a81c" if full else "#8a5a2c")
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, T - 1, T - 1], outline=rgba("#3a2008"))
    for x, y in ((2, 2), (13, 2), (2, 13), (13, 13)):
        d.point((x, y), fill=rgba("#3a2008"))
    if full:  # a blocky question mark
        mark = ["01110", "10001", "00001", "00110", "00100", "00000", "00100"]
        for r, row in enumerate(mark):
            for c, bit in enumerate(row):
                if bit == "1":
                    d.rectangle([5 + c, 4 + r, 5 + c, 4 + r], fill=rgba("#5a2408"))
    return img


def enemy() -> Image.Image:
    img = blank()
    d = ImageDraw.Draw(img)
    d.pieslice([1, 1, 14, 16], 180, 360, fill=rgba("#9c4a14"))  # mushroom cap
    d.rectangle([4, 8, 11, 12], fill=rgba("#f0c890"))  # face
    d.rectangle([5, 5, 6, 8], fill=rgba("#ffffff"))
    d.rectangle([9, 5, 10, 8], fill=rgba("#ffffff"))
    d.point((6, 7), fill=rgba("#000000"))
    d.point((9, 7), fill=rgba("#000000"))
    d.rectangle([2, 13, 6, 15], fill=rgba("#2a1408"))  # feet
    d.rectangle([9, 13, 13, 15], fill=rgba("#2a1408"))
    return img


def pipe(part: str) -> Image.Image:
    img = blank()
    d = ImageDraw.Draw(img)
    dark, mid, light = rgba("#0a6a10"), rgba("#20b828"), rgba("#a8f070")
    left = part.endswith("left")
    if part.startswith("top"):
        x0, x1 = (0, T - 1)
        d.rectangle([x0, 1, x1, T - 1], fill=mid)
        d.line([(x0, 1), (x1, 1)], fill=dark)
        d.line([(x0, T - 1), (x1, T - 1)], fill=dark)
        if left:
            d.line([(0, 1), (0, T - 1)], fill=dark)
            d.rectangle([3, 2, 5, T - 2], fill=light)
        else:
            d.line([(T - 1, 1), (T - 1, T - 1)], fill=dark)
            d.rectangle([T - 5, 2, T - 3, T - 2], fill=dark)
    else:
        if left:
            d.rectangle([2, 0, T - 1, T - 1], fill=mid)
            d.line([(2, 0), (2, T - 1)], fill=dark)
            d.rectangle([5, 0, 7, T - 1], fill=light)
        else:
            d.rectangle([0, 0, T - 3, T - 1], fill=mid)
            d.line([(T - 3, 0), (T - 3, T - 1)], fill=dark)
            d.rectangle([T - 7, 0, T - 5, T - 1], fill=dark)
    return img


def coin() -> Image.Image:
    img = blank()
    d = ImageDraw.Draw(img)
    d.ellipse([4, 2, 11, 13], fill=rgba("#f8d030"), outline=rgba("#a07010"))
    d.line([(7, 4), (7, 11)], fill=rgba("#fff8b0"))
    return img


def cannon(top: bool) -> Image.Image:
    img = blank("#202020" if top else "#505058")
    d = ImageDraw.Draw(img)
    if top:
        d.ellipse([3, 3, 12, 12], fill=rgba("#000000"), outline=rgba("#808080"))
        d.rectangle([0, 13, T - 1, T - 1], fill=rgba("#707070"))
    else:
        d.rectangle([0, 0, T - 1, T - 1], outline=rgba("#202020"))
        d.line([(3, 0), (3, T - 1)], fill=rgba("#808088"))
    return img


def stone() -> Image.Image:
    return bricks("#3c8c8c", "#1c4c4c", "#8cd0c8", rows=2)


def door() -> Image.Image:
    img = blank("#6a3c1c")
    d = ImageDraw.Draw(img)
    d.rectangle([1, 1, T - 2, T - 1], outline=rgba("#f0c060"))
    d.line([(T // 2, 1), (T // 2, T - 1)], fill=rgba("#3a1c08"))
    d.point((T // 2 - 2, 9), fill=rgba("#f0e080"))
    return img


def spikes() -> Image.Image:
    img = blank()
    d = ImageDraw.Draw(img)
    for x in range(0, T, 4):
        d.polygon([(x, T - 1), (x + 2, 4), (x + 3, T - 1)], fill=rgba("#e02020"), outline=rgba("#ffa0a0"))
    return img


def platform(moving: bool) -> Image.Image:
    img = blank()
    d = ImageDraw.Draw(img)
    colour = "#f08c1c" if moving else "#d8d8e8"
    d.rectangle([0, 0, T - 1, 5], fill=rgba(colour), outline=rgba("#404050"))
    if moving:
        d.polygon([(3, 9), (6, 7), (6, 11)], fill=rgba("#f08c1c"))
        d.polygon([(12, 9), (9, 7), (9, 11)], fill=rgba("#f08c1c"))
    return img


def rope() -> Image.Image:
    img = blank()
    d = ImageDraw.Draw(img)
    d.line([(0, 3), (T - 1, 3)], fill=rgba("#e0c080"), width=2)
    return img


def ladder() -> Image.Image:
    img = blank()
    d = ImageDraw.Draw(img)
    d.line([(3, 0), (3, T - 1)], fill=rgba("#e0e0e0"), width=2)
    d.line([(12, 0), (12, T - 1)], fill=rgba("#e0e0e0"), width=2)
    for y in (2, 7, 12):
        d.line([(3, y), (12, y)], fill=rgba("#e0e0e0"))
    return img


def gold() -> Image.Image:
    img = blank()
    d = ImageDraw.Draw(img)
    d.polygon([(2, T - 2), (8, 6), (14, T - 2)], fill=rgba("#f8d030"), outline=rgba("#a07010"))
    d.point((8, 9), fill=rgba("#fff8b0"))
    return img


def figure(colour: str) -> Image.Image:
    img = blank()
    d = ImageDraw.Draw(img)
    d.ellipse([5, 1, 10, 6], fill=rgba(colour))
    d.line([(7, 6), (7, 11)], fill=rgba(colour), width=2)
    d.line([(3, 8), (12, 8)], fill=rgba(colour))
    d.line([(7, 11), (4, 15)], fill=rgba(colour), width=2)
    d.line([(8, 11), (11, 15)], fill=rgba(colour), width=2)
    return img


def unknown() -> Image.Image:
    img = blank("#c000c0")
    d = ImageDraw.Draw(img)
    for y in range(0, T, 4):
        for x in range((y // 4) % 2 * 4, T, 8):
            d.rectangle([x, y, x + 3, y + 3], fill=rgba("#300030"))
    return img


SPRITES = {
    "sky": lambda: flat("#6c94fc"),
    "ground": ground,
    "brick": lambda: bricks("#c04c1c", "#2a0c04", "#f09070"),
    "question": lambda: question(True),
    "used": lambda: question(False),
    "enemy": enemy,
    "pipe-top-left": lambda: pipe("top-left"),
    "pipe-top-right": lambda: pipe("top-right"),
    "pipe-left": lambda: pipe("body-left"),
    "pipe-right": lambda: pipe("body-right"),
    "coin": coin,
    "cannon-top": lambda: cannon(True),
    "cannon-base": lambda: cannon(False),
    "night": lambda: flat("#14143c"),
    "stone": stone,
    "door": door,
    "spikes": spikes,
    "moving-platform": lambda: platform(True),
    "platform": lambda: platform(False),
    "black": lambda: flat("#000000"),
    "bedrock": lambda: bricks("#7c7c84", "#3c3c44", rows=2),
    "dig-brick": lambda: bricks("#b04c28", "#40180c", "#e08060"),
    "rope": rope,
    "ladder": ladder,
    "gold": gold,
    "runner-enemy": lambda: figure("#f04040"),
    "runner-spawn": lambda: figure("#f0f0f0"),
    "unknown": unknown,
}


def make_sprites() -> None:
    names = list(SPRITES)
    sheet = Image.new("RGBA", (T * len(names), T), (0, 0, 0, 0))
    for i, name in enumerate(names):
        sheet.paste(SPRITES[name](), (i * T, 0))
    sheet.save(OUT / "sprites.png", optimize=False)
    index = {"tile": T, "sprites": {name: i for i, name in enumerate(names)}}
    (OUT / "sprites.json").write_text(json.dumps(index, indent=1) + "\n")


# -- jump physics ----------------------------------------------------------------------------------
def arc(h: int, a: int, below: int = 3) -> list[list[int]]:
    """Cells of one rightward jump: apex h tiles up after a columns, down to `below` under take-off."""
    cells = [[0, -1]]
    if a == 0:
        cells += [[0, -k] for k in range(2, h + 1)]
        return cells
    x = 0.0
    while True:
        x += 0.05
        y = -h + h * ((x - a) / a) ** 2
        cell = [int(math.floor(x + 0.5)), int(math.floor(y + 0.5))]
        if x < a:  # still rising: the take-off already left the ground
            cell[1] = min(cell[1], -1)
        if cell[1] > below:
            break
        last = cells[-1]
        if cell == last:
            continue
        if cell[0] != last[0] and cell[1] != last[1]:  # no diagonal corner-cutting
            corner = [last[0], cell[1]] if cell[1] < last[1] else [cell[0], last[1]]
            cells.append(corner)
        cells.append(cell)
    return cells


def make_physics() -> None:
    arcs = []
    for h in range(1, 5):
        for a in range(0, min(4, h + 1) + 1):
            right = arc(h, a)
            arcs.append(right)
            if a:
                arcs.append([[-dx, dy] for dx, dy in right])
    physics = {
        "about": "Jump arcs and tile specs for SMB-like games, computed by scripts/make_level_sprites.py "
                 "(parabolas up to 4 tiles high and 8 across). Offsets are [dx, dy] from the take-off "
                 "cell, dy negative is up.",
        "solid": ["X", "S", "?", "Q", "<", ">", "[", "]", "B", "b"],
        "passable": ["-", "E", "o"],
        "jumps": arcs,
    }
    text = json.dumps(physics, indent=None, separators=(",", ":"))
    (OUT / "smb_physics.json").write_text(text.replace("],[[", "],\n[[") + "\n")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    make_sprites()
    make_physics()
    print(f"wrote {OUT / 'sprites.png'}, {OUT / 'sprites.json'} and {OUT / 'smb_physics.json'}")
