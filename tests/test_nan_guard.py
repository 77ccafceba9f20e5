"""The NaN/inf guard through the CLI: a non-finite loss rolls training back to the last checkpoint
with half the learning rate, the guard's counters survive an interrupt and --resume, and a loss
that stays non-finite ends in one line and exit code 2 after MAX_ROLLBACKS roll-backs."""
from __future__ import annotations

import json

import pytest

from conftest import TINY, assert_one_line_error, gen
from gencore.models.autoencoder import AutoEncoder
from gencore.training.trainer import MAX_ROLLBACKS


def inject(monkeypatch, *, nan_at=(), nan_from=None, interrupt_at=None):
    """Patch the training forward pass: NaN loss on the given calls (1-based), from `nan_from`
    on, and Ctrl-C on `interrupt_at`. Validation does not go through forward()."""
    calls = {"n": 0}
    real = AutoEncoder.forward

    def forward(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == interrupt_at:
            raise KeyboardInterrupt
        out = real(self, *args, **kwargs)
        if calls["n"] in nan_at or (nan_from is not None and calls["n"] >= nan_from):
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(AutoEncoder, "forward", forward)
    return calls


def last_state(run) -> dict:
    folder = sorted((run / "checkpoints").glob("step-*"))[-1]
    return json.loads((folder / "train_state.json").read_text())


def test_nan_rolls_back_with_half_the_rate_and_the_counters_survive_resume(tmp_path, monkeypatch):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        inject(patch, nan_at={3}, interrupt_at=9)
        first = gen("train", "images", *TINY, "-o", out, cwd=tmp_path)
    assert first.exit_code == 130, first.stderr
    assert "rolled back to step-00000000 with the learning rate scaled by 0.5 (roll-back 1 of" in first.stderr
    interrupted = last_state(out)
    assert (interrupted["nan_rollbacks"], interrupted["lr_scale"]) == (1, 0.5)
    assert interrupted["step"] == 5  # calls 1-2 were steps 1-2; after the roll-back calls 4-8 are steps 1-5

    resumed = gen("train", "images", "--resume", out, cwd=tmp_path)
    assert resumed.exit_code == 0, resumed.stderr
    final = last_state(out)
    assert (final["nan_rollbacks"], final["lr_scale"]) == (1, 0.5) and final["epoch"] == 2
    from gencore.training.settings import lr_at

    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    epoch_rows = [r for r in rows if r["event"] == "epoch"]
    assert [r["epoch"] for r in epoch_rows] == [1, 2]
    total = final["step"]
    assert epoch_rows[-1]["lr"] == pytest.approx(0.5 * lr_at(total, total, 2e-3))


def test_a_loss_that_stays_nan_gives_up_with_one_line(tmp_path, monkeypatch):
    out = tmp_path / "run"
    inject(monkeypatch, nan_from=4)
    result = gen("train", "images", *TINY, "-o", out, cwd=tmp_path)
    assert_one_line_error(result, "--lr", "training diverged", f"after {MAX_ROLLBACKS} roll-backs")
    assert result.stderr.count("rolled back to") == MAX_ROLLBACKS
    state = last_state(out)
    assert state["nan_rollbacks"] == MAX_ROLLBACKS and state["lr_scale"] == 0.5 ** MAX_ROLLBACKS
    assert not (out / "complete.json").exists()


def test_deferred_reads_as_on_a_gpu_roll_back_and_report_the_same_losses(tmp_path, monkeypatch):
    """On a GPU the trainer reads its step results every GPU_READ_EVERY steps: a bad step is
    found at the next read and rolls back all the same, and the epoch means do not change."""
    from gencore.training import trainer

    clean = gen("train", "images", *TINY, "-o", tmp_path / "each", cwd=tmp_path)
    assert clean.exit_code == 0, clean.stderr
    monkeypatch.setattr(trainer, "CPU_READ_EVERY", 4)
    deferred = gen("train", "images", *TINY, "-o", tmp_path / "deferred", cwd=tmp_path)
    assert deferred.exit_code == 0, deferred.stderr

    def epochs(run):
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [r for r in rows if r["event"] == "epoch"]

    for a, b in zip(epochs(tmp_path / "each"), epochs(tmp_path / "deferred"), strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-9)
        assert a["val_neg_elbo"] == b["val_neg_elbo"]

    inject(monkeypatch, nan_at={3})
    bad = gen("train", "images", *TINY, "-o", tmp_path / "bad", cwd=tmp_path)
    assert bad.exit_code == 0, bad.stderr
    assert "NaN or infinite in steps 1-4; rolled back to step-00000000" in bad.stderr
