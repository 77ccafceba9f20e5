"""The training loop: seeded split, resumable epochs, KL warm-up with free bits, early stopping,
checkpoints, and metrics.jsonl. Everything domain-specific arrives through the plugin."""
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
from gencore.models.autoencoder import AutoEncoder
from gencore.plugin import Domain, LoadedData
from gencore.storage import append_line, save_tensors
from gencore.training import checkpoint, fastpath
from gencore.training.settings import TrainSettings, lr_at

ACTIVE_UNIT_THRESHOLD = 0.01  # REFERENCE.md §4: posterior-mean variance across the data
DEVICE_DATA_SHARE = 0.5  # of a GPU's free memory, at most, for a corpus kept on it whole


MAX_ROLLBACKS = 3  # NaN/inf guard: roll-backs, each halving the learning rate, before giving up
# Steps between reads of the step results on a GPU. Each read waits for the device, and while the
# host waits it queues no work; a bad step found late costs nothing more, because the guard rolls
# back to a checkpoint and none is written before the pending steps are read.
GPU_READ_EVERY = 32
CPU_READ_EVERY = 1  # on a CPU reading costs nothing, and a bad step is never taken


class NonFiniteStep(Exception):
    """The loss or the gradient norm of a step was NaN or infinite; the step was not taken."""


