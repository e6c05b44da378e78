"""The HTTP service (``sgpa serve``): alignment on request, explanations as durable jobs, and the web viewer.

Endpoints (OpenAPI at ``/docs``):

- ``POST /v1/align`` — multipart audio + transcript (+ stage settings) → the segmentation JSON of ``sgpa align``, or
  Praat TextGrid with ``?format=textgrid``. Runs at once, at most ``max_concurrent_aligns`` at a time.
- ``POST /v1/explanations`` → ``202`` and a job; ``GET /v1/explanations/{id}`` → status, progress and (when done)
  the explanation JSON; ``…/plot.png``, ``…/spectrogram.png``, ``…/textgrid``, ``…/segments``, ``…/audio``;
  ``DELETE`` cancels a queued or running job, or forgets a finished one.
- ``GET /healthz``, ``GET /v1/models``; ``GET /`` the viewer.

Every error is a JSON body ``{"error": "<one line>"}`` with the status that says what went wrong: 401 (token),
404, 413 (upload too large), 422 (unusable input: corrupt audio, empty transcript, audio too long, a bad setting),
429 (the job queue is full), 503 (every alignment slot is busy, or the server is stopping). The line is the one the
command line prints for the same input.

The service holds no logic of its own beyond requests and jobs: it calls :func:`sgpa.api.align` and
:func:`sgpa.api.explain`, as the command line does.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# FastAPI reads the endpoints' annotations, so its names live at module level (this module is only imported by
# `sgpa serve` and the tests, never by `import sgpa`).
from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from sgpa.errors import InputError
from sgpa.service.jobs import DONE, QUEUED, RUNNING, UNFINISHED, JobStore
from sgpa.service.worker import ModelEntry, Models, WorkerPool

log = logging.getLogger("sgpa.serve")

STATIC_DIR = Path(__file__).parent / "static"
TOKEN_ENV = "SGPA_SERVE_TOKEN"
#: Paths anyone may fetch without the token: they hold no data (the viewer's files, the API description, liveness).
OPEN_PATHS = ("/", "/healthz", "/docs", "/openapi.json", "/favicon.ico")
OPEN_PREFIXES = ("/static/", "/docs/")


def default_models() -> list[ModelEntry]:
    """The shipped models: the CTC recogniser (explains its transcript) and the oracle LFM2-Audio model."""
    return [ModelEntry("sgpa-ctc-en", "ctc", None), ModelEntry("sgpa-lfm2-oracle", "lfm2-audio", None)]


@dataclass
class ServiceConfig:
    """What one server process serves, and its limits.

    Attributes
    ----------
    data_dir
        Where the job database (``sgpa-serve.sqlite3``), the uploads and the results live.
    models
        The models clients may name (``GET /v1/models``); the first is the default.
    align_model
        The CTC model of stage 1 (``None``: the shipped sgpa-ctc-en).
    token
        When set, every request but the open paths needs ``Authorization: Bearer <token>``.
    max_upload_bytes, max_duration_s
        Largest request body (413 above it) and longest audio (422 above it).
    max_queued_jobs
        Explanation jobs waiting to run (429 above it).
    workers
        Explanation jobs running at once (threads sharing the loaded models).
    max_concurrent_aligns, max_waiting_aligns
        Alignments running at once, and waiting for a slot (503 above the sum).
    max_budget
        Most model evaluations one explanation may ask for (422 above it).
    preload
        Model names loaded at start-up (the aligner always is); the others load on first use.
    """

    data_dir: Path
    models: list[ModelEntry] = field(default_factory=default_models)
    align_model: str | None = None
    token: str | None = None
    max_upload_bytes: int = 25 * 2**20
    max_duration_s: float = 300.0
    max_queued_jobs: int = 32
    workers: int = 1
    max_concurrent_aligns: int = 2
    max_waiting_aligns: int = 8
    max_budget: int = 20_000
    preload: tuple[str, ...] = ()
    device: str = "cpu"

    def validate(self) -> ServiceConfig:
        for name in ("max_upload_bytes", "max_queued_jobs", "workers", "max_concurrent_aligns", "max_budget"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.max_waiting_aligns < 0:
            raise InputError(f"max_waiting_aligns must be at least 0, not {self.max_waiting_aligns}")
        if not self.max_duration_s > 0:
            raise InputError(f"max_duration_s must be positive, not {self.max_duration_s}")
        if self.token is not None and not self.token.strip():
            raise InputError("the token is empty")
        Models(self.models, self.align_model).entry(None)  # unique names, at least one
        for name in self.preload:
            Models(self.models, self.align_model).entry(name)
        return self


class ServiceError(Exception):
    """A request the service refuses, with the HTTP status that says why."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


