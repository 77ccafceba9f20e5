"""How many CPU threads torch uses: `--threads N`, else $OMP_NUM_THREADS, else the cores left idle.

torch's own default is one thread per core. On a machine other processes keep busy, OpenMP
threads then wait on each other at every parallel region: on the shared 2-core machine the issue
reports, default training ran 2.7x slower than with one thread. So the default counts only the
cores that the 1-minute load average leaves free (bench/threads.py measures the choice). No
torch import here: the setting goes into the environment before torch loads, and into torch
itself when it has already loaded.
"""
from __future__ import annotations

import os
import sys

from gencore.errors import GenError

MAX_THREADS = 1024


def usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def idle_cpus() -> int:
    """Cores not kept busy by other processes: the usable ones less the 1-minute load average,
    at least one."""
    cpus = usable_cpus()
    try:
        busy = os.getloadavg()[0]
    except (OSError, AttributeError):
        return cpus
    return max(1, min(cpus, int(cpus - busy + 0.5)))


def default_threads() -> tuple[int, str]:
    """(threads, why) with no --threads flag."""
    explicit = os.environ.get("OMP_NUM_THREADS", "").strip()
    if explicit.isdigit() and int(explicit) > 0:
        return int(explicit), "OMP_NUM_THREADS"
    return idle_cpus(), "the idle cores"


def apply(threads: int | None) -> int:
    """Set the CPU thread count for this process (and the processes it starts); returns it."""
    if threads is not None and not 1 <= threads <= MAX_THREADS:
        raise GenError(f"must be from 1 to {MAX_THREADS}, got {threads}", where="--threads",
                       hint=f"e.g. --threads {usable_cpus()}")
    count = threads if threads is not None else default_threads()[0]
    if threads is not None or "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(count)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count
