"""The levels domain's parts, without training: reader, corpus figures, checker, repair,
structure rules, decoding, tile-pattern KL, labels and rendering. The VGLC levels are the ones
the package ships (builtin:smb, ...): no ../shared needed."""
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gencore.errors import GenError
from gencore_levels import decoding, structure
from gencore_levels import tiles as T
from gencore_levels.corpus import builtin_folder
from gencore_levels.demo import demo_levels
from gencore_levels.labels import parse_elements
from gencore_levels.loading import load_training
from gencore_levels.mario import hazard_map
from gencore_levels.metrics import duplicate_rate, tpkl
from gencore_levels.playability import Physics, check, repair
from gencore_levels.reader import discover, read_level

SMB_TILES = list(T.profiles()["smb"]["tiles"])
SMB = builtin_folder("smb")
ISSUE_LEVEL = Path(__file__).parent / "data" / "issue22_pipe-0001.txt"  # issue 22: --playable, yet unfinishable
# The real SMB levels Baumgarten's A* agent finished in bench/levels_quality.py, and the ones
# that are finishable in the game but not as VGLC transcribes them: 2-1 ends in a 10-tile wall
# (VGLC's flagpole), 5-3 and 6-3 need their moving lifts, which VGLC leaves out.
AGENT_FINISHED = ["1-1", "1-2", "3-1", "4-1", "4-2", "5-1", "6-1", "6-2", "7-1", "8-1"]  # best of 2 tries
NOT_AS_TRANSCRIBED = ["2-1", "5-3", "6-3"]


def smb_meta() -> dict:
    legend = T.profiles()["smb"]["tiles"]
    physics = T.project_physics("smb")
    return {"tiles": SMB_TILES, "empty": "-", "ground": "X", "legend": legend, "physics": physics,
            "pipes": T.profiles()["smb"]["pipes"], "cannons": T.profiles()["smb"]["cannons"],
            "roles": T.tile_roles(legend, physics)}


def smb_physics() -> Physics:
    return Physics.from_meta(smb_meta())


def grid(rows: list[str]) -> np.ndarray:
    return np.array([[SMB_TILES.index(ch) for ch in row] for row in rows], dtype=np.uint8)


def flat_level(width: int = 30, height: int = 6) -> list[str]:
    return ["-" * width] * (height - 1) + ["X" * width]


def with_columns(rows: list[str], cols: range, top: int, char: str, bottom: int | None = None) -> list[str]:
    out = [list(r) for r in rows]
    for r in range(top, len(rows) if bottom is None else bottom):
        for c in cols:
            out[r][c] = char
    return ["".join(r) for r in out]


# -- the checker: small Mario of the Mario AI framework ----------------------------------------------
def test_checker_gaps_walls_ceilings_enemies_and_cannons():
    physics = smb_physics()
    assert check(grid(flat_level()), physics).passed
    for width, ok in ((4, True), (8, True), (12, False)):  # a running jump clears 8 tiles, not 12
        gap = with_columns(flat_level(), range(10, 10 + width), 5, "-")
        assert check(grid(gap), physics).passed == ok, width
    for top, ok in ((6, True), (5, False)):  # ground at row 10: a 4-tile wall is climbed, a 5-tile one not
        wall = with_columns(flat_level(height=11), range(12, 14), top, "X")
        assert check(grid(wall), physics).passed == ok, top
    # the same 3-tile step, with a ceiling 2 tiles above the floor over the whole run-up: cut short
    step = with_columns(flat_level(height=11), range(14, 30), 7, "X")
    assert check(grid(step), physics).passed
    assert not check(grid(with_columns(step, range(0, 14), 7, "S", bottom=8)), physics).passed
    two = flat_level()
    two[4] = "-" * 12 + "EE" + "-" * 16  # two enemies: jumped over
    assert check(grid(two), physics).passed
    carpet = flat_level()
    carpet[4] = "-----" + "E" * 20 + "-----"  # a carpet of enemies: no jump clears it
    assert not check(grid(carpet), physics).passed
    cannon = flat_level(height=8)  # Bullet Bills fly along the cannon's top row, here Mario's
    cannon[6] = "-" * 13 + "-B" + "-" * 15
    assert check(grid(cannon), physics).passed  # jumped over, with the tiles beside it
    hazard = hazard_map(grid(cannon), physics.enemy_map, physics.cannon_top, physics.pipe_top)
    assert np.flatnonzero(hazard[6]).tolist() == [12, 13, 15, 16]  # never a resting place
    piranha = flat_level(height=8)  # an enemy on a pipe head is a Piranha Plant: Mario may stand there
    piranha[4], piranha[5], piranha[6] = "-" * 14 + "E" + "-" * 15, "-" * 13 + "<>" + "-" * 15, "-" * 13 + "[]" + "-" * 15
    assert not hazard_map(grid(piranha), physics.enemy_map, physics.cannon_top, physics.pipe_top).any()