@dataclass
class Split:
    train_x: torch.Tensor
    train_c: torch.Tensor | None
    val_x: torch.Tensor
    val_c: torch.Tensor | None


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    """Whether a corpus of `nbytes` may live on `device` whole: on a GPU, at most
    DEVICE_DATA_SHARE of its free memory, the rest left for the model and activations."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_DATA_SHARE * free


def split_data(data: LoadedData, val_indices: list[int], device: torch.device) -> Split:
    n = data.items.shape[0]
    is_val = torch.zeros(n, dtype=torch.bool)
    is_val[torch.tensor(val_indices, dtype=torch.long)] = True
    conds = data.conditions
    nbytes = data.items.nbytes + (0 if conds is None else conds.nbytes)
    # A corpus that fits lives on the device whole: no DataLoader, no per-batch host copies.
    # One that does not stays in host memory, and each batch is gathered there and copied over.
    resident = fits_on_device(nbytes, device)
    home = device if resident else torch.device("cpu")
    if not resident:
        console.info(f"the corpus ({nbytes / 2**30:.1f} GiB) does not fit in {device}'s free memory: "
                     f"streaming each batch from host memory")
    return Split(
        data.items[~is_val].to(home), None if conds is None else conds[~is_val].to(home),
        data.items[is_val].to(home), None if conds is None else conds[is_val].to(home),
    )


def choose_val_indices(n: int, fraction: float, seed: int) -> list[int]:
    n_val = max(1, round(n * fraction)) if n >= 10 else 1
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return sorted(perm[:n_val].tolist())


@torch.no_grad()
def evaluate(model: AutoEncoder, x: torch.Tensor, c: torch.Tensor | None, beta: float, free_bits: float,
             batch_size: int = 1024) -> dict[str, float]:
    """Validation: reconstruction and KL in nats per item, the negative ELBO, active units, and
    `val_loss`: the training objective at full beta (free bits included), used for early stopping."""
    model.eval()
    device = next(model.parameters()).device
    recon = 0.0
    kl_per_dim = torch.zeros(model.spec["latent_dim"], device=device)
    mus = []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size].to(device, non_blocking=True)
        cb = None if c is None else c[start:start + batch_size].to(device, non_blocking=True)
        out = model.losses(xb, xb, cb)
        recon += out["recon"].item() * xb.shape[0]
        kl_per_dim += out["kl_per_dim"].float() * xb.shape[0]
        mus.append(model.encode(xb, cb)[0].float())
    n = x.shape[0]
    mu = torch.cat(mus)
    active = int((mu.var(dim=0, unbiased=False) > ACTIVE_UNIT_THRESHOLD).sum()) if n > 1 else 0
    model.train()
    recon, kl_per_dim = recon / n, kl_per_dim / n
    kl = float(kl_per_dim.sum())
    kl_term = float(kl_per_dim.clamp(min=free_bits).sum()) if free_bits else kl
    return {"val_recon": recon, "val_kl": kl, "val_loss": recon + beta * kl_term,
            "val_neg_elbo": recon + kl if model.stochastic else None, "active_units": active}


class Trainer:
    """One training run. Under torchrun each process takes its shard of every epoch through a
    DistributedSampler and a 1/N share of the global batch, DDP averages the gradients, and rank
    0 alone logs, checkpoints and writes weights."""

    def __init__(self, run_dir: Path, domain: Domain, data: LoadedData, spec: dict[str, Any],
                 config: dict[str, Any], settings: TrainSettings, device: torch.device, dist: Dist = Dist(),
                 init_state: dict | None = None):
        self.run_dir, self.domain, self.spec, self.config = run_dir, domain, spec, config
        self.settings, self.device, self.dist = settings, device, dist
        torch.manual_seed(settings.seed)
        self.split = split_data(data, config["split"]["val_indices"], device)
        self.model = AutoEncoder(spec).to(device)
        if init_state is not None:
            self.model.load_state_dict(init_state)
        self.plan = fastpath.plan_step(settings, device, spec, dist.active)
        if self.plan.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.net = self.model
        if dist.active:
            if settings.arch == "cae":
                raise GenError("the contractive penalty needs double backward, which DDP does not support",
                               where="--arch cae", hint="train cae in one process")
            if settings.batch_size % dist.world:
                raise GenError(f"--batch-size {settings.batch_size} does not split over {dist.world} processes",
                               where="--batch-size", hint=f"use a multiple of {dist.world}")
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(self.model, device_ids=[device] if device.type == "cuda" else None)
        self.optimizer = fastpath.make_optimizer(self.model, settings.lr, self.plan)
        self.step_fn = fastpath.StepFunction(self.net, self.plan)
        self.class_weights = (torch.tensor(data.class_weights, dtype=torch.float32, device=device)
                              if data.class_weights else None)
        from torch.utils.data import DistributedSampler

        n_train = self.split.train_x.shape[0]
        self.sampler = DistributedSampler(range(n_train), num_replicas=dist.world, rank=dist.rank,
                                          shuffle=True, seed=settings.seed)
        self.local_batch = settings.batch_size // dist.world
        self.steps_per_epoch = math.ceil(len(self.sampler) / self.local_batch)
        self.total_steps = settings.epochs * self.steps_per_epoch
        self.warmup_steps = settings.kl_warmup * self.steps_per_epoch if self.model.stochastic else 0
        self.counters = {"epoch": 0, "batch": 0, "best_val": math.inf, "best_epoch": -1, "bad_epochs": 0,
                         "nan_rollbacks": 0, "lr_scale": 1.0, "world_size": dist.world,
                         "threads": torch.get_num_threads(), "sums": {}}
        self.step = 0
        self.stopped_early = False
        # (loss, recon, kl sums, non-finite steps) of the steps not yet read back, on the device
        self.read_every = CPU_READ_EVERY if device.type == "cpu" else GPU_READ_EVERY
        self.pending = torch.zeros(4, dtype=torch.float64, device=device)
        self.pending_steps = self.pending_first = 0
        if dist.main:
            console.info(f"training step: {self.plan.describe()}")
        last = len(self.sampler) - (self.steps_per_epoch - 1) * self.local_batch  # the epoch's last batch
        self.compile_seconds = self.step_fn.warm_up(self.model, [self._batch(0, n) for n in {self.local_batch, last}],
                                                    **self._loss_options())

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

    def fit(self) -> AutoEncoder:
        """Train to the end (or an early stop); return the best model (rank 0; others get None)."""
        settings = self.settings
        progress = console.TrainProgress(self.total_steps, self.step, settings.batch_size, enabled=self.dist.main)
        started = time.perf_counter()
        try:
            if not checkpoint.list_checkpoints(self.run_dir):
                self.save_checkpoint()  # step 0: the guard always has a checkpoint to roll back to
            while self.counters["epoch"] < settings.epochs:
                # Checked before the epoch too, so a run resumed after its early stop stays stopped.
                if self.counters["bad_epochs"] >= settings.patience:
                    self.stopped_early = True
                    console.info(f"early stop: no better validation loss for {settings.patience} epochs; "
                                 f"keeping epoch {self.counters['best_epoch']}")
                    break
                try:
                    self._epoch(progress)
                except NonFiniteStep as exc:
                    self._roll_back(str(exc))
                if self._out_of_time(started):
                    console.info(f"stopping after {settings.max_minutes:g} minutes (--max-minutes) at epoch "
                                 f"{self.counters['epoch']}; keeping epoch {self.counters['best_epoch']}. "
                                 f"Train on with: gen train {self.domain.name} --resume {self.run_dir}")
                    break
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
        best = _load_best(self.run_dir, self.domain.name, self.spec, self.device)
        best.stopped_early = self.stopped_early
        best.best_epoch = self.counters["best_epoch"]
        return best

    def _epoch(self, progress) -> None:
        settings, counters, split = self.settings, self.counters, self.split
        epoch = counters["epoch"]
        started = time.perf_counter()
        # The order of an epoch is a function of (seed, epoch): a resumed run skips the batches
        # already done and sees exactly the same data after them.
        self.sampler.set_epoch(epoch)
        order = torch.tensor(list(iter(self.sampler)), dtype=torch.long, device=split.train_x.device)
        if counters["batch"] == 0:
            counters["sums"] = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "items": 0}
        sums = counters["sums"]  # checkpointed, so an epoch resumed midway still reports its whole means
        seen = 0
        for b in range(counters["batch"], self.steps_per_epoch):
            idx = order[b * self.local_batch:(b + 1) * self.local_batch]
            x = split.train_x[idx].to(self.device, non_blocking=True)
            c = None if split.train_c is None else split.train_c[idx].to(self.device, non_blocking=True)
            self._step(x, c)
            sums["items"] += x.shape[0]
            seen += x.shape[0]
            self.step += 1
            counters["batch"] = b + 1
            if self.pending_steps >= self.read_every:
                self._read_pending()
            progress.advance(self.step, f"epoch {epoch + 1}/{settings.epochs}")
            if settings.checkpoint_every and self.step % settings.checkpoint_every == 0:
                self.save_checkpoint()
        self._read_pending()
        # Every rank validates the same held-out items; rank 0's figures decide for all.
        val = broadcast(self.dist, evaluate(self.model, split.val_x, split.val_c,
                                            settings.beta if self.model.stochastic else 0.0,
                                            settings.free_bits if self.model.stochastic else 0.0))
        counters["epoch"], counters["batch"] = epoch + 1, 0
        improved = val["val_loss"] < counters["best_val"] - 1e-6
        if improved:
            counters["best_val"], counters["best_epoch"], counters["bad_epochs"] = val["val_loss"], epoch + 1, 0
            if self.dist.main:
                save_tensors(self.run_dir / "model.safetensors", self.model.state_dict(), "model", self.domain.name)
        elif epoch + 1 > settings.kl_warmup:  # the objective keeps changing during warm-up
            counters["bad_epochs"] += 1
        if self.dist.main:
            items = max(1, sums["items"])
            row = {"event": "epoch", "epoch": epoch + 1, "step": self.step, "train_loss": sums["loss"] / items,
                   "train_recon": sums["recon"] / items, "train_kl": sums["kl"] / items, **val,
                   "beta": self._beta() if self.model.stochastic else None, "lr": self._lr(),
                   "samples_per_s": seen * self.dist.world / max(1e-9, time.perf_counter() - started),
                   "best": improved}
            append_line(self.run_dir / "metrics.jsonl", _json_line(row))
            progress.epoch_done(f"epoch {epoch + 1}/{settings.epochs}",
                                f"train {row['train_loss']:.2f}  val {val['val_loss']:.2f} (recon "
                                f"{val['val_recon']:.2f} kl {val['val_kl']:.2f})  au {val['active_units']}/"
                                f"{self.spec['latent_dim']}")
        self.save_checkpoint()

    def _out_of_time(self, started: float) -> bool:
        if not self.settings.max_minutes:
            return False
        # rank 0's clock decides for every rank, so all stop after the same epoch
        over = {"over": time.perf_counter() - started > 60 * self.settings.max_minutes}
        return bool(broadcast(self.dist, over)["over"])

    def _lr(self) -> float:
        return lr_at(self.step, self.total_steps, self.settings.lr) * self.counters["lr_scale"]

    def _beta(self) -> float:
        if not self.warmup_steps:
            return self.settings.beta
        return self.settings.beta * min(1.0, (self.step + 1) / self.warmup_steps)

    def _loss_options(self) -> dict[str, Any]:
        stochastic, settings = self.model.stochastic, self.settings
        beta = self._beta() if stochastic else 0.0
        if self.step_fn.compiled:  # a tensor, so a changing beta does not recompile the graph
            beta = torch.full((), beta, device=self.device)
        return {"beta": beta, "free_bits": settings.free_bits if stochastic else 0.0,
                "contractive": settings.contractive if settings.arch == "cae" else 0.0,
                "class_weights": self.class_weights}

    def _batch(self, start: int, size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        x, c = self.split.train_x[start:start + size], self.split.train_c
        return x.to(self.device), None if c is None else c[start:start + size].to(self.device)

    def _step(self, x: torch.Tensor, c: torch.Tensor | None) -> dict[str, torch.Tensor]:
        settings = self.settings
        x_in = x
        if settings.arch == "dae":
            generator = torch.Generator().manual_seed(settings.seed * 7_919 + self.step * self.dist.world + self.dist.rank)
            x_in = self.domain.corrupt(x, generator, spec=self.config["data"])
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        out = self.step_fn(x_in, x, c, **self._loss_options())
        self.optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), 100.0)
        loss = out["loss"].detach()
        bad = (~(torch.isfinite(loss) & torch.isfinite(norm))).float()
        if self.dist.active:  # every rank must roll back together, or DDP's collectives fall out of step
            import torch.distributed as td

            td.all_reduce(bad, op=td.ReduceOp.MAX)
        n = x.shape[0]
        self.pending += torch.stack([loss * n, out["recon"].detach() * n, out["kl"].detach() * n, bad]).double()
        if not self.pending_steps:
            self.pending_first = self.step + 1
        self.pending_steps += 1
        if self.read_every == 1:
            self._read_pending()
        self.optimizer.step()
        return out


def _load_best(run_dir: Path, domain: str, spec: dict[str, Any], device: torch.device) -> AutoEncoder:
    from gencore.storage import load_tensors

    model = AutoEncoder(spec).to(device)
    model.load_state_dict(load_tensors(run_dir / "model.safetensors", "model", domain))
    return model.eval()


def _json_line(row: dict[str, Any]) -> str:
    import json

    return json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()})
