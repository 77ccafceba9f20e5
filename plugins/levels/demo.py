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


def _gap(g, rng, x, base, state):
    if x - state["last_gap"] <= 6:
        return 0
    span = rng.randint(1, 4)
    for c in range(x, x + span):
        for r in range(base, HEIGHT):
            g[r][c] = "-"
    state["last_gap"] = x + span
    return span + 2


def _pipe(g, rng, x, base, state):
    h = rng.randint(2, 4)
    top = base - h
    g[top][x], g[top][x + 1] = "<", ">"
    for r in range(top + 1, base):
        g[r][x], g[r][x + 1] = "[", "]"
    return 2 + rng.randint(2, 5)


def _blocks(g, rng, x, base, state):
    n = rng.randint(1, 6)
    row = base - 4
    for c in range(x, x + n):
        g[row][c] = rng.choices(["S", "?", "Q"], weights=[6, 2, 1])[0]
    if rng.random() < 0.4 and n >= 3:
        for c in range(x + 1, x + n - 1):
            g[row - 4][c] = rng.choice("SSo?")
    if rng.random() < 0.3:
        g[row - 1][x + rng.randrange(n)] = "o"
    return n + rng.randint(1, 3)


def _stairs(g, rng, x, base, state):
    h = rng.randint(2, 4)
    for i in range(h):
        for r in range(base - 1 - i, base):
            g[r][x + i] = "X"
    down = rng.random() < 0.6
    if down:
        for i in range(h):
            for r in range(base - h + i, base):
                g[r][x + h + i] = "X"
    return (2 * h if down else h) + rng.randint(2, 4)


def _cannon(g, rng, x, base, state):
    top = base - rng.randint(1, 3)
    g[top][x] = "B"
    for r in range(top + 1, base):
        g[r][x] = "b"
    return 1 + rng.randint(2, 4)


def _coins(g, rng, x, base, state):
    n = rng.randint(2, 6)
    row = base - rng.randint(2, 4)
    for c in range(x, x + n):
        g[row][c] = "o"
    return n + 1


def _platform(g, rng, x, base, state):
    n = rng.randint(3, 6)
    row = base - rng.randint(3, 4)
    for c in range(x, x + n):
        g[row][c] = rng.choice("XXS")
    return n + 1


FEATURES = {  # name: (builder, weight in open fields, extra weight in busy levels)
    "flat": (lambda g, rng, x, base, state: rng.randint(2, 7), 3, 0), "gap": (_gap, 2, 2), "pipe": (_pipe, 2, 0),
    "blocks": (_blocks, 3, 0), "stairs": (_stairs, 1, 0), "cannon": (_cannon, 0.6, 0), "coins": (_coins, 1.2, 0),
    "platform": (_platform, 1, 0),
}


def _level(rng: random.Random, index: int) -> list[str]:
    width = rng.randint(150, 240)
    g = [["-"] * width for _ in range(HEIGHT)]
    ground_rows = 2 if rng.random() < 0.35 else 1
    base = HEIGHT - ground_rows  # the first ground row
    for r in range(base, HEIGHT):
        g[r] = ["X"] * width
    style = rng.random()  # 0: open fields, 1: busy
    x, state = 10, {"last_gap": -10}
    names = list(FEATURES)
    weights = [FEATURES[n][1] + FEATURES[n][2] * style for n in names]
    while x < width - 14:
        build = FEATURES[rng.choices(names, weights=weights)[0]][0]
        span = build(g, rng, x, base, state)
        if span == 0:
            continue
        for c in range(x, min(x + span, width - 12)):  # enemies walk on the ground in the open
            if g[base][c] == "X" and g[base - 1][c] == "-" and rng.random() < 0.06 + 0.08 * style:
                g[base - 1][c] = "E"
        x += span
    for i in range(min(4, width - x - 6)):  # the end: a staircase to a flag column, as in the real games
        for r in range(base - 1 - i, base):
            g[r][width - 10 + i] = "X"
    return ["".join(row) for row in g]


def demo_levels(n: int = N_LEVELS, seed: int = SEED) -> list[Level]:
    return [Level(f"builtin:demo/level-{i + 1:02d}", "demo", _level(random.Random(seed * 1000 + i), i))
            for i in range(n)]
