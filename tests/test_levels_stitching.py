"""Raw stitched levels (no --playable) on the shipped SMB run stay completable: stitching tests each
step with the checker's margin mode on the level cut to the length asked for, from an anchor Mario
is known to reach. Before (the last 4 windows tested as a bare level, uncut), 7 of these 10 levels
passed the margin checker and 8 the faithful one (bench/results/levels_stitch_anchor-smb-*.log)."""
import json

import numpy as np
import pytest

from conftest import gen
from gencore_levels.playability import Physics, check
from gencore_levels.reader import read_level


def test_pretrained_smb_raw_150_column_levels_pass_the_margin_checker(tmp_path):
    from gencore.runs import pretrained_runs

    if "smb" not in pretrained_runs():
        pytest.skip("no pretrained smb run in this checkout")
    meta = json.loads((pretrained_runs()["smb"] / "config.json").read_text())["data"]["meta"]
    result = gen("sample", "-r", "pretrained:smb", "--n", "10", "--width", "150", "--seed", "1",
                 "-o", tmp_path / "raw", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    index = {ch: i for i, ch in enumerate(meta["tiles"])}
    levels = [np.array([[index[ch] for ch in row] for row in read_level(path).rows], dtype=np.uint8)
              for path in sorted((tmp_path / "raw").glob("*.txt"))]
    assert len(levels) == 10 and all(g.shape[1] == 150 for g in levels)
    margin = Physics.from_meta(meta, margin=True)
    passed = [check(g, margin).passed for g in levels]
    assert all(passed), passed
