"""Denoise and score from the page: uploads capped in bytes and pixels, written with safe names
into a folder of the studio's own, and read by the same defensive loaders as the CLI."""
from __future__ import annotations

import io
import re
import secrets
import shutil
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gencore.errors import GenError

MAX_PIXELS = 40_000_000  # per uploaded photo, read from its header before decoding
MAX_SCORE_FILES = 500
TABLE_ROWS = 200  # rows of the scored table sent to the page (highest scores first)
JOBS_KEPT = 32
UPLOAD_SUFFIXES = {".png", ".jpg", ".jpeg", ".csv", ".mid", ".midi", ".txt"}


def safe_upload_name(index: int, name: str) -> str:
    """`007-photo.png` from whatever the browser sent: no folders, no odd characters."""
    base = re.sub(r"[^A-Za-z0-9_.+-]+", "_", Path(name or "upload").name).strip("._") or "upload"
    suffix = Path(base).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise GenError(f"files of type {suffix or '(none)'} are not read here", where=name or "upload",
                       hint=f"upload {', '.join(sorted(UPLOAD_SUFFIXES))} files")
    return f"{index:03d}-{base[-80:]}"


def check_pixels(data: bytes, where: str, limit: int = MAX_PIXELS) -> None:
    """Refuse a photo whose header declares more than `limit` pixels, before it is decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the cap below decides
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
    except Image.DecompressionBombError:
        raise GenError(f"the image declares more pixels than the studio's {limit:,}", where=where,
                       hint="this looks like a decompression bomb") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise GenError(f"not a readable PNG or JPEG ({type(exc).__name__})", where=where,
                       hint="upload a PNG or JPEG photo") from None
    if w * h > limit:
        raise GenError(f"{w}x{h} pixels is more than the studio's {limit:,}", where=where,
                       hint="scale the photo down, or use `gen denoise` on the command line")


# -- denoising jobs ------------------------------------------------------------------------------
@dataclass
class Job:
    id: str
    name: str
    folder: Path
    state: str = "queued"  # queued, running, done, failed
    progress: float = 0.0
    error: str | None = None
    result: str | None = None
    seconds: float | None = None
    info: dict[str, Any] = field(default_factory=dict)


class Denoiser:
    """One photo at a time on a worker thread; the page polls the job for its progress."""

    def __init__(self, catalogue, folder: Path, device: str):
        self.catalogue, self.folder, self.device = catalogue, Path(folder), device
        self.jobs: dict[str, Job] = {}
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-denoise")

    def _model(self, run_id: str | None):
        from gencore.api import load_run
        from gencore.archs.denoiser import SHIPPED_RUN
        from gencore.plugin import provides

        key = run_id or "shipped"
        with self._lock:
            if key not in self._models:
                opened = (load_run(SHIPPED_RUN, device=self.device) if run_id is None
                          else self.catalogue.open(run_id))
                if opened.arch.has_latent or not provides(opened.domain, "read_native"):
                    raise GenError("not a denoiser run", where=run_id or "run",
                                   hint="pick a run trained with --arch denoiser, or the shipped denoiser")
                self._models[key] = (opened, opened.model())
            return self._models[key]

    def submit(self, name: str, data: bytes, run_id: str | None, sigma: float | None) -> Job:
        if sigma is not None and not 0 < sigma <= 255:
            raise GenError(f"must be in (0, 255], got {sigma}", where="sigma")
        check_pixels(data, name)
        opened, model = self._model(run_id)
        values, state = opened.domain.read_native(data, name)  # the CLI's defensive reader
        job = Job(secrets.token_hex(8), safe_upload_name(0, name), self.folder / "jobs")
        job.info = {"width": int(values.shape[-1]), "height": int(values.shape[-2]), "channels": int(values.shape[0])}
        with self._lock:
            self.jobs[job.id] = job
            for old in list(self.jobs)[:-JOBS_KEPT]:
                stale = self.jobs.pop(old)
                if stale.result:
                    Path(stale.result).unlink(missing_ok=True)
        self._pool.submit(self._run, job, opened, model, values, state, sigma)
        return job

    def _run(self, job: Job, opened, model, values, state, sigma) -> None:
        from gencore.denoising import denoise
        from gencore.storage import write_bytes

        job.state, start = "running", time.perf_counter()
        try:
            def report(share: float) -> None:
                job.progress = min(share, 1.0)

            clean = denoise(model, values, None if sigma is None else sigma / 255.0, opened.device, progress=report)
            target = job.folder / f"{job.id}-{job.name[4:]}"
            write_bytes(target, opened.domain.encode_native(clean, state))
            job.result, job.state, job.progress = str(target), "done", 1.0
        except GenError as exc:
            job.state, job.error = "failed", exc.line()
        except Exception as exc:  # noqa: BLE001 -- the page gets one line, the log no traceback
            job.state, job.error = "failed", f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        job.seconds = time.perf_counter() - start

    def job(self, job_id: str) -> Job:
        if not re.fullmatch(r"[0-9a-f]{16}", job_id or ""):
            raise GenError("not a job id", where="job")
        job = self.jobs.get(job_id)
        if job is None:
            raise LookupError(f"no job {job_id!r}")
        return job

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


# -- scoring -------------------------------------------------------------------------------------
def score_uploads(run, uploads: list[tuple[str, bytes]], folder: Path) -> dict[str, Any]:
    """`gen score` on uploaded files: one CSV (series and tables) or images, with the domain's
    default method and threshold, a scored plot and the table of the highest scores."""
    from gencore import scoring
    from gencore.scoring_inputs import gather
    from gencore.studio.items import png_data_url

    if not uploads:
        raise GenError("no files uploaded", where="files", hint="drop a CSV or some images")
    if len(uploads) > MAX_SCORE_FILES:
        raise GenError(f"{len(uploads)} files, more than the {MAX_SCORE_FILES} scored at once", where="files")
    work = folder / "score" / secrets.token_hex(8)
    work.mkdir(parents=True)
    try:
        paths, shown = [], {}
        for i, (name, data) in enumerate(uploads):
            if Path(name).suffix.lower() in (".png", ".jpg", ".jpeg"):
                check_pixels(data, name)
            path = work / safe_upload_name(i, name)
            path.write_bytes(data)
            paths.append(str(path))
            shown[str(path)] = Path(name).name
        try:
            batch = gather(run, paths, [], None, False)
        except GenError as exc:  # name the uploaded file, not the studio's copy of it
            for path, name in shown.items():
                exc.where = (exc.where or "").replace(path, name)
                exc.problem = exc.problem.replace(path, name)
            raise
        method = scoring.default_method(run)
        scores = scoring.score(run, batch.items, method, None, 0)
        threshold, rule = _threshold(run, method, scores)
        names = [_display(n, shown) for n in batch.names]
        report = {}
        if batch.data is not None:
            report = run.domain.score_report(run, batch.data, batch.index, scores, threshold, method,
                                             work / "scores.csv")
        plot = _domain_plot(report) or _plot(scores, threshold, method, run.path.name)
        order = np.argsort(-scores, kind="stable")[:TABLE_ROWS]
        rows = [{"input": names[i], "score": float(scores[i]),
                 "anomaly": None if threshold is None else bool(scores[i] > threshold)} for i in order]
        if batch.data is None:  # one item per file: show each scored item
            for row, i in zip(rows, order):
                row["preview"] = png_data_url(run.domain.preview(batch.items[i][None], run.config["data"], 1))
        auc = scoring.roc_auc(scores, batch.labels) if batch.labels is not None else None
        return {"method": method, "inputs": len(scores), "threshold": threshold, "threshold_rule": rule,
                "flagged": None if threshold is None else int((scores > threshold).sum()), "roc_auc": auc,
                "rows": rows, "plot": plot}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _threshold(run, method: str, scores: np.ndarray) -> tuple[float | None, str | None]:
    """As `gen score` with no threshold flag: the domain's validation quantile, when it has one."""
    from gencore import scoring

    quantile = run.domain.default_val_quantile
    if quantile is None:
        return None, None
    try:
        return scoring.validation_threshold(run, method, quantile), f"validation quantile {quantile}"
    except GenError:
        return None, None


def _display(name: str, shown: dict[str, str]) -> str:
    path, _, row = name.partition("#")
    base = shown.get(path, Path(path).name)
    return f"{base}#{row}" if row else base


def _domain_plot(report: dict[str, Any]) -> str | None:
    import base64

    path = report.get("plot")
    if not path or not Path(path).is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _plot(scores: np.ndarray, threshold: float | None, method: str, title: str) -> str:
    import base64

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    order = np.argsort(-scores, kind="stable")
    colours = ["tab:red" if threshold is not None and s > threshold else "tab:blue" for s in scores[order]]
    ax.bar(np.arange(len(scores)), scores[order], color=colours, width=1.0)
    if threshold is not None:
        ax.axhline(threshold, color="black", ls="--", lw=1, label=f"threshold {threshold:.4g}")
        ax.legend(fontsize=8)
    ax.set_xlabel("inputs, highest score first")
    ax.set_ylabel(f"{method} score")
    ax.set_title(f"{title}: anomaly scores (higher is more unusual)", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
