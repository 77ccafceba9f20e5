"""The studio's web app: JSON endpoints over the Python API, and the page (plain HTML, CSS and
JS from this package; no CDN, no build step).

Model work runs in FastAPI's thread pool (plain `def` endpoints), never on the event loop, and
one lock per run serialises it. Every failure is a 4xx (or, for a bug, a 500) with a one-line
JSON error; no traceback reaches the log or the page.
"""
from __future__ import annotations

import logging
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from gencore.errors import GenError
from gencore.studio import extensions, generate
from gencore.studio.catalogue import Catalogue
from gencore.studio.guard import UploadTooLarge, guard
from gencore.studio.items import ItemStore
from gencore.studio.tools import Denoiser, score_uploads

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("gencore.studio")


class SampleRequest(BaseModel):
    classes: list[str] = Field(default_factory=list, max_length=64)
    n: int = 16
    temperature: float = 1.0
    seed: int = Field(0, ge=0, le=2**32 - 1)
    options: dict[str, Any] = Field(default_factory=dict)


class DecodeRequest(BaseModel):
    point: list[float] | None = Field(None, min_length=2, max_length=2)
    eps: list[float] | None = Field(None, max_length=4096)
    cls: str | None = Field(None, alias="class")
    options: dict[str, Any] = Field(default_factory=dict)


class InterpolateRequest(BaseModel):
    start: str = Field(alias="from")
    end: str = Field(alias="to")
    steps: int = 8


class Studio:
    """The state behind the endpoints: runs, items, latent maps, denoising jobs."""

    def __init__(self, runs_root: Path, extra_runs: list[str], work: Path, device: str = "auto"):
        self.catalogue = Catalogue(runs_root, extra_runs, device)
        self.items = ItemStore(work)
        self.maps = generate.LatentMap()
        self.denoiser = Denoiser(self.catalogue, work, device)
        self.work = Path(work)
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)

    def lock(self, run_id: str) -> threading.Lock:
        return self._locks[run_id]

    def shown(self, run_id: str, run, values, classes, cond, z, stems, options) -> dict[str, Any]:
        made = self.items.add(run_id, values, classes, cond, z, stems, options)
        return {"run": run_id, "items": self.items.views(run, made)}


def create_app(runs_root: Path | str = "runs", extra_runs: list[str] | None = None, work: Path | str | None = None,
               device: str = "auto", max_upload_bytes: int = 32 * 2**20) -> FastAPI:
    """The app. `work` is the studio's output folder (exported files, uploads being scored)."""
    import tempfile

    work = Path(work) if work is not None else Path(tempfile.mkdtemp(prefix="gen-studio-"))
    studio = Studio(Path(runs_root), list(extra_runs or []), work, device)
    app = FastAPI(title="gen studio", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.studio = studio
    _errors(app)
    _run_routes(app, studio)
    _item_routes(app, studio)
    _tool_routes(app, studio)
    extensions.mount(app, studio)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(guard, max_upload_bytes=max_upload_bytes)
    app.router.on_shutdown.append(studio.denoiser.close)
    return app


def _error(status: int, line: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(line).split())}, status_code=status)


