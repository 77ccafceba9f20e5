"""Files downloaded once into the cache, with a progress bar, and checked against published
checksums before they are kept.

The cache root is $GENCORE_CACHE, else $XDG_CACHE_HOME/gencore, else ~/.cache/gencore.
$GENCORE_MIRROR replaces the host of every download (a local mirror; the tests' loopback server).
A file lands in the cache only whole and verified: it is streamed to a hidden temp file, hashed on
the way, and renamed into place only when its size and checksum match.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from gencore import console
from gencore.errors import GenError
from gencore.storage import fsync_dir, os_error

CHUNK = 1 << 16
TIMEOUT_S = 30  # per connection attempt and per read: a stalled server is an error, not a hang


@dataclass(frozen=True)
class Remote:
    """One published file: where it is, its size in bytes and its published MD5 or SHA-256."""

    url: str
    size: int
    md5: str | None = None
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def cache_root() -> Path:
    """Where downloads and converted corpora live: $GENCORE_CACHE, else $XDG_CACHE_HOME/gencore,
    else ~/.cache/gencore."""
    explicit = os.environ.get("GENCORE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "gencore"


def source_url(remote: Remote) -> str:
    mirror = os.environ.get("GENCORE_MIRROR")
    return mirror.rstrip("/") + "/" + remote.filename if mirror else remote.url


def fetch(remote: Remote, folder: str, what: str) -> Path:
    """The cached file of `remote` under cache_root()/folder, downloaded first if missing."""
    target = cache_root() / folder / remote.filename
    if target.is_file() and target.stat().st_size == remote.size:
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenError(f"cannot create the download cache ({exc.strerror})", where=str(target.parent),
                       hint="set GENCORE_CACHE to a writable folder") from None
    url = source_url(remote)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        _download(url, tmp, remote, what)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except OSError as exc:
        raise os_error(exc, target) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _offline(url: str, reason: str, what: str) -> GenError:
    return GenError(f"cannot download {what} ({reason})", where=url,
                    hint="connect to the internet and run again; it downloads once into "
                         f"{cache_root()} (GENCORE_CACHE), or set GENCORE_MIRROR to a local mirror")


def _download(url: str, tmp: Path, remote: Remote, what: str) -> None:
    digest = hashlib.md5(usedforsecurity=False) if remote.md5 else hashlib.sha256()
    expected = (remote.md5 or remote.sha256 or "").lower()
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_S)  # noqa: S310 - http(s) from our table
    except urllib.error.HTTPError as exc:
        raise _offline(url, f"HTTP {exc.code} {exc.reason}", what) from None
    except (urllib.error.URLError, socket.timeout, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _offline(url, " ".join(str(reason).split()) or type(exc).__name__, what) from None
    received = 0
    with response, open(tmp, "wb") as fh, _Bar(what, remote.size) as bar:
        while True:
            try:
                chunk = response.read(CHUNK)
            except (OSError, socket.timeout) as exc:  # reset, timeout, IncompleteRead (an HTTPException)
                raise _interrupted(url, received, remote, what, exc) from None
            except Exception as exc:  # http.client.IncompleteRead is no OSError
                raise _interrupted(url, received, remote, what, exc) from None
            if not chunk:
                break
            received += len(chunk)
            if received > remote.size:
                raise GenError(f"the server sent more than the {remote.size:,} bytes of {what}", where=url,
                               hint="the file changed upstream or a proxy altered it; try again later")
            digest.update(chunk)
            fh.write(chunk)
            bar.advance(len(chunk))
        fh.flush()
        os.fsync(fh.fileno())
    if received != remote.size:
        raise _interrupted(url, received, remote, what, None)
    if digest.hexdigest() != expected:
        kind = "MD5" if remote.md5 else "SHA-256"
        raise GenError(f"{what}: {kind} {digest.hexdigest()} is not the published {expected}; the file was "
                       "not kept", where=url, hint="the download was corrupted or the file changed upstream; "
                       "run again, or check GENCORE_MIRROR")


def _interrupted(url: str, received: int, remote: Remote, what: str, exc: BaseException | None) -> GenError:
    why = f" ({type(exc).__name__})" if exc is not None else ""
    return GenError(f"the download of {what} stopped after {received:,} of {remote.size:,} bytes{why}; "
                    "nothing was kept", where=url, hint="run the command again to restart the download")


class _Bar:
    """Bytes downloaded: a Rich bar with throughput and ETA on a terminal, else a plain line at
    every tenth."""

    def __init__(self, what: str, total: int):
        self.what, self.total, self.done = what, total, 0
        self.start, self.next_line = time.perf_counter(), total / 10
        self.live = None

    def __enter__(self):
        console.info(f"downloading {self.what} ({self.total / 1e6:,.1f} MB) into {cache_root()}")
        if not console.settings.quiet and console.stderr().is_terminal:
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                       TransferSpeedColumn)

            self.live = Progress(TextColumn("[bold]download"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                                 TextColumn("eta"), TimeRemainingColumn(), console=console.stderr())
            self.task = self.live.add_task(self.what, total=self.total)
            self.live.start()
        return self

    def advance(self, n: int) -> None:
        self.done += n
        if self.live is not None:
            self.live.update(self.task, completed=self.done)
        elif self.done >= self.next_line:
            self.next_line += self.total / 10
            rate = self.done / max(1e-9, time.perf_counter() - self.start)
            console.info(f"download {self.what} {self.done / 1e6:,.1f}/{self.total / 1e6:,.1f} MB  "
                         f"{rate / 1e6:,.2f} MB/s  eta {console.fmt_duration((self.total - self.done) / max(rate, 1))}")

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            with contextlib.suppress(Exception):
                self.live.stop()
