"""Atomic writes, disk-full and permission errors, and continuing a stopped run."""
import errno
import json
import os

import pytest
from PIL import Image

from conftest import TINY, assert_one_line_error, gen
from gencore.errors import GenError
from gencore.storage import write_bytes


def test_failed_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "config.json"
    write_bytes(target, b"old")

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(GenError) as caught:
        write_bytes(target, b"new")
    assert "no space left" in caught.value.line() and str(target) in caught.value.line()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temp file left behind


def test_disk_full_while_sampling_is_one_line_and_leaves_nothing(tiny_runs, tmp_path, monkeypatch):
    def full_disk(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    out = tmp_path / "samples"
    result = gen("sample", "-r", tiny_runs["vae"], "--class", "2", "--n", "4", "-o", out, cwd=tmp_path)
    assert_one_line_error(result, "no space left on device")
    assert not out.exists()


def test_permission_denied_on_run_folder(tmp_path, monkeypatch):
    real_mkdir = os.mkdir

    def denied(path, *args, **kwargs):
        if "denied" in str(path):
            raise OSError(errno.EACCES, "Permission denied", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", denied)
    result = gen("train", "images", *TINY, "-o", tmp_path / "denied" / "run", cwd=tmp_path)
    assert_one_line_error(result, "permission denied")


def test_writing_to_dev_full_is_a_clear_error():
    from gencore.storage import append_line

    with pytest.raises(GenError) as caught:
        append_line("/dev/full", "{}")
    assert "no space left on device" in caught.value.line()


def test_resume_continues_to_more_epochs(tmp_path):
    out = tmp_path / "run"
    assert gen("train", "images", *TINY, "-o", out, cwd=tmp_path).exit_code == 0
    result = gen("train", "images", "--resume", out, "--epochs", "4", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "resuming from" in result.stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["event"] == "epoch"] == [1, 2, 3, 4]
    assert (out / "complete.json").is_file()
    assert_one_line_error(gen("train", "images", *TINY, "-o", out, cwd=tmp_path), "not empty")


def test_max_minutes_stops_at_an_epoch_end_and_the_run_trains_on(tmp_path):
    out = tmp_path / "run"
    tiny = [a for a in TINY if a not in ("--epochs", "2")]
    result = gen("train", "images", *tiny, "--epochs", "40", "--max-minutes", "0.0001", "-o", out, cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "--max-minutes" in result.stderr and (out / "complete.json").is_file()
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["event"] == "epoch"]
    assert epochs == [1]
    result = gen("train", "images", "--resume", out, "--epochs", "3", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "epoch 2" in result.stderr


def test_ctrl_c_saves_a_checkpoint_that_resumes(tmp_path):
    """Robust wherever the suite runs: a suite started in the background of a non-interactive
    shell (as CI agents do) passes SIGINT on as ignored, and Python then never raises
    KeyboardInterrupt; the trainer gets the default disposition back, as a terminal gives it.
    Robust under load: stderr goes to a file, the signal waits for a checkpoint past step 0
    however long start-up takes, and a trainer that ends before the signal fails at once."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "gencore", "train", "images", "--epochs", "200", "--width", "8",
                                 "--latent", "4", "--limit", "300", "--patience", "1000", "-o", str(out)],
                                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr,
                                env={**os.environ, "OMP_NUM_THREADS": "1"},
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.time() + 900
            # Past the step-0 checkpoint, so the signal lands in training (--patience keeps it going).
            while not list((out / "checkpoints").glob("step-0*[1-9]*")) and proc.poll() is None \
                    and time.time() < deadline:
                time.sleep(0.2)
            assert proc.poll() is None, f"the trainer ended before the signal: {log.read_text()[-2000:]}"
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=900)
        finally:
            proc.kill()
    err = log.read_text()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    assert not (out / "complete.json").exists()
    result = gen("train", "images", "--resume", out, "--epochs", "6", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "resuming from" in result.stderr and "step-00000000" not in result.stderr
    assert (out / "complete.json").is_file()


def test_resume_auto_starts_then_continues(tmp_path):
    out = tmp_path / "auto"
    out.mkdir()
    (out / "config.json").write_text("{}")  # a start killed before its first checkpoint
    first = gen("train", "images", *TINY, "--resume", "auto", "-o", out, cwd=tmp_path)
    assert first.exit_code == 0 and "resuming" not in first.stderr, first.stderr
    assert "stopped before its first checkpoint; starting it again" in first.stderr
    again = gen("train", "images", *TINY[2:], "--epochs", "3", "--resume", "auto", "-o", out, cwd=tmp_path)
    assert again.exit_code == 0 and "resuming from" in again.stderr, again.stderr
    assert_one_line_error(gen("train", "images", "--resume", "auto", cwd=tmp_path), "-o")