def _errors(app: FastAPI) -> None:
    @app.exception_handler(GenError)
    async def bad_input(request: Request, exc: GenError):
        return _error(400, exc.line())

    @app.exception_handler(LookupError)
    async def not_found(request: Request, exc: LookupError):
        return _error(404, str(exc.args[0]) if exc.args else "not found")

    @app.exception_handler(UploadTooLarge)
    async def too_large(request: Request, exc: UploadTooLarge):
        return _error(413, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        return _error(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, exc.detail if isinstance(exc.detail, str) else "bad request")


def _run_routes(app: FastAPI, studio: Studio) -> None:
    catalogue, items = studio.catalogue, studio.items

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/api/health")
    def health():
        return {"ok": True}

    @app.get("/api/runs")
    def runs():
        return {"runs": catalogue.listing(), "selected": catalogue.preferred()}

    @app.get("/api/runs/{run_id}")
    def card(run_id: str):
        with studio.lock(run_id):
            return catalogue.card(run_id)

    @app.get("/api/runs/{run_id}/files/{name}")
    def card_file(run_id: str, name: str):
        return FileResponse(catalogue.card_file(run_id, name), media_type="image/png")

    @app.post("/api/runs/{run_id}/sample")
    def sample(run_id: str, body: SampleRequest):
        run = catalogue.open(run_id)
        with studio.lock(run_id):
            options = generate.domain_options(run.domain, body.options)
            values, names, cond, z, stems = generate.sample(run, body.classes, body.n, body.temperature, body.seed,
                                                            options)
            return studio.shown(run_id, run, values, names, cond, z, stems, options)

    @app.get("/api/runs/{run_id}/latent")
    def latent(run_id: str):
        run = catalogue.open(run_id)
        with studio.lock(run_id):
            found = studio.maps.get(run_id, run)
        return {k: v for k, v in found.items() if k not in ("mean", "axes")}

    @app.post("/api/runs/{run_id}/decode")
    def decode(run_id: str, body: DecodeRequest):
        run = catalogue.open(run_id)
        if (body.point is None) == (body.eps is None):
            raise GenError("give either point (the latent map) or eps (the sliders)", where="decode")
        with studio.lock(run_id):
            options = generate.domain_options(run.domain, body.options)
            if body.point is not None:
                values, z, cond = studio.maps.decode(run_id, run, body.point[0], body.point[1], body.cls)
                stem = "map"
            else:
                values, z, cond = generate.decode_eps(run, body.eps, body.cls)
                stem = "sliders"
            name = body.cls if run.conditional else None
            return studio.shown(run_id, run, values, [name], None if cond is None else cond[None], z,
                                [f"{stem}-{body.cls or 'item'}"], options)

    @app.post("/api/runs/{run_id}/interpolate")
    def interpolate(run_id: str, body: InterpolateRequest):
        run = catalogue.open(run_id)
        a, b = items.get(body.start), items.get(body.end)
        if a.run_id != run_id or b.run_id != run_id:
            raise GenError("both items must come from this run", where="from/to", hint="pick two items of one run")
        with studio.lock(run_id):
            values, z, cond = generate.interpolate(run, a, b, body.steps)
            names = [a.cls if i < body.steps / 2 else b.cls for i in range(body.steps)]
            stems = [f"path-{i:02d}" for i in range(body.steps)]
            return studio.shown(run_id, run, values, names, cond, z, stems, a.options)


def _item_routes(app: FastAPI, studio: Studio) -> None:
    catalogue, items = studio.catalogue, studio.items

    @app.get("/api/items/{item_id}/files")
    def item_files(item_id: str):
        item = items.get(item_id)
        run = catalogue.open(item.run_id)
        with studio.lock(item.run_id):
            return {"files": [p.name for p in items.files(run, item)]}

    @app.get("/api/items/{item_id}/files/{name}")
    def item_file(item_id: str, name: str, inline: bool = False):
        item = items.get(item_id)
        run = catalogue.open(item.run_id)
        with studio.lock(item.run_id):
            path = items.file(run, item, name)
        return FileResponse(path, filename=None if inline else name, media_type=_media_type(name))

    @app.get("/api/picks.zip")
    def picks(items_: str = _query("items")):
        data = items.zip_of(catalogue, [i for i in items_.split(",") if i][:1000])
        return Response(data, media_type="application/zip",
                        headers={"Content-Disposition": 'attachment; filename="gen-picks.zip"'})


def _tool_routes(app: FastAPI, studio: Studio) -> None:
    catalogue = studio.catalogue

    @app.post("/api/denoise")
    async def denoise(file: UploadFile = File(...), run: str | None = Form(None), sigma: float | None = Form(None)):
        data = await file.read()
        from starlette.concurrency import run_in_threadpool

        job = await run_in_threadpool(studio.denoiser.submit, file.filename or "upload.png", data, run, sigma)
        return _job(job)

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str):
        return _job(studio.denoiser.job(job_id))

    @app.get("/api/jobs/{job_id}/result")
    def job_result(job_id: str, inline: bool = False):
        found = studio.denoiser.job(job_id)
        if found.state != "done":
            raise GenError(f"the job is {found.state}", where=job_id, hint="wait until it is done")
        name = "denoised-" + found.name[4:]
        return FileResponse(found.result, filename=None if inline else name, media_type=_media_type(name))

    @app.post("/api/runs/{run_id}/score")
    async def score(run_id: str, files: list[UploadFile] = File(...)):
        from starlette.concurrency import run_in_threadpool

        uploads = [(f.filename or "upload", await f.read()) for f in files]
        run = await run_in_threadpool(catalogue.open, run_id)

        def work():
            with studio.lock(run_id):
                return score_uploads(run, uploads, studio.work)

        return await run_in_threadpool(work)


def _query(name: str):
    from fastapi import Query

    return Query(..., alias=name, max_length=20_000)


def _job(job) -> dict[str, Any]:
    return {"id": job.id, "state": job.state, "progress": round(job.progress, 4), "error": job.error,
            "seconds": job.seconds, **job.info}


MEDIA = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".mid": "audio/midi",
         ".wav": "audio/wav", ".txt": "text/plain; charset=utf-8", ".json": "application/json",
         ".csv": "text/csv; charset=utf-8"}


def _media_type(name: str) -> str:
    return MEDIA.get(Path(name).suffix.lower(), "application/octet-stream")
