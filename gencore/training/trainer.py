"""The one training loop, for every arch: resumable epochs, the learning-rate schedule, the NaN/inf
guard, early stopping, checkpoints, DDP and metrics.jsonl. What an arch trains on and how its loss
and validation are computed arrive through its Objective (gencore/training/objective.py);
everything domain-specific arrives through the plugin."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gencore import console
from gencore.distributed import Dist, barrier, broadcast
from gencore.errors import GenError
from gencore.plugin import Domain, LoadedData
from gencore.storage import append_line, save_tensors
from gencore.training import checkpoint, fastpath
from gencore.training.objective import Objective
from gencore.training.settings import TrainSettings, lr_at

MAX_ROLLBACKS = 3  # NaN/inf guard: roll-backs, each halving the learning rate, before giving up
# Steps between reads of the step results on a GPU. Each read waits for the device, and while the
# host waits it queues no work; a bad step found late costs nothing more, because the guard rolls
# back to a checkpoint and none is written before the pending steps are read.
GPU_READ_EVERY = 32
CPU_READ_EVERY = 1  # on a CPU reading costs nothing, and a bad step is never taken


class NonFiniteStep(Exception):
    """The loss or the gradient norm of a step was NaN or infinite; the step was not taken."""


@dataclass
class FitResult:
    """What `Trainer.fit` returns on rank 0: the best epoch's model, and how training ended."""
    model: torch.nn.Module
    best_epoch: int
    stopped_early: bool
    steps: int


