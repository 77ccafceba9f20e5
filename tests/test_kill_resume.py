"""Crash safety end to end: `gen train` in a real subprocess is SIGKILLed at seeded random points,
some of them while a checkpoint is being written, and resumed each time with --resume. No
checkpoint may ever be corrupt, and the final weights must equal an uninterrupted run's, bit for
bit. The harness is scripts/kill_resume.py, which runs 20 kills and more for the record."""
from __future__ import annotations

from conftest import load_script


def test_five_sigkills_resume_to_the_uninterrupted_weights_bit_for_bit(tmp_path):
    kill_resume = load_script("kill_resume")
    summary = kill_resume.kill_and_resume(tmp_path, kills=5, seed=0, epochs=3)
    log = (tmp_path / "gen.log").read_text(errors="replace")[-3000:]
    assert summary.kills == 5, (summary.lives, log)
    assert summary.mid_write >= 1, summary.lives  # the odd kills wait for a staged checkpoint
    assert summary.checkpoints_checked >= 5 and not summary.corrupt, summary.corrupt
    assert summary.identical and all(summary.identical.values()), summary.text()
    assert "Traceback" not in log
