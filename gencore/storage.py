"""Atomic file writes and safetensors I/O with clear errors. No pickle, no torch.load.

Every write goes to a temp file in the target's folder, is fsynced, then `os.replace`d over the
target, and the folder is fsynced: a reader sees the old file or the new one, never half of one.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from gencore.errors import GenError, RunFormatError

# 2: the networks condition by a per-class channel shift, not concatenated planes (issue 24).
# Runs of version 1 still load, through the old layout (gencore/models/networks.py, "concat").
FORMAT_VERSION = 2
READABLE_FORMAT_VERSIONS = (1, 2)
READABLE_HINT = "this gencore reads format_version 1 and 2; retrain the run with it"

_OS_HINTS = {
    errno.ENOSPC: ("no space left on device", "free some disk space or write elsewhere with -o"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or write elsewhere with -o"),
    errno.EACCES: ("permission denied", "write somewhere you may write, with -o"),
    errno.EPERM: ("operation not permitted", "write somewhere you may write, with -o"),
    errno.EROFS: ("read-only file system", "write somewhere writable, with -o"),
}


def os_error(exc: OSError, path: Path | str) -> GenError:
    problem, hint = _OS_HINTS.get(exc.errno, (exc.strerror or str(exc), None))
    return GenError(f"cannot write: {problem}", where=str(path), hint=hint)


def fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be fsynced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (/proc/self/status)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore
    os.umask(mask)
    return mask


def _new_file_mode(target: Path) -> int:
    """What `open(target, "w")` would give: the mode of the file replaced, else 0666 less the umask
    (mkstemp's 0600 would make every run file private)."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(os.stat(target).st_mode)
    return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path beside `target`; on success it replaces `target`, on failure it vanishes."""
    target = Path(target)
    if target.exists() and not target.is_file() and not target.is_dir():
        # A device or a pipe (/dev/null, /dev/full, a FIFO): write to it directly, for replacing
        # it with a regular file would destroy it.
        try:
            yield target
        except OSError as exc:
            raise os_error(exc, target) from exc
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise os_error(exc, target) from exc
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _new_file_mode(target))
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
        fsync_dir(target.parent)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise os_error(exc, target) from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: Path, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def append_line(target: Path, line: str) -> None:
    """Append one JSON line; a torn last line is skipped by `read_jsonl`."""
    try:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(line.rstrip("\n") + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise os_error(exc, target) from exc


def write_png(target: Path, image) -> None:
    """Save a PIL image as PNG, atomically."""
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    write_bytes(target, buf.getvalue())


def check_input_file(path: Path | str, hint: str | None = None) -> None:
    """A clear error unless `path` is a regular file: missing, a symlink loop, a folder, a device."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        problem = {errno.ENOENT: "no such file", errno.ENOTDIR: "no such file", errno.ELOOP: "a symlink loop",
                   errno.EACCES: "permission denied"}.get(exc.errno, exc.strerror or str(exc))
        raise GenError(problem, where=str(path), hint=hint) from None
    if stat.S_ISDIR(mode):
        raise GenError("this is a folder, not a file", where=str(path), hint=hint)
    if not stat.S_ISREG(mode):
        raise GenError("not a regular file (a device, pipe or socket)", where=str(path), hint=hint)


def read_json(path: Path, what: str = "file") -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RunFormatError(f"{what} is missing", where=str(path)) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFormatError(f"{what} is not valid JSON ({exc})", where=str(path),
                             hint="the file is corrupt or was edited by hand") from exc
    except RecursionError:
        raise RunFormatError(f"{what} is nested too deeply to be real", where=str(path),
                             hint="the file is corrupt or was edited by hand") from None


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    if not Path(path).exists():
        return rows
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(json.JSONDecodeError, RecursionError):
            row = json.loads(line)
            if isinstance(row, dict):
                rows.append(row)
    return rows


def save_tensors(target: Path, tensors: dict, kind: str, domain: str) -> None:
    """Save a flat name -> tensor dict as safetensors, tagged with format version, kind, domain."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {"format_version": str(FORMAT_VERSION), "kind": kind, "domain": domain}
    with atomic_path(target) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_tensors(path: Path, kind: str, domain: str) -> dict:
    """Load safetensors written by `save_tensors`, refusing other kinds, domains and versions."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise RunFormatError(f"{kind} weights are missing", where=str(path),
                             hint="the run is incomplete or files were deleted")
    try:
        out = {}
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            for key in fh.keys():
                out[key] = fh.get_tensor(key)
    except Exception as exc:  # safetensors raises its own error types for corrupt headers and data
        raise RunFormatError(f"not a readable safetensors file ({exc})", where=str(path),
                             hint="the file is truncated or corrupt; retrain or restore it") from exc
    if meta.get("format_version") not in [str(v) for v in READABLE_FORMAT_VERSIONS]:
        raise RunFormatError(f"format version {meta.get('format_version')!r} is not supported",
                             where=str(path), hint=READABLE_HINT)
    if meta.get("domain") != domain or meta.get("kind") != kind:
        raise RunFormatError(
            f"holds {meta.get('kind')!r} weights of domain {meta.get('domain')!r}, "
            f"expected {kind!r} of {domain!r}", where=str(path),
            hint="the file was copied in from another run")
    return out


def write_folder(out: Path, fill: Callable[[Path], None]) -> Path:
    """Have `fill` build a folder in a staging sibling, then rename it to `out`: a failure at any
    point leaves nothing at `out`. `out` may exist only as an empty folder."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GenError("output folder exists and is not empty", where=str(out), hint="pick a new -o")
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        fill(staging)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