def test_checker_passes_every_finishable_real_smb_level_and_fails_the_issue_level():
    physics = smb_physics()
    for name in AGENT_FINISHED:
        assert check(grid(read_level(SMB / f"mario-{name}.txt").rows), physics).passed, name
    for name in NOT_AS_TRANSCRIBED:
        assert not check(grid(read_level(SMB / f"mario-{name}.txt").rows), physics).passed, name
    issue = grid(read_level(ISSUE_LEVEL).rows)
    result = check(issue, physics)
    assert not result.passed and result.furthest < 10
    idx = structure.indices(smb_meta())
    fixed = np.array(repair(issue.tolist(), physics, idx), dtype=np.uint8)
    assert check(fixed, physics).passed and structure.malformed(fixed[None], idx)[0] == 0


def test_demo_corpus_is_playable_and_whole():
    physics = smb_physics()
    idx = structure.indices(smb_meta())
    levels = demo_levels()
    assert len(levels) >= 20 and all(lv.height == 14 and lv.width >= 150 for lv in levels)
    grids = [grid(lv.rows) for lv in levels]
    assert sum(check(g, physics).passed for g in grids) >= 20
    assert all(structure.pipe_errors(g, idx) == 0 for g in grids)
    assert demo_levels()[3].rows == levels[3].rows  # seeded


def test_repair_always_makes_levels_completable_and_whole():
    physics = smb_physics()
    idx = structure.indices(smb_meta())
    rng = random.Random(0)
    failing = 0
    for _ in range(40):
        rows = ["".join(rng.choice("----XXSE[]<>Bbo?") for _ in range(40)) for _ in range(14)]
        g = grid(rows)
        failing += not check(g, physics).passed
        fixed = np.array(repair(g.tolist(), physics, idx), dtype=np.uint8)
        assert check(fixed, physics).passed
        assert structure.malformed(fixed[None], idx)[0] == 0
    assert failing > 30  # the random levels were mostly broken to begin with


def test_decoding_lays_whole_structures_and_limits_enemy_runs():
    meta = {**smb_meta(), "enemy_run_max": 3}
    rules = decoding.rules_of(meta)
    t = {ch: i for i, ch in enumerate(SMB_TILES)}
    logp = np.full((1, len(SMB_TILES), 6, 12), -6.0)  # (N, K, H, W)
    logp[0, t["-"]] = -0.2
    logp[0, t["X"], 5] = 0.0  # the floor
    # a pipe the model half draws: argmax gives "<-" on "[X" (malformed), the pipe tiles are close behind
    logp[0, t["-"], 2:5, 4] = -2.5
    logp[0, t["<"], 2, 4], logp[0, t["["], 3:5, 4] = -0.1, -0.2
    logp[0, t[">"], 2, 5], logp[0, t["-"], 2, 5] = -1.5, -1.0
    logp[0, t["]"], 3:5, 5], logp[0, t["X"], 3:5, 5], logp[0, t["-"], 3:5, 5] = -1.5, -0.7, -2.5
    logp[0, t["B"], 1, 9] = 0.0  # a cannon top in mid-air, its base unlikely
    logp[0, t["E"], 0, 1:9] = 0.0  # a row of eight enemies
    plain = logp.argmax(axis=1).astype(np.uint8)
    idx = structure.indices(meta)
    assert structure.malformed(plain, idx)[0] > 0
    out = decoding.decode(logp, rules)
    assert structure.malformed(out, idx)[0] == 0
    rows = ["".join(SMB_TILES[v] for v in row) for row in out[0]]
    assert rows[2][4:6] == "<>" and rows[3][4:6] == rows[4][4:6] == "[]"  # made whole, not deleted
    assert "EEEE" not in rows[0] and rows[0].count("E") >= 6  # runs of at most 3, most enemies kept


# -- corpus figures from REFERENCE.md §3 ---------------------------------------------------------
def test_smb_windows_and_element_frequencies(capsys):
    data = load_training("builtin:smb", {})
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


def test_smb_plus_smb2j_merges_legends_with_a_warning(capsys):
    data = load_training(str(builtin_folder("smb").parent), {"games": "Super Mario Bros,Super Mario Bros 2 (Japan)"})
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


def test_kid_icarus_vertical_and_lode_runner_whole():
    ki = load_training("builtin:kid-icarus", {})
    assert ki.meta["layout"] == "vertical" and tuple(ki.items.shape[1:]) == (6, 16, 16)
    assert ki.class_names == ["hazard", "door", "moving-platform", "fixed-platform"]
    lr = load_training("builtin:lode-runner", {})
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
    assert data.meta["profile"] == "smb" and data.meta["physics"]["model"] == "mario"
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
