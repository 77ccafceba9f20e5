"""What an arch's training does inside the one Trainer (gencore/training/trainer.py): its batches,
the inputs of its loss, its validation and what its metrics rows hold. The Trainer owns the rest:
the optimiser and schedule, checkpoints and resume, the NaN guard, early stopping, DDP."""
from __future__ import annotations

from typing import Any, Iterator

import torch

from gencore.training.fastpath import StepPlan


class Objective:
    steps_per_epoch: int
    local_batch: int  # items per step in this process

    def plan(self) -> StepPlan:
        raise NotImplementedError

    def loss_module(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module whose forward returns the losses (wrapped by DDP and torch.compile); its
        weights are `model`'s, which is what checkpoints and model.safetensors hold."""
        return model

    def epoch_batches(self, epoch: int, first: int) -> Iterator[tuple]:
        """The batches of `epoch` from batch `first` on: a function of (seed, epoch), so a resumed
        run sees exactly the data an uninterrupted one would."""
        raise NotImplementedError

    def warm_up_batches(self) -> list[tuple]:
        """One batch of each shape training will see, for torch.compile's warm-up."""
        raise NotImplementedError

    def loss_inputs(self, batch: tuple, step: int, compiled: bool) -> tuple[tuple, dict[str, Any]]:
        """The loss module's (args, kwargs) for `batch` at optimiser step `step`."""
        raise NotImplementedError

    def validate(self, model: torch.nn.Module) -> dict[str, Any]:
        """Held-out figures; `val_loss` (lower is better) picks the best epoch."""
        raise NotImplementedError

    def counts_for_early_stop(self, epoch: int) -> bool:
        """Whether an epoch without a better `val_loss` counts towards --patience."""
        return True

    def train_row(self, sums: dict[str, float], items: int, step: int) -> dict[str, Any]:
        return {"train_loss": sums["loss"] / items}

    def summary(self, row: dict[str, Any]) -> str:
        """The progress line's tail for an epoch's metrics row."""
        raise NotImplementedError
