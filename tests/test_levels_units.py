"""The levels domain's parts, without training: reader, corpus figures, checker, repair,
structure rules, tile-pattern KL, labels and rendering."""
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gencore.errors import GenError
from gencore_levels import tiles as T
from gencore_levels.demo import demo_levels
from gencore_levels.labels import parse_elements
from gencore_levels.loading import load_training
from gencore_levels.metrics import duplicate_rate, tpkl
from gencore_levels.playability import Physics, check, repair
from gencore_levels.reader import discover, read_level
from gencore_levels import structure

VGLC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "vglc"
needs_vglc = pytest.mark.skipif(not VGLC.is_dir(), reason="../shared/data/vglc is absent")
SMB_TILES = list(T.profiles()["smb"]["tiles"])


def smb_physics(source: str = "ours") -> Physics:
    phys = T.project_physics("smb") if source == "ours" else T.read_paths_folder(VGLC / "Super Mario Bros" / "Paths")
    roles = T.tile_roles(T.profiles()["smb"]["tiles"], phys)
    return Physics([roles[c] for c in SMB_TILES], phys["jumps"])


def grid(rows: list[str]) -> list[list[int]]:
    return [[SMB_TILES.index(ch) for ch in row] for row in rows]


def flat_level(width: int = 30, height: int = 6) -> list[str]:
    return ["-" * width] * (height - 1) + ["X" * width]


def with_columns(rows: list[str], cols: range, top: int, char: str) -> list[str]:
    out = [list(r) for r in rows]
    for r in range(top, len(rows)):
        for c in cols:
            out[r][c] = char
    return ["".join(r) for r in out]


# -- the checker ------------------------------------------------------------------------------
def test_checker_flat_gaps_walls_and_enemies():
    physics = smb_physics()
    assert check(grid(flat_level()), physics).passed
    gap4 = with_columns(flat_level(), range(10, 14), 5, "-")
    assert check(grid(gap4), physics).passed
    gap12 = with_columns(flat_level(), range(10, 22), 5, "-")
    result = check(grid(gap12), physics)
    assert not result.passed and 0.3 < result.fraction < 0.7  # mid-air cells count as reached
    wall4 = with_columns(flat_level(height=10), range(12, 14), 5, "X")  # 4 tiles above the standing row
    assert check(grid(wall4), physics).passed
    wall6 = with_columns(flat_level(height=10), range(12, 14), 3, "X")
    assert not check(grid(wall6), physics).passed
    enemies = flat_level()
    enemies[4] = "-----" + "E" * 20 + "-----"  # enemies are passable
    assert check(grid(enemies), physics).passed
    ceiling = with_columns(flat_level(height=10), range(8, 12), 0, "X")  # a wall up to the top
    assert not check(grid(ceiling), physics).passed


def test_demo_corpus_is_playable_and_whole():
    physics = smb_physics()
    meta = {"tiles": SMB_TILES, "empty": "-", "ground": "X", "pipes": T.profiles()["smb"]["pipes"],
            "cannons": T.profiles()["smb"]["cannons"], "roles": T.tile_roles(T.profiles()["smb"]["tiles"], None)}
    idx = structure.indices(meta)
    levels = demo_levels()
    assert len(levels) >= 20 and all(lv.height == 14 and lv.width >= 150 for lv in levels)
    grids = [np.array(grid(lv.rows), dtype=np.uint8) for lv in levels]
    assert all(check(g, physics).passed for g in grids)
    assert all(structure.pipe_errors(g, idx) == 0 for g in grids)
    assert demo_levels()[3].rows == levels[3].rows  # seeded


def test_repair_always_makes_levels_completable():
    physics = smb_physics()
    meta = {"tiles": SMB_TILES, "empty": "-", "ground": "X", "pipes": T.profiles()["smb"]["pipes"],
            "cannons": T.profiles()["smb"]["cannons"], "roles": T.tile_roles(T.profiles()["smb"]["tiles"], None)}
    idx = structure.indices(meta)
    rng = random.Random(0)
    failing = 0
    for _ in range(40):
        rows = ["".join(rng.choice("----XXSE[]<>Bbo?") for _ in range(40)) for _ in range(14)]
        g = grid(rows)
        failing += not check(g, physics).passed
        fixed = repair(g, physics, idx)
        assert check(fixed, physics).passed
    assert failing > 30  # the random levels were mostly broken to begin with


