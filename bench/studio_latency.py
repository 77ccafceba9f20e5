"""`gen studio` latency and load, on loopback against the real server (`gen studio` in a
subprocess), with the server's own floor (GET /api/health) measured in the same run as the
baseline.

    python bench/studio_latency.py --digits runs/digits --midi runs/midi      # the issue's targets
    python bench/studio_latency.py --digits runs/digits --clients 50 --seconds 30

- grid: POST /sample, 16 digits of class 7 (new seed each time), p50 / p95 over --repeats;
- midi: POST /sample of one 4-bar item, then its native files (.mid, .png and the WAV preview,
  written on that request), p50 / p95;
- load: --clients concurrent clients, each sampling 16-digit grids in a loop for --seconds; the
  errors, the throughput and the server's resident memory (VmRSS) before, at its peak and after.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start(runs: list[str], threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    args = [sys.executable, "-m", "gencore", "studio", "--port", str(port), "--no-open", "--device", "cpu",
            "--runs-dir", os.devnull, "--threads", str(threads)]
    for run in runs:
        args += ["-r", run]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("gen studio did not start: " + (proc.stderr.read() if proc.stderr else ""))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server process (and its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(client: httpx.Client, repeats: int, call, pid: int) -> tuple[np.ndarray, float]:
    """Wall milliseconds per call, and the server's CPU milliseconds per call (load-independent)."""
    for i in range(3):
        call(client, 1_000_000 + i)  # warm-up: weights, calibration, first PNGs
    out = []
    cpu = cpu_seconds(pid)
    for i in range(repeats):
        t = time.perf_counter()
        call(client, i)
        out.append(1000 * (time.perf_counter() - t))
    return np.array(out), 1000 * (cpu_seconds(pid) - cpu) / repeats


def grid(run: str):
    def call(client: httpx.Client, i: int) -> None:
        reply = client.post(f"/api/runs/{run}/sample", json={"classes": ["7"], "n": 16, "seed": 1000 + i})
        assert reply.status_code == 200 and len(reply.json()["items"]) == 16, reply.text
    return call


def midi(run: str):
    def call(client: httpx.Client, i: int) -> None:
        reply = client.post(f"/api/runs/{run}/sample", json={"n": 1, "seed": 1000 + i, "options": {"bars": 4}})
        assert reply.status_code == 200, reply.text
        item = reply.json()["items"][0]["id"]
        files = client.get(f"/api/items/{item}/files").json()["files"]
        assert any(f.endswith(".wav") for f in files) and any(f.endswith(".mid") for f in files), files
    return call


def health(client: httpx.Client, i: int) -> None:
    assert client.get("/api/health").status_code == 200


def line(name: str, measured: tuple[np.ndarray, float], target: float | None, floor: float) -> str:
    ms, cpu = measured
    p50, p95 = np.percentile(ms, 50), np.percentile(ms, 95)
    verdict = "" if target is None else f"  target < {target:g} ms: {'met' if p95 < target else 'MISSED'}"
    return (f"{name:<34} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  server CPU {cpu:6.1f} ms/request  "
            f"({p95 / floor:5.1f}x the health floor's p95){verdict}")


async def load(url: str, run: str, clients: int, seconds: float, pid: int) -> str:
    done, errors, peak = 0, {}, rss_mib(pid)
    before = peak
    stop = time.monotonic() + seconds

    async def client(index: int) -> None:
        nonlocal done
        async with httpx.AsyncClient(base_url=url, timeout=120) as session:
            seed = index * 100_000
            while time.monotonic() < stop:
                seed += 1
                try:
                    reply = await session.post(f"/api/runs/{run}/sample", json={"classes": ["7"], "n": 16, "seed": seed})
                    key = None if reply.status_code == 200 else str(reply.status_code)
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                if key is None:
                    done += 1
                else:
                    errors[key] = errors.get(key, 0) + 1

    async def watch() -> None:
        nonlocal peak
        while time.monotonic() < stop:
            peak = max(peak, rss_mib(pid))
            await asyncio.sleep(0.5)

    start_time = time.monotonic()
    await asyncio.gather(watch(), *(client(i) for i in range(clients)))
    elapsed = time.monotonic() - start_time
    after = rss_mib(pid)
    return (f"load: {clients} clients for {elapsed:.1f} s: {done} grids ({done / elapsed:.1f}/s), "
            f"errors {sum(errors.values())} {errors or ''}; server RSS {before:.0f} MiB before, "
            f"{peak:.0f} MiB peak, {after:.0f} MiB after")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", required=True, help="a digits run folder, e.g. runs/digits")
    parser.add_argument("--midi", help="a 4-bar MIDI run folder, e.g. runs/midi")
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--threads", type=int, default=1, help="gen studio --threads (its default: 1)")
    args = parser.parse_args()
    runs = [args.digits] + ([args.midi] if args.midi else [])
    proc, url = start(runs, args.threads)
    try:
        load_line = None
        with httpx.Client(base_url=url, timeout=120) as client:
            floor = timed(client, args.repeats, health, proc.pid)
            print(f"server {url}, pid {proc.pid}, --threads {args.threads}, {os.cpu_count()} CPUs, "
                  f"load average {os.getloadavg()[0]:.1f}")
            print(line("health (floor)", floor, None, np.percentile(floor[0], 95)), flush=True)
            p95 = np.percentile(floor[0], 95)
            print(line("grid: 16 digits, class 7", timed(client, args.repeats, grid(Path(args.digits).name), proc.pid),
                       150, p95), flush=True)
            if args.midi:
                print(line("midi: 4 bars, .mid + .png + .wav",
                           timed(client, args.repeats // 2, midi(Path(args.midi).name), proc.pid), 500, p95), flush=True)
        if args.clients:
            load_line = asyncio.run(load(url, Path(args.digits).name, args.clients, args.seconds, proc.pid))
            print(load_line, flush=True)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        print(f"server log: {len(err.splitlines())} lines, tracebacks: {err.count('Traceback')}")


if __name__ == "__main__":
    main()