class Trainer:
    """One training run. Under torchrun each process takes its shard of every epoch and a 1/N
    share of the global batch, DDP averages the gradients, and rank 0 alone logs, checkpoints and
    writes weights."""

    def __init__(self, run_dir: Path, domain: Domain, data: LoadedData, spec: dict[str, Any],
                 config: dict[str, Any], settings: TrainSettings, device: torch.device, dist: Dist = Dist(),
                 init_state: dict | None = None):
        from gencore.archs import get_arch

        self.run_dir, self.domain, self.spec, self.config = run_dir, domain, spec, config
        self.settings, self.device, self.dist = settings, device, dist
        self.arch = get_arch(spec["arch"])
        torch.manual_seed(settings.seed)
        self.objective: Objective = self.arch.objective(domain, data, spec, config, settings, device, dist)
        self.model = self.arch.build(spec).to(device)
        if init_state is not None:
            self.model.load_state_dict(init_state)
        self.plan = self.objective.plan()
        if self.plan.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.net = self.objective.loss_module(self.model)
        if dist.active:
            self.net = self._distributed(self.net)
        self.optimizer = fastpath.make_optimizer(self.model, settings.lr, self.plan)
        self.step_fn = fastpath.StepFunction(self.net, self.plan)
        self.local_batch = self.objective.local_batch
        self.steps_per_epoch = self.objective.steps_per_epoch
        self.total_steps = settings.epochs * self.steps_per_epoch
        self.counters = {"epoch": 0, "batch": 0, "best_val": math.inf, "best_epoch": -1, "bad_epochs": 0,
                         "nan_rollbacks": 0, "lr_scale": 1.0, "world_size": dist.world,
                         "threads": torch.get_num_threads(), "sums": {}}
        self.step = 0
        self.stopped_early = False
        # (loss, recon, kl sums, non-finite steps) of the steps not yet read back, on the device
        self.read_every = CPU_READ_EVERY if device.type == "cpu" else GPU_READ_EVERY
        self.pending = torch.zeros(4, dtype=torch.float64, device=device)
        self.pending_steps = self.pending_first = 0
        calls = [self.objective.loss_inputs(batch, 0, self.plan.compile) for batch in self.objective.warm_up_batches()]
        self.compile_seconds = self.step_fn.warm_up(self.model, calls)
        if dist.main:  # after the warm-up: what runs, not what was planned (a failed compile runs eager)
            console.info(f"training step: {self.step_fn.describe()}")

    def _distributed(self, net: torch.nn.Module) -> torch.nn.Module:
        settings, dist = self.settings, self.dist
        if settings.arch == "cae":
            raise GenError("the contractive penalty needs double backward, which DDP does not support",
                           where="--arch cae", hint="train cae in one process")
        if settings.batch_size % dist.world:
            raise GenError(f"--batch-size {settings.batch_size} does not split over {dist.world} processes",
                           where="--batch-size", hint=f"use a multiple of {dist.world}")
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(net, device_ids=[self.device] if self.device.type == "cuda" else None)

    @property
    def split(self):
        """The held-out split of an autoencoder run (bench/speed_workload.py reads it)."""
        return self.objective.split

    def _batch(self, start: int, size: int) -> tuple:
        return self.objective.batch(start, size)

    def resume(self, path: Path) -> None:
        self._restore(path)
        console.info(f"resuming from {path} (epoch {self.counters['epoch'] + 1}, step {self.step})")
        threads = int(self.counters["threads"])
        if self.device.type == "cpu" and threads != torch.get_num_threads():
            # CPU kernels split their sums by thread, so the same count keeps the run bitwise exact.
            console.info(f"using {threads} CPU threads, as the run did before")
            torch.set_num_threads(threads)

    def _restore(self, path: Path) -> None:
        saved = checkpoint.load(path, self.domain.name, self.model, self.optimizer)
        fastpath.match_state_layout(self.optimizer)
        if saved.get("batch", 0) and saved.get("world_size", 1) != self.dist.world:
            raise GenError(f"the checkpoint stopped mid-epoch with {saved.get('world_size', 1)} processes, "
                           f"and this run has {self.dist.world}", where=str(path),
                           hint="resume with the same number of processes; at an epoch boundary any number works")
        self.counters.update({k: v for k, v in saved.items() if k in self.counters})
        self.counters["world_size"] = self.dist.world
        self.step = int(saved["step"])

    def _roll_back(self, reason: str) -> None:
        """NaN/inf guard: back to the last checkpoint with half the learning rate, or give up."""
        tries = self.counters["nan_rollbacks"] + 1
        scale = self.counters["lr_scale"] / 2
        if tries > MAX_ROLLBACKS:
            raise GenError(f"training diverged: {reason}, after {MAX_ROLLBACKS} roll-backs to the last checkpoint, "
                           f"each halving the learning rate", where="--lr",
                           hint=f"train again with a lower --lr than {self.settings.lr:g}, "
                                f"e.g. --lr {self.settings.lr * scale:.2g}, or look for extreme values in the data")
        latest = checkpoint.list_checkpoints(self.run_dir)[-1]
        self._restore(latest)
        self.counters.update(nan_rollbacks=tries, lr_scale=scale)
        console.warn(f"{reason}; rolled back to {latest.name} with the learning rate scaled by {scale:g} "
                     f"(roll-back {tries} of {MAX_ROLLBACKS})")
        barrier(self.dist)  # every rank has read the checkpoint before rank 0 replaces it
        self.save_checkpoint()  # the guard's counters survive a kill from here on

    def _read_pending(self) -> None:
        """Add the pending steps' sums to the epoch's, or raise NonFiniteStep if one of them was
        NaN or infinite."""
        if not self.pending_steps:
            return
        loss, recon, kl, bad = self.pending.tolist()
        first, last = self.pending_first, self.pending_first + self.pending_steps - 1
        self.pending.zero_()
        self.pending_steps = 0
        if bad:
            where = f"at step {first}" if first == last else f"in steps {first}-{last}"
            raise NonFiniteStep(f"the loss or its gradient was NaN or infinite {where}")
        sums = self.counters["sums"]
        sums["loss"] += loss
        sums["recon"] += recon
        sums["kl"] += kl

    def save_checkpoint(self) -> None:
        self._read_pending()  # never a checkpoint with a bad step in it
        if self.dist.main:
            checkpoint.save(self.run_dir, self.domain.name, self.step, self.model, self.optimizer, self.counters,
                            self.settings.keep_checkpoints)

    def fit(self) -> FitResult | None:
        """Train to the end (or an early stop); the best model on rank 0, None on the others."""
        progress = console.TrainProgress(self.total_steps, self.step, self.settings.batch_size, enabled=self.dist.main)
        started = time.perf_counter()
        try:
            if not checkpoint.list_checkpoints(self.run_dir):
                self.save_checkpoint()  # step 0: the guard always has a checkpoint to roll back to
            self._epochs(progress, started)
        except KeyboardInterrupt:
            progress.close()
            try:
                self.save_checkpoint()
            except NonFiniteStep:  # the last checkpoint stays the latest good one
                pass
            console.info(f"interrupted at step {self.step}; checkpoint saved. Continue with: "
                         f"gen train {self.domain.name} --resume {self.run_dir}")
            raise
        finally:
            progress.close()
        barrier(self.dist)
        if not self.dist.main:
            return None
        from gencore.storage import load_tensors

        best = self.arch.build(self.spec).to(self.device)
        best.load_state_dict(load_tensors(self.run_dir / "model.safetensors", "model", self.domain.name))
        return FitResult(best.eval(), self.counters["best_epoch"], self.stopped_early, self.step)

    def _epochs(self, progress, started: float) -> None:
        settings = self.settings
        while self.counters["epoch"] < settings.epochs:
            # Checked before the epoch too, so a run resumed after its early stop stays stopped.
            if self.counters["bad_epochs"] >= settings.patience:
                self.stopped_early = True
                console.info(f"early stop: no better validation loss for {settings.patience} epochs; "
                             f"keeping epoch {self.counters['best_epoch']}")
                return
            try:
                self._epoch(progress)
            except NonFiniteStep as exc:
                self._roll_back(str(exc))
            if self._out_of_time(started):
                console.info(f"stopping after {settings.max_minutes:g} minutes (--max-minutes) at epoch "
                             f"{self.counters['epoch']}; keeping epoch {self.counters['best_epoch']}. "
                             f"Train on with: gen train {self.domain.name} --resume {self.run_dir}")
                return

    def _epoch(self, progress) -> None:
        settings, counters = self.settings, self.counters
        epoch = counters["epoch"]
        started = time.perf_counter()
        if counters["batch"] == 0:
            counters["sums"] = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "items": 0}
        sums = counters["sums"]  # checkpointed, so an epoch resumed midway still reports its whole means
        seen = 0
        # A resumed run skips the batches already done and sees exactly the same data after them.
        for b, batch in enumerate(self.objective.epoch_batches(epoch, counters["batch"]), start=counters["batch"]):
            self._step(*batch)
            n = batch[0].shape[0]
            sums["items"] += n
            seen += n
            self.step += 1
            counters["batch"] = b + 1
            if self.pending_steps >= self.read_every:
                self._read_pending()
            progress.advance(self.step, f"epoch {epoch + 1}/{settings.epochs}")
            if settings.checkpoint_every and self.step % settings.checkpoint_every == 0:
                self.save_checkpoint()
        self._read_pending()
        # Every rank validates the same held-out items; rank 0's figures decide for all.
        val = broadcast(self.dist, self.objective.validate(self.model))
        self.model.train()
        counters["epoch"], counters["batch"] = epoch + 1, 0
        improved = val["val_loss"] < counters["best_val"] - 1e-6
        if improved:
            counters["best_val"], counters["best_epoch"], counters["bad_epochs"] = val["val_loss"], epoch + 1, 0
            if self.dist.main:
                save_tensors(self.run_dir / "model.safetensors", self.model.state_dict(), "model", self.domain.name)
        elif self.objective.counts_for_early_stop(epoch + 1):
            counters["bad_epochs"] += 1
        if self.dist.main:
            row = {"event": "epoch", "epoch": epoch + 1, "step": self.step,
                   **self.objective.train_row(sums, max(1, sums["items"]), self.step), **val, "lr": self._lr(),
                   "samples_per_s": seen * self.dist.world / max(1e-9, time.perf_counter() - started),
                   "best": improved}
            append_line(self.run_dir / "metrics.jsonl", json_line(row))
            progress.epoch_done(f"epoch {epoch + 1}/{settings.epochs}", self.objective.summary(row))
        self.save_checkpoint()

    def _out_of_time(self, started: float) -> bool:
        if not self.settings.max_minutes:
            return False
        # rank 0's clock decides for every rank, so all stop after the same epoch
        over = {"over": time.perf_counter() - started > 60 * self.settings.max_minutes}
        return bool(broadcast(self.dist, over)["over"])

    def _lr(self) -> float:
        return lr_at(self.step, self.total_steps, self.settings.lr) * self.counters["lr_scale"]

    def _step(self, *batch: torch.Tensor) -> dict[str, torch.Tensor]:
        args, kwargs = self.objective.loss_inputs(batch, self.step, self.step_fn.compiled)
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        out = self.step_fn(*args, **kwargs)
        self.optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), 100.0)
        loss = out["loss"].detach()
        bad = (~(torch.isfinite(loss) & torch.isfinite(norm))).float()
        if self.dist.active:  # every rank must roll back together, or DDP's collectives fall out of step
            import torch.distributed as td

            td.all_reduce(bad, op=td.ReduceOp.MAX)
        n = batch[0].shape[0]
        zero = torch.zeros((), device=loss.device)
        parts = [out.get(k, zero).detach().float() * n for k in ("recon", "kl")]
        self.pending += torch.stack([loss.float() * n, *parts, bad]).double()
        if not self.pending_steps:
            self.pending_first = self.step + 1
        self.pending_steps += 1
        if self.read_every == 1:
            self._read_pending()
        self.optimizer.step()
        return out


def json_line(row: dict[str, Any]) -> str:
    import json

    return json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()})
