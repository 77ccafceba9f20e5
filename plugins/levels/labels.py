"""Labels: the game (folder) of each item, or its element bits (Sarkar et al. 2020)."""
from __future__ import annotations

from typing import Any

import numpy as np

from gencore import console
from gencore.errors import GenError

from . import tiles as T

MIN_BIT_SHARE = 0.01  # a bit on (or off) in fewer items than this cannot be learnt: it is dropped


def element_table(profile: str | None, vocab: list[str]) -> dict[str, list[int]]:
    """Element name -> the vocabulary indices whose presence sets the bit."""
    if profile is None or not T.profiles()[profile].get("elements"):
        return {}
    out = {}
    for name, chars in T.profiles()[profile]["elements"].items():
        idx = [vocab.index(c) for c in chars if c in vocab]
        if idx:
            out[name] = idx
    return out


def element_bits(grids: np.ndarray, table: dict[str, list[int]]) -> np.ndarray:
    """(N, H, W) tile indices -> (N, B) 0/1 element bits, in the table's order."""
    flat = grids.reshape(grids.shape[0], -1)
    k = int(flat.max()) + 1 if flat.size else 1
    k = max(k, max((max(v) for v in table.values()), default=0) + 1)
    present = np.zeros((flat.shape[0], k), dtype=bool)
    rows = np.repeat(np.arange(flat.shape[0]), flat.shape[1])
    present[rows, flat.reshape(-1)] = True
    return np.stack([present[:, idx].any(axis=1) for idx in table.values()], axis=1).astype(np.float32) \
        if table else np.zeros((flat.shape[0], 0), np.float32)


def choose_labels(mode: str, groups: list[str], profile: str | None, table: dict[str, list[int]],
                  bits: np.ndarray) -> str:
    if mode != "auto":
        return mode
    if len(groups) > 1:
        return "folder"
    if table and bits.size:
        share = bits.mean(axis=0)
        if ((share >= MIN_BIT_SHARE) & (share <= 1 - MIN_BIT_SHARE)).any():
            return "elements"
    return "folder"


def make_conditions(mode: str, groups: list[str], item_groups: np.ndarray, table: dict[str, list[int]],
                    bits: np.ndarray, profile: str | None) -> tuple[np.ndarray | None, list[str], dict[str, Any]]:
    """Conditions (N, K), class names, and what the run must remember about them."""
    if mode == "none":
        return None, [], {}
    if mode == "folder":
        cond = np.eye(len(groups), dtype=np.float32)[item_groups]
        return cond, list(groups), {}
    if not table:
        known = ", ".join(n for n, p in T.profiles().items() if p.get("elements"))
        raise GenError("no element bits are known for this game" + (f" (profile {profile!r})" if profile else
                       " (its tiles fit none of the project's game profiles)"), where="--labels",
                       hint=f"use --labels folder; element bits exist for the {known} profiles")
    share = bits.mean(axis=0)
    keep = [(name, float(s)) for name, s in zip(table, share)]
    dropped = [name for name, s in keep if not (MIN_BIT_SHARE <= s <= 1 - MIN_BIT_SHARE)]
    if dropped:
        console.warn(f"element bits {', '.join(dropped)} are (almost) always or never set in this corpus; "
                     "leaving them out of the conditions")
    names = [name for name, s in keep if name not in dropped]
    if not names:
        raise GenError("no element bit varies across this corpus, so there is nothing to condition on",
                       where="--labels", hint="use --labels folder or --labels none")
    cols = [list(table).index(n) for n in names]
    info = {"elements": {n: table[n] for n in names},
            "element_share": {n: round(float(share[list(table).index(n)]), 4) for n in names}}
    console.info("element bits: " + ", ".join(f"{n} {info['element_share'][n]:.0%}" for n in names))
    return bits[:, cols], names, info


def parse_elements(text: str, class_names: list[str], aliases: dict[str, str]) -> list[float]:
    """`--class enemy+pipe` (or `none`) -> a multi-hot vector over the run's element bits."""
    vector = [0.0] * len(class_names)
    if text.strip().lower() in ("none", "empty", "-"):
        return vector
    for part in text.split("+"):
        name = part.strip()
        name = aliases.get(name, aliases.get(name.lower(), name))
        if name in class_names:
            vector[class_names.index(name)] = 1.0
        elif name.isdigit() and int(name) < len(class_names):
            vector[int(name)] = 1.0
        else:
            raise GenError(f"unknown element {part!r}; this run's element bits are {', '.join(class_names)}",
                           where="--class", hint="join element names with +, e.g. --class "
                                                 f"{'+'.join(class_names[:2])}, or use --class none")
    return vector


def required_tiles(meta: dict[str, Any], bits) -> list[list[int]]:
    """The tile lists of the elements a condition vector asks for (its bits that are on, in the
    run's element order); [] for runs not conditioned on element bits."""
    table = meta.get("elements") or {}
    if bits is None or meta.get("labels") != "elements" or len(bits) != len(table):
        return []
    return [list(tiles) for tiles, on in zip(table.values(), bits) if float(on) > 0.5]
