"""How a training step runs on the device at hand: bf16 autocast, channels_last, a fused Adam and
torch.compile (with an eager fallback), chosen from the device. docs/metrics.md notes what each
buys on a GPU; bench/train_speed.py measures the whole trainer against a plain PyTorch loop."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from gencore import console
from gencore.errors import GenError

PRECISIONS = ("auto", "fp32", "bf16")
# bf16 autocast on a CPU pays once the convolutions outweigh the casts. Measured per CPU-second on
# a 2-core AMD EPYC with AVX-512 BF16 (width 32, batch 64): 8x8 items +7% (not worth leaving
# fp32 for), 16x16 +33%; the 28x28 digits VAE +39% at batch 256.
CPU_BF16_MIN_POSITIONS = 16 * 16
# torch.compile's mode for CUDA training steps. CUDA graphs ("reduce-overhead") pay: the step
# is bound by kernel launches, not kernels (bench/train_speed.py --sweep on an H100, 28x28
# digits VAE: 292k vs 111k samples/s at batch 1024, 889k vs 402k at 4096).
CUDA_COMPILE_MODE: str | None = "reduce-overhead"


def cpu_has_bf16() -> bool:
    """Native bf16 on this CPU (AVX-512 BF16 or AMX), as oneDNN sees it."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@dataclass(frozen=True)
class StepPlan:
    device_type: str
    bf16: bool
    channels_last: bool
    fused_adam: bool
    compile: bool

    def describe(self) -> str:
        parts = ["bf16 autocast" if self.bf16 else "fp32"]
        if self.channels_last:
            parts.append("channels_last")
        parts.append("fused Adam" if self.fused_adam else "Adam")
        parts.append("torch.compile" if self.compile else "eager")
        return ", ".join(parts)

    def autocast(self):
        return torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.bf16)


def resolve_bf16(precision: str, device: torch.device, positions: int) -> bool:
    """`precision` (auto, fp32, bf16) -> whether to autocast to bf16 on `device`, for items with
    `positions` grid cells per channel."""
    if precision not in PRECISIONS:
        raise GenError(f"unknown precision {precision!r}", where="--precision", hint="use auto, fp32 or bf16")
    if precision == "fp32":
        return False
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
    elif device.type == "cpu":
        supported = cpu_has_bf16()
    else:
        supported = False
    if precision == "bf16":
        if not supported:
            raise GenError(f"bf16 is not supported natively on this {device.type}", where="--precision",
                           hint="use --precision fp32 or auto")
        return True
    if device.type == "cpu":
        return supported and positions >= CPU_BF16_MIN_POSITIONS
    return supported


def plan_step(settings: Any, device: torch.device, spec: dict[str, Any], distributed: bool) -> StepPlan:
    """The fast path for this run: everything on for CUDA; on a CPU, bf16 where it measured
    faster, channels_last and the fused Adam kernel; compile only on CUDA unless asked for."""
    shape = spec["item_shape"]
    grid = spec["item_kind"] == "grid2d"
    positions = shape[1] * shape[2] if grid else (shape[-1] if spec["item_kind"] == "seq1d" else 0)
    bf16 = resolve_bf16(getattr(settings, "precision", "auto"), device, positions)
    compile_mode = getattr(settings, "compile", None)
    if compile_mode and settings.arch == "cae":
        raise GenError("torch.compile cannot train the contractive penalty (it needs double backward)",
                       where="--compile", hint="train --arch cae with --no-compile")
    if compile_mode is None:  # auto: on CUDA, where it pays; a CPU compile takes minutes
        compile_mode = device.type == "cuda" and not distributed and settings.arch != "cae"
    return StepPlan(device_type=device.type, bf16=bf16, channels_last=grid and device.type in ("cuda", "cpu"),
                    fused_adam=device.type in ("cuda", "cpu"), compile=bool(compile_mode))


def make_optimizer(model: torch.nn.Module, lr: float, plan: StepPlan) -> torch.optim.Adam:
    return torch.optim.Adam(model.parameters(), lr=lr, fused=True if plan.fused_adam else None)


def match_state_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give restored optimizer state the memory layout of its parameter (checkpoints store
    contiguous tensors; channels_last parameters need channels_last moments for fused kernels)."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for name, value in state.items():
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    state[name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


class StepFunction:
    """The model's loss forward, through torch.compile when the plan says so. `warm_up` compiles
    it on the real batch shapes before training (forward and backward), so compile time is
    reported apart, and a compiler that fails costs one warning and an eager run, not the run."""

    def __init__(self, net: torch.nn.Module, plan: StepPlan):
        self.eager = net
        self.plan = plan
        self.mode = CUDA_COMPILE_MODE if plan.compile and plan.device_type == "cuda" else None
        self.fn = torch.compile(net, dynamic=False, mode=self.mode) if plan.compile else net

    @property
    def compiled(self) -> bool:
        return self.fn is not self.eager

    def __call__(self, *args, **kwargs):
        if self.compiled and self.mode == "reduce-overhead":
            # a new step: the graphs may reuse the last step's output memory (read by then)
            torch.compiler.cudagraph_mark_step_begin()
        with self.plan.autocast():
            return self.fn(*args, **kwargs)

    def describe(self) -> str:
        """What the step runs now: the plan's arithmetic and layout, and whether it is compiled (with
        CUDA graphs or not) or eager, read from the step itself (a failed compile runs eager)."""
        parts = self.plan.describe().split(", ")[:-1]
        if not self.compiled:
            parts.append("eager")
        else:
            parts.append("torch.compile with CUDA graphs" if self.mode == "reduce-overhead" else "torch.compile")
        return ", ".join(parts)

    def warm_up(self, model: torch.nn.Module, calls: list[tuple[tuple, dict]]) -> float | None:
        """Compile on each batch shape, one (args, kwargs) of the loss per shape; returns the
        seconds it took, or None when nothing was compiled. Gradients and RNG states are left as
        they were."""
        if not self.compiled:
            return None
        started = time.perf_counter()
        cpu_rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        try:
            for args, kwargs in calls:
                # No gradient may build on the last shape's: under CUDA graphs those live in that
                # graph's memory, which the next replay reuses (training clears them every step).
                model.zero_grad(set_to_none=True)
                self(*args, **kwargs)["loss"].backward()
            if self.plan.device_type == "cuda":
                torch.cuda.synchronize()
        except Exception as exc:  # noqa: BLE001 -- compilers fail in many ways: no C compiler, an unsupported op
            first = (str(exc).strip().splitlines() or [""])[0][:160]
            console.warn(f"torch.compile failed ({type(exc).__name__}: {first}); training in eager mode "
                         f"(--no-compile skips the attempt)")
            self.fn = self.eager
            return None
        finally:
            model.zero_grad(set_to_none=True)
            torch.set_rng_state(cpu_rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state_all(cuda_rng)
        seconds = time.perf_counter() - started
        console.info(f"compiled the training step in {seconds:.1f} s (warm-up, not counted in samples/s)")
        return seconds