class AdmissionGate:
    """At most ``running`` holders at once and ``waiting`` more in line; anyone beyond is turned away at once
    (503), so a burst cannot pile up threads and memory."""

    def __init__(self, running: int, waiting: int) -> None:
        self._slots = threading.Semaphore(running)
        self._capacity = running + waiting
        self._inside = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def enter(self) -> Any:
        with self._lock:
            if self._inside >= self._capacity:
                raise ServiceError(503, "the server is busy: every alignment slot is taken; retry shortly")
            self._inside += 1
        try:
            with self._slots:
                yield
        finally:
            with self._lock:
                self._inside -= 1


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the upload is larger than this server's limit of {max_bytes / 2**20:g} MiB")


class UploadLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes``, refused from its Content-Length before any of it
    is read, or as soon as a chunked body grows past the limit.

    Written here rather than taken from Starlette's ``RequestBodyLimitMiddleware`` because that one answers in
    plain text, and every error of this service is the same JSON ``{"error": ...}``.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            error = BodyTooLarge(self.max_bytes)
            await JSONResponse({"error": error.detail}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Any:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)  # an HTTPException: FastAPI's handlers answer it as JSON
            return message

        await self.app(scope, counting_receive, send)


def one_line(message: Any) -> str:
    return " ".join(str(message).split())


def _client_label(filename: str | None) -> str:
    """A client's file name reduced to a harmless label (never used as a path)."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = re.sub(r"[^A-Za-z0-9._ -]", "_", name).strip(" .")
    return name[:100] or "upload"


def _form_error(errors: list[dict[str, Any]]) -> str:
    """FastAPI's validation errors as one line: ``transcript: Field required``."""
    parts = []
    for error in errors[:3]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query"))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


