"""`gen studio`: serve the local web studio (gencore.studio) with uvicorn."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from gencore import console
from gencore.cli import app, common, global_option
from gencore.errors import GenError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _log_config() -> dict:
    """uvicorn's logging as plain one-line records on stderr."""
    line = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s", "datefmt": "%H:%M:%S"}
    handler = {"class": "logging.StreamHandler", "formatter": "line", "stream": "ext://sys.stderr"}
    loggers = {name: {"handlers": ["stderr"], "level": "INFO", "propagate": False}
               for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "gencore.studio")}
    return {"version": 1, "disable_existing_loggers": False, "formatters": {"line": line},
            "handlers": {"stderr": handler}, "loggers": loggers}


def _check_port(host: str, port: int) -> None:
    """A port in use or an address not of this machine is one line now, not uvicorn's exit."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as exc:
        raise GenError(f"cannot listen on {host}:{port} ({exc.strerror or exc})", where="--port",
                       hint="another program uses it: pick another port, e.g. --port 8766") from None


def _open_browser(url: str) -> None:
    """Open the page where a desktop is there to show it (a text browser would take the terminal)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return
    import threading
    import webbrowser

    threading.Timer(1.0, webbrowser.open, args=(url,)).start()


@app.command()
@common.handle_errors
def studio(
    ctx: typer.Context,
    run: list[str] = typer.Option(None, "--run", "-r", help="A run to offer besides those under --runs-dir (repeatable); opened first. e.g. -r runs/digits"),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Folder whose runs the studio lists. e.g. --runs-dir experiments/runs"),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; anything but loopback lets other machines in. e.g. --host 0.0.0.0"),
    port: int = typer.Option(8765, "--port", help="TCP port to listen on. e.g. --port 18765"),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for the files the studio exports (default: a temporary folder, removed on exit). e.g. -o studio-files"),
    max_upload_mb: float = typer.Option(32.0, "--max-upload-mb", help="Largest upload (photo to denoise, files to score) in MiB. e.g. --max-upload-mb 8"),
    threads: int = typer.Option(1, "--threads", help="CPU threads per request: the studio serves many small decodes at once, which one thread each does fastest (measured: 4 ms of CPU per 16-digit grid against 46 ms with two on a busy machine). e.g. --threads 4"),
    no_open: bool = typer.Option(False, "--no-open", help="Do not open the page in a browser. e.g. --no-open"),
    device: str = typer.Option(None, "--device", help=common.DEVICE_HELP),
) -> None:
    """Serve a local web studio: sample, listen, explore the latent space, denoise and score.

    e.g. gen studio -r runs/digits --port 8765
    """
    try:
        import uvicorn

        from gencore.studio.app import create_app
    except ImportError as exc:
        raise GenError(f"the studio needs FastAPI and uvicorn ({exc.name} is missing)", where="gen studio",
                       hint="pip install 'gencore[studio]'") from None
    common.bounded(port, "--port", 1, 65535)
    common.bounded(threads, "--threads", 1, 1024)
    common.bounded(max_upload_mb, "--max-upload-mb", 0.01, 4096)
    from gencore.runs import resolve_run

    for value in run or []:
        resolve_run(value)  # a missing or foreign folder (or pretrained name) is one line now, not an empty page later
    if host not in LOOPBACK:
        console.warn(f"--host {host}: the studio is reachable from other machines, with no login; "
                     "anyone who can reach this port can use your runs and upload files")
    _check_port(host, port)
    import tempfile

    import torch

    torch.set_num_threads(threads)

    work = out if out is not None else Path(tempfile.mkdtemp(prefix="gen-studio-"))
    web = create_app(runs_dir, list(run or []), work, global_option(ctx, "device", device, "auto"),
                     int(max_upload_mb * 2**20))
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    console.info(f"gen studio on {url} (runs from {runs_dir}{', ' + ', '.join(run) if run else ''}; Ctrl-C stops it)")
    if not no_open:
        _open_browser(url)
    try:
        uvicorn.run(web, host=host, port=port, log_config=_log_config(), access_log=False, timeout_graceful_shutdown=2)
    finally:
        if out is None:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
