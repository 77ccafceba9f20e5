"""The checker's margin mode (mario.py: the stricter small Mario that `--playable` accepts and
repairs with) and the repairs it leads to: each rule rejects a constructed level the faithful
checker passes, each repair fixes one, and the faithful checker still passes the real levels."""
import numpy as np
import pytest

from gencore_levels import structure
from gencore_levels.mario import hazard_map
from gencore_levels.mario_dead_ends import dead_ends
from gencore_levels.mario_reach import reach
from gencore_levels.playability import Physics, check, repair
from gencore_levels.reader import read_level
from test_levels_units import SMB, SMB_TILES, flat_level, grid, smb_meta, smb_physics, with_columns

# The real SMB levels that pass the margin mode too (3 of 15; 7 before the dead-end rule, which
# 1-2, 1-3, 3-3 and 4-1 fail): it is a test for sampled levels, not a model of the game.
MARGIN_PASSED = ["1-1", "5-1", "6-1"]


def margin_physics() -> Physics:
    return Physics.from_meta(smb_meta(), margin=True)


def ground(width: int = 40, height: int = 11) -> list[str]:
    return flat_level(width, height)  # floor at the bottom row, Mario stands on the row above


def piranha_under_a_ceiling() -> list[str]:
    """A Piranha Plant on a pipe whose head is flush with the floor, under a ceiling 2 tiles
    above the floor: the faithful checker lets Mario walk over it (the plant stays in its pipe
    while he is beside it); the margin wants a jump over it, with no room for one."""
    rows = flat_level(width=30, height=8)
    rows[4], rows[6], rows[7] = "S" * 30, "-" * 13 + "E" + "-" * 16, "X" * 12 + "<>" + "X" * 16
    return rows


EDGE_CASES = {  # name: (level, the repair's largest change in tiles)
    # a one-tile block over a 10-tile gap: the faithful jump lands on it, the margin does not
    "lone block over a gap": (with_columns(with_columns(ground(), range(14, 24), 10, "-"), [18], 7, "S", bottom=8), 8),
    # a 7-tile gap: a leap of 8 columns from take-off to landing
    "leap of 8 columns": (with_columns(ground(), range(14, 21), 10, "-"), 4),
    # a 4-tile climb onto a one-tile column (the margin climbs 4 only onto a floor 2 tiles wide)
    "4-tile climb onto one tile": (with_columns(ground(), [12], 6, "X"), 1),
    # a 4-tile climb onto a plateau with 2 tiles of floor before it (the margin wants a run-up of 2)
    "4-tile climb without a run-up": (with_columns(ground(), range(4, 40), 6, "X"), 1),
    # a 3-tile climb under a ceiling that leaves small Mario's box just enough room
    "climb under a ceiling": (with_columns(with_columns(ground(), range(14, 40), 7, "X"), range(0, 14), 5, "S",
                                           bottom=6), 6),
    "Piranha Plant under a ceiling": (piranha_under_a_ceiling(), 2),
}


def hurdle_under_blocks(free_rows: int) -> list[str]:
    """A 3-tile block stack with a row of blocks `free_rows` rows above its top: small Mario's
    arc over the stack passes under the row (the SMB2J level the agent lost in the last session)."""
    return with_columns(with_columns(ground(), range(14, 17), 7, "X"), range(8, 24), 7 - free_rows - 1, "S",
                        bottom=7 - free_rows)


def test_overhang_over_a_hurdle_is_rejected_and_repaired_by_lifting_the_blocks():
    """The margin's 26-px box keeps most of a tile between a jump's arc and an overhanging row of
    blocks: 2 free rows over a 3-tile stack is too few, 3 is enough. The repair removes the blocks
    hanging over the way, not the stack."""
    faithful, margin = smb_physics(), margin_physics()
    assert check(grid(hurdle_under_blocks(3)), margin).passed
    level = grid(hurdle_under_blocks(2))
    assert check(level, faithful).passed, "the faithful checker passes it"
    assert not check(level, margin).passed, "the margin mode rejects it"
    idx = structure.indices(smb_meta())
    fixed = np.array(repair(level.tolist(), margin, idx), dtype=np.uint8)
    assert check(fixed, margin).passed and check(fixed, faithful).passed
    changed = np.argwhere(fixed != level)
    assert 0 < len(changed) <= 5 and (changed[:, 0] == 4).all()  # only blocks of the overhanging row went
    assert (fixed[7:10, 14:17] == level[7:10, 14:17]).all()  # the stack stays


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_margin_rejects_each_edge_of_physics_case_and_repair_fixes_it(name):
    rows, most_changed = EDGE_CASES[name]
    faithful, margin = smb_physics(), margin_physics()
    level = grid(rows)
    assert check(level, faithful).passed, "the faithful checker passes it"
    assert not check(level, margin).passed, "the margin mode rejects it"
    idx = structure.indices(smb_meta())
    fixed = np.array(repair(level.tolist(), margin, idx), dtype=np.uint8)
    assert check(fixed, margin).passed and check(fixed, faithful).passed
    assert structure.malformed(fixed[None], idx)[0] == 0
    assert 0 < int((fixed != level).sum()) <= most_changed  # local: no content deleted wholesale


