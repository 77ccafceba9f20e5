"""stderr output: log lines, warnings, and training progress.

Progress and logs go to stderr, data to stdout only when asked. With a TTY, progress is a Rich bar
with throughput and ETA; without one, it prints plain lines, with no animation.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from rich.console import Console


@dataclass
class Settings:
    quiet: bool = False
    verbose: bool = False


settings = Settings()
_stderr: Console | None = None


def stderr() -> Console:
    global _stderr
    if _stderr is None:
        _stderr = Console(stderr=True, highlight=False, soft_wrap=True)  # Rich honours NO_COLOR
    return _stderr


def info(message: str) -> None:
    if not settings.quiet:
        stderr().print(message, markup=False)


def warn(message: str) -> None:
    # Warnings show even with --quiet: they say something was skipped or guessed.
    stderr().print(f"warning: {' '.join(message.split())}", markup=False, style="yellow")


def fmt_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class TrainProgress:
    """Steps of training, with samples/s, ETA and the latest losses."""

    def __init__(self, total_steps: int, done_steps: int, batch_size: int, enabled: bool = True):
        self.total, self.batch = total_steps, batch_size
        self.start_step, self.start_time = done_steps, time.perf_counter()
        self.step = done_steps
        self.enabled = enabled
        self.live = None
        if enabled and not settings.quiet and stderr().is_terminal:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            self.live = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} samples/s"), TimeElapsedColumn(), TextColumn("eta"),
                TimeRemainingColumn(), TextColumn("{task.fields[losses]}"),
                console=stderr(), transient=False,
            )
            self.task = self.live.add_task("train", total=total_steps, completed=done_steps,
                                           rate="-", losses="")
            self.live.start()

    @property
    def rate(self) -> float:
        elapsed = time.perf_counter() - self.start_time
        return (self.step - self.start_step) * self.batch / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float:
        per_step = (time.perf_counter() - self.start_time) / max(1, self.step - self.start_step)
        return per_step * (self.total - self.step)

    def advance(self, step: int, description: str) -> None:
        self.step = step
        if self.live is not None:
            self.live.update(self.task, completed=step, description=description, rate=f"{self.rate:,.0f}")

    def epoch_done(self, description: str, losses: str) -> None:
        if self.live is not None:
            self.live.update(self.task, description=description, losses=losses)
        elif self.enabled:
            info(f"{description}  {losses}  {self.rate:,.0f} samples/s  eta {fmt_duration(self.eta())}")

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None



def track(items, total: int, description: str):
    """Iterate with a progress bar on a terminal, or a plain line every tenth of the way."""
    if settings.quiet:
        yield from items
        return
    if stderr().is_terminal:
        from rich.progress import track as rich_track

        yield from rich_track(items, total=total, description=description, console=stderr())
        return
    every = max(1, total // 10)
    start = time.perf_counter()
    for i, item in enumerate(items, 1):
        yield item
        if i % every == 0 or i == total:
            rate = i / max(1e-9, time.perf_counter() - start)
            info(f"{description} {i}/{total}  {rate:.2f}/s  eta {fmt_duration((total - i) / rate)}")