def create_app(config: ServiceConfig) -> Any:
    """The FastAPI application for ``config``: models and workers start with it and stop with it."""
    from sgpa import __version__

    config = config.validate()
    config.data_dir = Path(config.data_dir)
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        store = JobStore(config.data_dir)
        requeued = store.recover()
        if requeued:
            log.info("%d unfinished job(s) from a previous run queued again", requeued)
        models = Models(config.models, config.align_model, device=config.device)
        models.preload(list(config.preload))
        pool = WorkerPool(store, models, n_workers=config.workers, max_duration_s=config.max_duration_s)
        pool.start()
        state.update(store=store, models=models, pool=pool,
                     align_gate=AdmissionGate(config.max_concurrent_aligns, config.max_waiting_aligns),
                     submit_lock=threading.Lock(),
                     uploads=config.data_dir / "uploads")
        state["uploads"].mkdir(parents=True, exist_ok=True)
        try:
            yield
        finally:
            state["stopping"] = True
            pool.stop()
            store.close()

    app = FastAPI(title="sgpa", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Word-level alignment and Shapley explanations of audio-language models.")
    app.add_middleware(UploadLimit, max_bytes=config.max_upload_bytes)

    # --- errors: always {"error": "<one line>"} -----------------------------------------------------------

    def error_response(status_code: int, message: str, headers: dict[str, str] | None = None) -> Any:
        return JSONResponse({"error": one_line(message)}, status_code=status_code, headers=headers)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, error: ServiceError) -> Any:
        return error_response(error.status_code, str(error))

    @app.exception_handler(InputError)
    async def _input_error(request: Request, error: InputError) -> Any:
        return error_response(422, str(error))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> Any:
        return error_response(422, _form_error(error.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Any:
        return error_response(error.status_code, str(error.detail))

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, error: Exception) -> Any:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error: {type(error).__name__}")

    # --- the token ----------------------------------------------------------------------------------------

    @app.middleware("http")
    async def require_token(request: Request, call_next: Any) -> Any:
        path = request.url.path
        if config.token is None or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return await call_next(request)
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), config.token.encode()):
            return error_response(401, "missing or wrong token: send 'Authorization: Bearer <token>'",
                                  headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)

    # --- helpers -----------------------------------------------------------------------------------------

    def running() -> dict[str, Any]:
        if state.get("stopping") or "store" not in state:
            raise ServiceError(503, "the server is starting or stopping; retry shortly")
        return state

    def save_upload(upload: UploadFile, destination: Path) -> None:
        """Copy an upload to ``destination`` (a server-chosen name) completely, or not at all."""
        from sgpa.io import atomic_write

        def copy(tmp: Path) -> None:
            upload.file.seek(0)
            with open(tmp, "wb") as out:
                while chunk := upload.file.read(1 << 20):
                    out.write(chunk)

        atomic_write(destination, copy)

    def check_audio_file(path: Path, label: str) -> Any:
        from sgpa.audio import load_audio

        try:
            return load_audio(path, max_duration_s=config.max_duration_s)
        except InputError as error:
            raise InputError(str(error).replace(str(path), label)) from None

    def check_transcript(transcript: str) -> None:
        from sgpa.text import normalize_transcript

        normalize_transcript(transcript, running()["models"].aligner().characters)

    # --- health and models -------------------------------------------------------------------------------

    @app.get("/healthz", summary="Liveness and what the server holds")
    def healthz() -> dict[str, Any]:
        current = running()
        return {
            "status": "ok", "version": __version__,
            "models_loaded": sorted(current["models"].loaded),
            "jobs": {"queued": current["store"].count(QUEUED), "running": current["store"].count(RUNNING)},
            "workers": config.workers,
        }

    @app.get("/v1/models", summary="The models this server aligns with and explains")
    def list_models() -> dict[str, Any]:
        models = running()["models"]
        return {
            "aligner": {"name": config.align_model or "sgpa-ctc-en"},
            "models": [entry.to_dict(entry.name == models.default_name) for entry in config.models],
            "limits": {"max_upload_bytes": config.max_upload_bytes, "max_duration_s": config.max_duration_s,
                       "max_queued_jobs": config.max_queued_jobs, "max_budget": config.max_budget},
        }

    # --- alignment ---------------------------------------------------------------------------------------

    @app.post("/v1/align", summary="Align a transcript to audio (the segmentation JSON of `sgpa align`)")
    def align(
        audio: UploadFile = File(..., description="Audio in any format libsndfile reads."),
        transcript: str = Form(..., description="What is said."),
        grid: str = Form("lfm2-audio", description="Target token grid: lfm2-audio, whisper, wav2vec2."),
        token_duration_ms: float | None = Form(None, description="Custom token duration (overrides grid)."),
        token_offset_ms: float = Form(0.0),
        padding_ms: float | None = Form(None),
        alpha: float | None = Form(None),
        accept_ratio: float | None = Form(None),
        min_word_ms: float | None = Form(None),
        max_players: int | None = Form(None),
        min_pause_ms: float | None = Form(None),
        interior_cut: str | None = Form(None),
        refine_interior: bool | None = Form(None),
        speech_gate: bool | None = Form(None),
        speech_detector: str | None = Form(None),
        format: str = Query("json", pattern="^(json|textgrid)$", description="json or textgrid (Praat)."),
    ) -> Any:
        from sgpa.api import align as run_alignment

        current = running()
        align_config = alignment_settings(
            grid=grid, token_duration_ms=token_duration_ms, token_offset_ms=token_offset_ms, padding_ms=padding_ms,
            alpha=alpha, accept_ratio=accept_ratio, min_word_ms=min_word_ms, max_players=max_players,
            min_pause_ms=min_pause_ms, interior_cut=interior_cut, refine_interior=refine_interior,
            speech_gate=speech_gate, speech_detector=speech_detector, max_duration_s=config.max_duration_s)
        label = _client_label(audio.filename)
        if not transcript.strip():
            raise InputError("the transcript is empty (no words to align)")
        with current["align_gate"].enter():
            with tempfile.TemporaryDirectory(dir=current["uploads"]) as folder:
                path = Path(folder) / "audio"
                save_upload(audio, path)
                waveform, audio_info = check_audio_file(path, label)
                audio_info.path = label
                segmentation = run_alignment(waveform, transcript, aligner=current["models"].aligner(),
                                             config=align_config, sample_rate=audio_info.sample_rate)
                segmentation.audio = audio_info
                if format == "textgrid":
                    from sgpa.textgrid import save_textgrid

                    textgrid_path = Path(folder) / "words.TextGrid"
                    save_textgrid(segmentation, textgrid_path)
                    text = textgrid_path.read_text(encoding="utf-8")
                    stem = Path(label).stem or "upload"
                    return PlainTextResponse(text, headers={
                        "Content-Disposition": f'attachment; filename="{stem}.TextGrid"'})
        return Response(segmentation.to_json() + "\n", media_type="application/json")

    # --- explanations ------------------------------------------------------------------------------------

    @app.post("/v1/explanations", status_code=202, summary="Queue an explanation job")
    def create_explanation(
        request: Request,
        audio: UploadFile = File(...),
        transcript: str = Form(...),
        model: str | None = Form(None, description="A name from GET /v1/models (default: the first)."),
        prompt: str | None = Form(None, description="Instruction for a chat model (LFM2-Audio)."),
        estimator: str = Form("auto", description="auto, exact, permutation, kernel, loo, banzhaf."),
        budget: int | None = Form(None, description="Most model evaluations."),
        tolerance: float | None = Form(None),
        seed: int = Form(0),
        masking: str | None = Form(None, description="How an absent word is removed (default: the model's)."),
        normalization: str | None = Form(None, description="Waveform maskings: frozen (default) or per-input."),
        text_players: bool = Form(False),
        max_players: int | None = Form(None),
        min_pause_ms: float | None = Form(None),
    ) -> Any:
        from sgpa.attribution.estimators import check_options
        from sgpa.attribution.models import backend_maskings
        from sgpa.attribution.models.base import NORMALIZATIONS

        current = running()
        store: JobStore = current["store"]
        queue_full = ServiceError(429, f"the job queue is full ({config.max_queued_jobs} jobs waiting); retry later")
        if store.count(QUEUED) >= config.max_queued_jobs:
            raise queue_full  # at once, before the upload is looked at
        entry = current["models"].entry(model)
        check_options(estimator, tolerance, seed)
        if budget is not None and not 2 <= budget <= config.max_budget:
            raise InputError(f"budget must be between 2 and this server's limit of {config.max_budget}, not {budget}")
        if masking is not None and masking not in backend_maskings(entry.backend):
            raise InputError(f"unknown masking {masking!r} for {entry.name}; choose one of "
                             f"{', '.join(backend_maskings(entry.backend))}")
        if normalization is not None and normalization not in NORMALIZATIONS:
            raise InputError(f"unknown normalization {normalization!r}; choose one of {', '.join(NORMALIZATIONS)}")
        if text_players and entry.backend in ("ctc", "whisper"):
            raise InputError(f"text players need a chat model with a prompt (lfm2-audio, qwen2-audio, voxtral), not the "
                             f"{entry.backend} backend")
        align_settings = alignment_settings(max_players=max_players, min_pause_ms=min_pause_ms).to_dict()
        check_transcript(transcript)
        label = _client_label(audio.filename)
        job_id, folder = store.new_folder()
        try:
            save_upload(audio, folder / JobStore.AUDIO_FILE)
            check_audio_file(folder / JobStore.AUDIO_FILE, label)
            parameters = {
                "model": entry.name, "transcript": transcript, "prompt": prompt, "estimator": estimator,
                "budget": budget, "tolerance": tolerance, "seed": seed, "masking": masking,
                "normalization": normalization, "text_players": text_players,
                "align": {key: align_settings[key] for key in ("max_players", "min_pause_s")},
            }
            with state["submit_lock"]:  # the count and the insert together: concurrent requests cannot overfill
                if store.count(QUEUED) >= config.max_queued_jobs:
                    raise queue_full
                job = store.add(job_id, parameters, label)
        except BaseException:
            store.remove(job_id)
            raise
        current["pool"].notify()
        return JSONResponse(job_view(job), status_code=202,
                            headers={"Location": f"/v1/explanations/{job.id}"})

    def job_or_404(job_id: str) -> Any:
        if not re.fullmatch(r"[0-9a-f]{32}", job_id):
            raise ServiceError(404, f"no job {job_id!r}")
        job = running()["store"].get(job_id)
        if job is None:
            raise ServiceError(404, f"no job {job_id!r}")
        return job

    def job_view(job: Any) -> dict[str, Any]:
        view = job.to_dict()
        fresh = state["pool"].progress(job.id) if job.status == RUNNING else None
        if fresh is not None:
            view["progress"] = {"evaluations_done": fresh[0], "evaluations_planned": fresh[1]}
        base = f"/v1/explanations/{job.id}"
        view["links"] = {"self": base, "audio": f"{base}/audio"}
        if job.status == DONE:
            view["links"].update(plot=f"{base}/plot.png", spectrogram=f"{base}/spectrogram.png",
                                 textgrid=f"{base}/textgrid", segments=f"{base}/segments")
        return view

    @app.get("/v1/explanations", summary="The most recent jobs")
    def list_explanations(limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
        return {"jobs": [job_view(job) for job in running()["store"].list(limit)]}

    @app.get("/v1/explanations/{job_id}", summary="A job: status, progress, and the explanation when done")
    def get_explanation(job_id: str) -> Any:
        import json

        job = job_or_404(job_id)
        view = job_view(job)
        if job.status == DONE:
            path = state["store"].file(job.id, JobStore.EXPLANATION_FILE)
            view["explanation"] = json.loads(path.read_text(encoding="utf-8"))
        return view

    def result_file(job_id: str, name: str, media_type: str, download_name: str | None = None) -> Any:
        job = job_or_404(job_id)
        if name != JobStore.AUDIO_FILE and job.status != DONE:
            raise ServiceError(409 if job.status in UNFINISHED else 404,
                               f"job {job_id} is {job.status}; its results exist once it is done")
        path = state["store"].file(job.id, name)
        if not path.is_file():
            raise ServiceError(404, f"job {job_id} has no {name}")
        return FileResponse(path, media_type=media_type, filename=download_name)

    @app.get("/v1/explanations/{job_id}/plot.png", summary="The explanation's figure")
    def get_plot(job_id: str) -> Any:
        return result_file(job_id, JobStore.PLOT_FILE, "image/png")

    @app.get("/v1/explanations/{job_id}/spectrogram.png", summary="A bare log-mel spectrogram (for the viewer)")
    def get_spectrogram(job_id: str) -> Any:
        return result_file(job_id, "spectrogram.png", "image/png")

    @app.get("/v1/explanations/{job_id}/textgrid", summary="The word segments as a Praat TextGrid")
    def get_textgrid(job_id: str) -> Any:
        job = job_or_404(job_id)
        return result_file(job_id, "words.TextGrid", "text/plain", f"{Path(job.audio_name).stem or 'upload'}.TextGrid")

    @app.get("/v1/explanations/{job_id}/segments", summary="The word segments (segmentation JSON)")
    def get_segments(job_id: str) -> Any:
        return result_file(job_id, JobStore.SEGMENTS_FILE, "application/json")

    @app.get("/v1/explanations/{job_id}/audio", summary="The uploaded audio, as sent")
    def get_audio(job_id: str) -> Any:
        return result_file(job_id, JobStore.AUDIO_FILE, "application/octet-stream")

    @app.delete("/v1/explanations/{job_id}", summary="Cancel a queued or running job, or forget a finished one")
    def delete_explanation(job_id: str) -> dict[str, Any]:
        job = job_or_404(job_id)
        store: JobStore = state["store"]
        if job.status in UNFINISHED and store.cancel(job.id):
            state["pool"].cancel(job.id)
            return {"id": job.id, "status": "cancelled"}
        store.remove(job.id)
        return {"id": job.id, "status": "deleted"}

    # --- the viewer ----------------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def viewer() -> Any:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # FastAPI's own /docs page loads Swagger UI from a CDN; this one serves the copy swagger-ui-bundle ships.
    from fastapi.openapi.docs import get_swagger_ui_html
    from swagger_ui_bundle import swagger_ui_path

    @app.get("/docs", include_in_schema=False)
    def docs() -> Any:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="sgpa API",
                                   swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/assets/swagger-ui.css",
                                   swagger_favicon_url="/docs/assets/favicon-32x32.png")

    app.mount("/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
    return app


def alignment_settings(
    *,
    grid: str | None = None,
    token_duration_ms: float | None = None,
    token_offset_ms: float | None = None,
    padding_ms: float | None = None,
    alpha: float | None = None,
    accept_ratio: float | None = None,
    min_word_ms: float | None = None,
    max_players: int | None = None,
    min_pause_ms: float | None = None,
    interior_cut: str | None = None,
    refine_interior: bool | None = None,
    speech_gate: bool | None = None,
    speech_detector: str | None = None,
    max_duration_s: float | None = None,
) -> Any:
    """An :class:`~sgpa.pipeline.AlignConfig` from request fields in the command line's units (ms); a field left
    out keeps the measured default. ``InputError`` for a setting out of range."""
    from sgpa.pipeline import GRIDS, INTERIOR_CUTS, AlignConfig

    if grid is not None and token_duration_ms is None and grid not in GRIDS:
        raise InputError(f"unknown grid {grid!r}; choose one of {', '.join(GRIDS)}")
    if interior_cut is not None and interior_cut not in INTERIOR_CUTS:
        raise InputError(f"unknown interior_cut {interior_cut!r}; choose one of {', '.join(INTERIOR_CUTS)}")
    if speech_detector is not None and speech_detector not in ("energy", "silero"):
        raise InputError(f"unknown speech_detector {speech_detector!r}; choose energy or silero")
    seconds = {
        "token_offset_s": token_offset_ms, "padding_s": padding_ms, "min_word_duration_s": min_word_ms,
        "min_pause_s": min_pause_ms,
    }
    fields: dict[str, Any] = {name: value / 1000 for name, value in seconds.items() if value is not None}
    if token_duration_ms is not None:
        fields["grid"] = token_duration_ms / 1000
    elif grid is not None:
        fields["grid"] = grid
    plain = {"alpha": alpha, "accept_ratio": accept_ratio, "max_players": max_players,
             "interior_cut": interior_cut, "refine_interior": refine_interior, "speech_gate": speech_gate,
             "speech_detector": speech_detector, "max_duration_s": max_duration_s}
    fields.update({name: value for name, value in plain.items() if value is not None})
    if max_players is not None and max_players < 1:
        raise InputError(f"max_players must be at least 1, not {max_players}")
    return AlignConfig(**fields).validate()