def test_stepping_block_repair_lowers_a_climb():
    """A 5-tile wall (no jump climbs it) gets one block in front, as SMB's stairs: a 4-tile climb
    onto its top, 2 tiles wide, which the margin allows."""
    wall = with_columns(ground(), range(12, 14), 5, "X")
    margin = margin_physics()
    assert not check(grid(wall), smb_physics()).passed
    fixed = np.array(repair(grid(wall).tolist(), margin, structure.indices(smb_meta())), dtype=np.uint8)
    changed = np.argwhere(fixed != grid(wall))
    assert len(changed) == 1 and SMB_TILES[fixed[tuple(changed[0])]] == "X" and changed[0][0] == 9
    assert check(fixed, margin).passed


def test_margin_passes_plain_levels_and_3_of_the_15_real_ones():
    """(test_levels_units.py checks that the faithful checker still passes the real levels.)"""
    margin = margin_physics()
    assert check(grid(ground()), margin).passed
    assert check(grid(with_columns(ground(), range(14, 20), 10, "-")), margin).passed  # a 6-tile gap
    assert check(grid(with_columns(ground(), range(12, 40), 6, "X")), margin).passed  # a 4-tile climb, with a run-up
    passed = [p.stem.removeprefix("mario-") for p in sorted(SMB.glob("mario-*.txt"))
              if check(grid(read_level(p).rows), margin).passed]
    assert passed == MARGIN_PASSED


# -- dead ends: a stretch of floor Mario runs along to where only turning back leads on ---------------
def pocket_under_a_ceiling() -> list[str]:
    """A row of blocks 3 rows over the floor, over a pit too wide to jump with it overhead: the
    way is on top of the blocks; the floor under them ends at the pit (SMB2J's --playable loss)."""
    rows = with_columns(ground(), range(10, 31), 6, "S", bottom=7)
    return with_columns(rows, range(20, 28), 10, "-")


def capped_climb() -> list[str]:
    """A 4-tile wall under a row of `Q` blocks, one of them on its top: the way is up a platform
    of 3 blocks before them and along the row; the floor under the row ends at the wall (SMB2J's
    raw loss: a 4-tile pipe under a row of blocks)."""
    rows = with_columns(ground(), range(20, 22), 6, "X")
    rows = with_columns(rows, range(14, 21), 5, "Q", bottom=6)
    return with_columns(rows, range(8, 11), 6, "Q", bottom=7)


@pytest.mark.parametrize("build", [pocket_under_a_ceiling, capped_climb])
def test_margin_rejects_a_dead_end_and_repair_fixes_it(build):
    faithful, margin = smb_physics(), margin_physics()
    level = grid(build())
    assert check(level, faithful).passed, "the faithful checker passes it"
    hazard = hazard_map(level, margin.enemy_map, margin.cannon_top, margin.pipe_top, True)
    graph: dict = {}
    assert reach(margin.solid_map[level], hazard, margin=True, graph=graph)[0], "the margin's jumps get through"
    stuck = dead_ends(graph)
    assert len(stuck) and set(stuck[:, 0].tolist()) == {9} and stuck[:, 1].max() == 19  # the floor up to the pit / wall
    result = check(level, margin, trace=True)
    assert not result.passed and result.path[-1] == (9, 19), "the margin mode rejects it, where the dead end is"
    idx = structure.indices(smb_meta())
    fixed = np.array(repair(level.tolist(), margin, idx), dtype=np.uint8)
    assert check(fixed, margin).passed and check(fixed, faithful).passed
    assert structure.malformed(fixed[None], idx)[0] == 0
    assert 0 < int((fixed != level).sum()) <= 9


def dip(width: int) -> list[str]:
    """A dip 4 tiles deep in a raised floor, `width` tiles wide (as between 1-1's last staircases)."""
    return with_columns(with_columns(ground(), range(0, 16), 6, "X"), range(16 + width, 40), 6, "X")


def test_short_run_ups_and_dips_are_no_dead_ends():
    """A step back of 2 tiles for a run-up is part of the way on (a 3-tile hurdle right after a
    stretch of floor), and so is a dip 2 tiles wide, too narrow for the margin's run-up out of it
    (the agent hops out of 1-1's); 3 tiles wide, it is a dead end."""
    faithful, margin = smb_physics(), margin_physics()
    assert check(grid(hurdle_under_blocks(3)), margin).passed
    assert check(grid(dip(2)), faithful).passed and check(grid(dip(2)), margin).passed
    result = check(grid(dip(3)), margin, trace=True)
    assert check(grid(dip(3)), faithful).passed and not result.passed and result.path[-1] == (9, 18)