@needs_vglc
def test_real_smb_levels_mostly_pass_with_vglc_and_project_arcs():
    for source in ("vglc", "ours"):
        physics = smb_physics(source)
        passed = [check(grid(read_level(p).rows), physics).passed for p in sorted((VGLC / "Super Mario Bros").glob("*.txt"))]
        assert sum(passed) >= 13, (source, passed)


# -- corpus figures from REFERENCE.md §3 ---------------------------------------------------------
@needs_vglc
def test_smb_windows_and_element_frequencies(capsys):
    data = load_training(str(VGLC / "Super Mario Bros"), {})
    assert tuple(data.items.shape) == (2698, 13, 14, 16)
    assert data.multi_label and data.class_names == ["enemy", "pipe", "coin", "breakable", "question"]
    share = data.conditions.mean(dim=0).tolist()
    for got, want in zip(share, [0.68, 0.33, 0.31, 0.43, 0.13]):
        assert abs(got - want) < 0.01
    assert abs(float((data.conditions.sum(dim=1) == 0).float().mean()) - 0.089) < 0.005
    grids = data.items.argmax(dim=1).numpy()
    assert round(duplicate_rate(grids) * len(grids)) == 192
    empty = data.meta["tiles"].index("-")
    assert 0.85 < float((grids == empty).mean()) < 0.87
    weights = data.class_weights
    assert weights[empty] < 1 < weights[data.meta["tiles"].index("E")]


@needs_vglc
def test_smb_plus_smb2j_merges_legends_with_a_warning(capsys):
    data = load_training(str(VGLC), {"games": "Super Mario Bros,Super Mario Bros 2 (Japan)"})
    err = capsys.readouterr().err
    assert "'B', 'b'" in err and "lacks" in err
    assert data.class_names == ["Super Mario Bros", "Super Mario Bros 2 (Japan)"]
    assert 6800 < data.items.shape[0] < 7000 and tuple(data.items.shape[2:]) == (16, 16)
    # rows of different heights (12 to 16) are aligned at the bottom: padding is sky on top
    grids = data.items.argmax(dim=1).numpy()
    assert (grids[:, -1] == data.meta["tiles"].index("X")).mean() > 0.6
    assert (grids[:, 0] == data.meta["tiles"].index("-")).mean() > 0.97


def test_rows_of_different_heights_align_at_the_bottom(tmp_path):
    (tmp_path / "a.txt").write_text("----\n-E--\nXXXX\n" * 1 + "")
    (tmp_path / "b.txt").write_text("-----\n-----\n--o--\n-----\nXX-XX\n")
    (tmp_path / "legend.json").write_text(json.dumps({"tiles": T.profiles()["smb"]["tiles"]}))
    data = load_training(str(tmp_path), {"window": 4, "labels": "none"})
    tiles = data.meta["tiles"]
    first = data.items.argmax(dim=1)[0].numpy()
    assert ["".join(tiles[t] for t in row) for row in first] == ["----", "----", "----", "-E--", "XXXX"]
    assert data.conditions is None and tuple(data.items.shape[1:]) == (len(tiles), 5, 4)


@needs_vglc
def test_kid_icarus_vertical_and_lode_runner_whole():
    ki = load_training(str(VGLC / "Kid Icarus"), {})
    assert ki.meta["layout"] == "vertical" and tuple(ki.items.shape[1:]) == (6, 16, 16)
    assert ki.class_names == ["hazard", "door", "moving-platform", "fixed-platform"]
    lr = load_training(str(VGLC / "Lode Runner"), {})
    assert lr.meta["layout"] == "whole" and tuple(lr.items.shape) == (150, 8, 22, 32)
    assert lr.meta["physics"] is None and not lr.meta["playable"]


