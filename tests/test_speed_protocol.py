"""The time-to-quality protocol of bench/train_speed.py (issue 24): its training corpus is made of
jittered copies, so no two training items are the same image and a loop cannot overfit repeats."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from speed_workload import digits_28  # noqa: E402


def test_the_protocols_training_items_never_repeat():
    tx, tc, vx, vc, data = digits_28(train_items=4000, val_items=300, seed=0)  # every digit 2-3 times
    assert tx.shape == (4000, 1, 28, 28) and vx.shape == (300, 1, 28, 28)
    assert torch.unique(tx.flatten(1), dim=0).shape[0] == 4000
    assert set(tx.unique().tolist()) == {0.0, 1.0} and set(vx.unique().tolist()) == {0.0, 1.0}
    # copies of the same digit keep its class, and the jitter keeps about as much ink
    assert torch.equal(tc[:1497], tc[1497:2994])
    assert abs(tx.mean().item() - vx.mean().item()) < 0.03
    held_in = {row.numpy().tobytes() for row in tx.flatten(1)}
    assert not any(row.numpy().tobytes() in held_in for row in vx.flatten(1))
    again, _, _, _, _ = digits_28(train_items=4000, val_items=300, seed=0)
    assert torch.equal(tx, again)
