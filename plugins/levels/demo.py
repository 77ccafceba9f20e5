"""`builtin:demo`: a procedural corpus of Mario-like levels, written for this project.

It is a demo corpus: it lets `gen train levels` run with no download, and shows the domain's
moving parts (element bits, pipes, jump physics). It does not stand in for real levels; train on
VGLC's `Processed/` folders for that. The generator is seeded and pure Python, so the corpus is
the same on every machine. Every level is built to be completable with the project's jump arcs:
gaps are at most 4 tiles wide, steps at most 3 tiles high, and nothing blocks the way over.

Tiles use the SMB-like characters of the `smb` profile (assets/levels/games.json).
"""
from __future__ import annotations

import random

from .reader import Level

HEIGHT = 14
N_LEVELS = 24
SEED = 20261127
FLOOR = HEIGHT - 1  # the ground row; the player stands on row FLOOR - 1


def _level(rng: random.Random, index: int) -> list[str]:
    width = rng.randint(150, 240)
    g = [["-"] * width for _ in range(HEIGHT)]
    ground_rows = 2 if rng.random() < 0.35 else 1
    for r in range(HEIGHT - ground_rows, HEIGHT):
        for c in range(width):
            g[r][c] = "X"
    style = rng.random()  # 0: open fields, 1: busy
    x = 10
    last_gap = -10
    while x < width - 14:
        feature = rng.choices(
            ["flat", "gap", "pipe", "blocks", "stairs", "cannon", "coins", "platform"],
            weights=[3, 2 + 2 * style, 2, 3, 1, 0.6, 1.2, 1])[0]
        span = 0
        if feature == "flat":
            span = rng.randint(2, 7)
        elif feature == "gap" and x - last_gap > 6:
            span = rng.randint(1, 4)
            for c in range(x, x + span):
                for r in range(HEIGHT - ground_rows, HEIGHT):
                    g[r][c] = "-"
            last_gap = x + span
            span += 2
        elif feature == "pipe":
            h = rng.randint(2, 4)
            top = HEIGHT - ground_rows - h
            g[top][x], g[top][x + 1] = "<", ">"
            for r in range(top + 1, HEIGHT - ground_rows):
                g[r][x], g[r][x + 1] = "[", "]"
            span = 2 + rng.randint(2, 5)
        elif feature == "blocks":
            n = rng.randint(1, 6)
            row = HEIGHT - ground_rows - 4
            for c in range(x, x + n):
                g[row][c] = rng.choices(["S", "?", "Q"], weights=[6, 2, 1])[0]
            if rng.random() < 0.4 and n >= 3:
                for c in range(x + 1, x + n - 1):
                    g[row - 4][c] = rng.choice("SSo?")
            if rng.random() < 0.3:
                g[row - 1][x + rng.randrange(n)] = "o"
            span = n + rng.randint(1, 3)
        elif feature == "stairs":
            h = rng.randint(2, 4)
            for i in range(h):
                for r in range(HEIGHT - ground_rows - 1 - i, HEIGHT - ground_rows):
                    g[r][x + i] = "X"
            down = rng.random() < 0.6
            if down:
                for i in range(h):
                    for r in range(HEIGHT - ground_rows - h + i, HEIGHT - ground_rows):
                        g[r][x + h + i] = "X"
            span = (2 * h if down else h) + rng.randint(2, 4)
        elif feature == "cannon":
            h = rng.randint(1, 3)
            top = HEIGHT - ground_rows - h
            g[top][x] = "B"
            for r in range(top + 1, HEIGHT - ground_rows):
                g[r][x] = "b"
            span = 1 + rng.randint(2, 4)
        elif feature == "coins":
            n = rng.randint(2, 6)
            row = HEIGHT - ground_rows - rng.randint(2, 4)
            for c in range(x, x + n):
                g[row][c] = "o"
            span = n + 1
        elif feature == "platform":
            n = rng.randint(3, 6)
            row = HEIGHT - ground_rows - rng.randint(3, 4)
            for c in range(x, x + n):
                g[row][c] = rng.choice("XXS")
            span = n + 1
        if span == 0:
            continue
        # enemies walk on the ground in the open
        for c in range(x, min(x + span, width - 12)):
            stand = HEIGHT - ground_rows - 1
            if g[stand + 1][c] in "X" and g[stand][c] == "-" and rng.random() < 0.06 + 0.08 * style:
                g[stand][c] = "E"
        x += span
    # the end: a staircase to a flag column, as in the real games
    top = HEIGHT - ground_rows - 1
    for i in range(min(4, width - x - 6)):
        for r in range(top - i, HEIGHT - ground_rows):
            g[r][width - 10 + i] = "X"
    return ["".join(row) for row in g]


def demo_levels(n: int = N_LEVELS, seed: int = SEED) -> list[Level]:
    return [Level(f"builtin:demo/level-{i + 1:02d}", "demo", _level(random.Random(seed * 1000 + i), i))
            for i in range(n)]