def test_vglc_processed_layout_and_inferred_vocabulary(tmp_path, capsys):
    game = tmp_path / "My Game"
    (game / "Processed").mkdir(parents=True)
    (game / "Original").mkdir()
    for i, lv in enumerate(demo_levels(3)):
        (game / "Processed" / f"l{i}.txt").write_text("\n".join(lv.rows) + "\n")
    (game / "Original" / "ignored.txt").write_text("not a level\x00")
    groups = discover(str(game))
    assert [g.name for g in groups] == ["My Game"] and len(groups[0].files) == 3
    data = load_training(str(game), {"window": "8"})
    assert "no legend" in capsys.readouterr().err  # inferred, with a warning
    assert data.meta["profile"] == "smb" and data.meta["physics"]["source"].endswith("smb_physics.json")
    (game / "legend.json").write_text(json.dumps({"tiles": T.profiles()["smb"]["tiles"]}))
    load_training(str(game / "Processed"), {"window": 8})
    assert "no legend" not in capsys.readouterr().err  # found one folder up


# -- structure, metrics, labels -------------------------------------------------------------------
def test_structure_rules():
    meta = {"tiles": SMB_TILES, "empty": "-", "ground": "X", "pipes": T.profiles()["smb"]["pipes"],
            "cannons": {}, "roles": T.tile_roles(T.profiles()["smb"]["tiles"], None)}
    idx = structure.indices(meta)
    good = np.array([grid(["-<>-", "-[]-", "XXXX"])], dtype=np.uint8)
    assert structure.validity(good, idx, lenient=False).all()
    for rows in (["-<--", "-[]-", "XXXX"], ["----", "-[]-", "XXXX"], ["-<>-", "-[--", "XXXX"], ["-<>-", "-[]-", "----"]):
        assert not structure.validity(np.array([grid(rows)], dtype=np.uint8), idx, lenient=False).any(), rows
    cut = np.array([grid(["--<", "--[", "XXX"])], dtype=np.uint8)
    assert structure.validity(cut, idx, lenient=True).all() and not structure.validity(cut, idx, lenient=False).any()
    closed = structure.remove_broken_pipes(cut[0], idx)
    assert structure.pipe_errors(closed, idx) == 0 and (closed[-1] == SMB_TILES.index("X")).all()
    messy = np.array(grid(["-<<>->", "-[[]-]", "XX[]X]"]), dtype=np.uint8)
    fixed = structure.remove_broken_pipes(messy, idx)
    assert structure.pipe_errors(fixed, idx) == 0
    assert ["".join(SMB_TILES[t] for t in row) for row in fixed] == ["--<>--", "--[]--", "XX[]XX"]


def test_tile_pattern_kl():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, (50, 6, 8)).astype(np.uint8)
    b = np.zeros((50, 6, 8), np.uint8)
    assert tpkl(a, a, 2, 3) == pytest.approx(0.0, abs=1e-9)
    assert tpkl(a, b, 3, 3) == pytest.approx(tpkl(b, a, 3, 3))
    assert tpkl(a, b, 2, 3) > 1.0


def test_parse_elements():
    names = ["enemy", "pipe", "coin", "breakable", "question"]
    aliases = T.profiles()["smb"]["aliases"]
    assert parse_elements("enemy+pipe", names, aliases) == [1, 1, 0, 0, 0]
    assert parse_elements("?-block+coin", names, aliases) == [0, 0, 1, 0, 1]
    assert parse_elements("none", names, aliases) == [0] * 5
    with pytest.raises(GenError, match="unknown element 'lava'"):
        parse_elements("enemy+lava", names, aliases)


def test_legend_errors(tmp_path):
    bad = tmp_path / "a.json"
    for text in ("{not json", '{"tiles": []}', '{"tiles": {"XX": ["solid"]}}', '[1, 2]', '{"tiles": {"X": 3}}'):
        bad.write_text(text)
        with pytest.raises(GenError, match="malformed legend"):
            T.read_legend(bad)


def test_plugin_imports_without_torch():
    code = "import sys, gencore_levels; assert gencore_levels.plugin.name == 'levels'; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
