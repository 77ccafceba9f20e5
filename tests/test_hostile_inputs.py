"""Hostile input through the CLI, for every loader and every kind of artefact: decompression
bombs, truncated and disguised files, odd file names, symlink loops, folders where files belong,
devices, oversized files, tampered and foreign run files, and read-only or full outputs.

Each case (scripts/hostile_table.py holds the catalogue) must end with exit code 2 and exactly
one error line on stderr, naming the file or option; no traceback, and no output left behind."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import load_script

hostile = load_script("hostile_table")


@pytest.fixture(scope="session")
def hostile_runs(workdir, tiny_runs) -> dict[str, Path]:
    return hostile.make_runs(workdir / "hostile", images=tiny_runs["vae"])


def test_the_catalogue_is_broad():
    assert len(hostile.CASES) >= 30
    assert len({case.kind + case.command for case in hostile.CASES}) == len(hostile.CASES)
    commands = {case.command.split()[1] for case in hostile.CASES}
    assert {"train", "reconstruct", "interpolate", "score", "denoise", "sample", "export"} <= commands


@pytest.mark.parametrize("case", hostile.CASES, ids=[f"{i:02d}-{c.kind[:40]}" for i, c in enumerate(hostile.CASES)])
def test_hostile_input_is_one_line_and_exit_2(case, hostile_runs, tmp_path):
    outcome = hostile.run_case(case, tmp_path, hostile_runs)
    assert outcome.exit_code == 2, outcome.stderr
    assert not outcome.traceback, outcome.stderr
    gen_lines = [line for line in outcome.stderr.splitlines() if line.startswith("gen: ")]
    assert gen_lines == [outcome.error_line] and outcome.error_line.startswith("gen: error: "), outcome.stderr
    assert outcome.names in outcome.error_line, (outcome.names, outcome.error_line)
    assert not outcome.leftovers, outcome.leftovers
    assert Path("/dev/full").is_char_device()  # writing to it must never replace the device
