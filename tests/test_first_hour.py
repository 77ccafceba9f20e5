"""The first hour: shipped runs in `gen runs` and in the hints, `latest:DOMAIN`, legible previews,
files that respect the umask, `--threads`, and "did you mean"."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY, assert_one_line_error, gen
from PIL import Image

from gencore.runs import pretrained_runs
from gencore.storage import write_text


def test_runs_lists_the_shipped_runs_with_no_local_runs(tmp_path):
    result = gen("runs", "--json", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    names = {row["run"] for row in rows}
    assert {"pretrained:digits", "pretrained:denoiser"} <= names
    assert names == {f"pretrained:{n}" for n in pretrained_runs()}
    assert all(row["status"] == "shipped" for row in rows)
    result = gen("runs", cwd=tmp_path)
    assert result.exit_code == 0 and "pretrained:digits" in result.stdout


def test_no_local_run_names_the_shipped_ones(tmp_path):
    result = gen("sample", "--class", "7", cwd=tmp_path)
    assert_one_line_error(result, "no completed run under ./runs", "-r pretrained:digits", "-r pretrained:denoiser")
    result = gen("sample", "-r", "pretrained:digts", cwd=tmp_path)
    assert_one_line_error(result, "no pretrained run named 'digts'", "did you mean pretrained:digits")


def test_shipped_runs_are_read_only(tmp_path):
    result = gen("train", "images", "--resume", "pretrained:digits", cwd=tmp_path)
    assert_one_line_error(result, "read-only", "--init")
    result = gen("train", "images", *TINY, "-o", pretrained_runs()["digits"], cwd=tmp_path)
    assert_one_line_error(result, "read-only")


@pytest.mark.parametrize("columns", [80, 120])
def test_runs_never_wraps_a_path(tmp_path, columns):
    digits = pretrained_runs()["digits"]
    paths = []
    for stem in ("images-vae-20261129-101500-a-long-descriptive-name", "x"):
        shutil.copytree(digits, tmp_path / "runs" / stem)
        paths.append(f"runs/{stem}")
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm", "NO_COLOR": "1"}
    result = subprocess.run([sys.executable, "-m", "gencore", "runs"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for path in [*paths, "pretrained:digits", "pretrained:denoiser"]:
        assert any(path in line for line in result.stdout.splitlines()), (path, result.stdout)


def _local_runs(tmp_path: Path) -> Path:
    """An images run (a copy of the shipped digits), then a newer tiny levels run."""
    shutil.copytree(pretrained_runs()["digits"], tmp_path / "runs" / "digits")
    result = gen("train", "levels", "--epochs", "1", "--width", "8", "--latent", "4", "--limit", "40",
                 "--checkpoint-every", "0", "-o", tmp_path / "runs" / "levels", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    return tmp_path


def test_latest_by_domain_and_the_hint_across_domains(tmp_path):
    work = _local_runs(tmp_path)
    result = gen("sample", "--class", "7", "--n", "2", "-o", work / "s", cwd=work)
    assert_one_line_error(result, "--class", "the latest run is a levels run", "-r latest:images")
    result = gen("sample", "-r", "latest:images", "--class", "7", "--n", "2", "-o", work / "s", cwd=work)
    assert result.exit_code == 0, result.stderr
    assert "runs/digits" in result.stderr
    result = gen("sample", "-r", "latest:midi", "--n", "2", cwd=work)
    assert_one_line_error(result, "no completed midi run", "gen train midi")


def test_grid_is_legible_and_samples_native_unless_scaled(tmp_path):
    result = gen("sample", "-r", "pretrained:digits", "--class", "3", "--n", "1", "-o", tmp_path / "one", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    with Image.open(tmp_path / "one" / "grid.png") as grid, Image.open(tmp_path / "one" / "3-0000.png") as one:
        assert grid.width >= 256 and one.size == (8, 8)
    result = gen("sample", "-r", "pretrained:digits", "--class", "3", "--n", "2", "--scale", "8",
                 "-o", tmp_path / "big", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    with Image.open(tmp_path / "big" / "3-0001.png") as big:
        assert big.size == (64, 64)
    result = gen("sample", "-r", "pretrained:digits", "--scale", "0", "-o", tmp_path / "bad", cwd=tmp_path)
    assert_one_line_error(result, "--scale")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_atomic_writes_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_text(tmp_path / "a.json", "{}")
        result = gen("sample", "-r", "pretrained:digits", "--class", "1", "--n", "1", "-o", tmp_path / "s", cwd=tmp_path)
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.stderr
    for path in (tmp_path / "a.json", tmp_path / "s" / "grid.png", tmp_path / "s" / "1-0000.png"):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


def test_threads_flag(tmp_path):
    before = torch.get_num_threads()
    try:
        result = gen("--threads", "1", "train", "images", *TINY, "-o", tmp_path / "run", cwd=tmp_path)
        assert result.exit_code == 0, result.stderr
        state = json.loads(next((tmp_path / "run" / "checkpoints").glob("*/train_state.json")).read_text())
        assert state["threads"] == 1
    finally:
        torch.set_num_threads(before)
    result = gen("--threads", "0", "runs", cwd=tmp_path)
    assert_one_line_error(result, "--threads", "must be from 1")


def test_did_you_mean(tmp_path):
    result = gen("train", "level", cwd=tmp_path)
    assert_one_line_error(result, "unknown domain 'level'", "did you mean 'levels'")
    result = gen("sample", "-r", "pretrained:digits", "--clas", "7", cwd=tmp_path)
    assert_one_line_error(result, "no such option --clas", "did you mean '--class'")
