"""The ASGI application (FastAPI on Starlette): POST /ents, POST /render,
GET / (the displaCy page), GET /health, GET /metrics and the OpenAPI
description at /openapi.json.

The pipeline loads in a thread after the application starts, so /health
answers at once: 503 while loading, 200 once it can annotate. Every request
is checked before it waits for the pipeline (api.py), and each answer that
is not 200 is JSON with an `error`; nothing a request sends or the pipeline
raises on a text stops the process. /docs (Swagger UI) is off: it loads its
scripts from a CDN, and this server works offline.
"""

import asyncio
import os
import time
from typing import Any, Dict, Optional

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from .api import ApiError, EntsRequest, EntsResponse, ErrorResponse, RenderResponse, parse_texts, read_body
from .batcher import MicroBatcher
from .metrics import Metrics
from .page import render_entities, render_page
from .pipeline import ServedPipeline, load_served_pipeline
from .settings import ServeSettings


class ServerState:
    """What the application holds once started: the pipeline and its batcher
    when loaded, or why loading failed."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.pipeline: Optional[ServedPipeline] = None
        self.batcher: Optional[MicroBatcher] = None
        self.load_error: Optional[str] = None
        self.loading: Optional["asyncio.Task[None]"] = None

    async def load(self) -> None:
        try:
            pipeline = await asyncio.to_thread(load_served_pipeline, self.settings)
        except Exception as err:
            self.load_error = f"loading {self.settings.model} failed: {err!r}"
            print(self.load_error, flush=True)
            return
        batcher = MicroBatcher(
            pipeline.annotate, self.settings.max_batch_texts, self.settings.max_wait_ms / 1000, self.metrics
        )
        batcher.start()
        self.pipeline, self.batcher = pipeline, batcher

    def ready(self) -> ServedPipeline:
        if self.pipeline is None:
            raise ApiError(503, self.load_error or "the pipeline is loading: retry in a moment (GET /health says when)")
        return self.pipeline

    async def annotate(self, request: Request) -> Dict[str, Any]:
        """The texts of a request and their rows; a text that broke the
        pipeline fails the request (500), and only that request."""
        pipeline = self.ready()
        texts = parse_texts(await read_body(request, self.settings.max_request_bytes), self.settings)
        request.state.texts = len(texts)
        rows = await self.batcher.submit(texts)
        for index, row in enumerate(rows):
            if row.error is not None:
                # the row's error starts with its place in the batch, not in this request
                raise ApiError(500, f"text {index}: {row.error.partition(': ')[2]}")
        return {"texts": texts, "rows": rows, "pipeline": pipeline.info}


class RequestCounter:
    """ASGI middleware: counts every HTTP request by route and status, with
    the latency of those that carried texts."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def send_and_note(message: Dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            texts = scope.get("state", {}).get("texts", 0)
            # the application's own paths only: a client's made-up paths must not grow the counters
            path = scope["path"] if scope["path"] in {route.path for route in scope["app"].routes} else "(other)"
            route = f"{scope['method']} {path}"
            self.metrics.record_request(route, status[0], time.perf_counter() - started, texts)


def error_responses(*statuses: int) -> Dict[int, Dict[str, Any]]:
    return {status: {"model": ErrorResponse} for status in statuses}


def create_app(settings: ServeSettings) -> FastAPI:
    state = ServerState(settings)

    async def lifespan(app: FastAPI):
        state.loading = asyncio.get_running_loop().create_task(state.load())
        yield
        state.loading.cancel()
        if state.batcher is not None:
            await state.batcher.stop()

    app = FastAPI(
        title="CoNLL NER entities",
        description="Named entities of texts, from a spaCy pipeline trained or packaged by this project",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.server = state
    app.add_middleware(RequestCounter, metrics=state.metrics)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> JSONResponse:
        return JSONResponse(err.body, status_code=err.status)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, err: Exception) -> JSONResponse:
        return JSONResponse({"error": f"the server failed on this request: {err!r}"}, status_code=500)

    request_body = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EntsRequest.model_json_schema()}},
        }
    }

    @app.post(
        "/ents",
        response_model=EntsResponse,
        responses=error_responses(400, 413, 422, 500, 503),
        openapi_extra=request_body,
        summary="The entities of each text",
    )
    async def ents(request: Request) -> JSONResponse:
        done = await state.annotate(request)
        results = [{"entities": [entity.__dict__ for entity in row.entities]} for row in done["rows"]]
        return JSONResponse({"pipeline": done["pipeline"], "results": results})

    @app.post(
        "/render",
        response_model=RenderResponse,
        responses=error_responses(400, 413, 422, 500, 503),
        openapi_extra=request_body,
        summary="displaCy's markup of the texts' entities (what the page at / shows)",
    )
    async def render(request: Request) -> JSONResponse:
        done = await state.annotate(request)
        markup = await asyncio.to_thread(render_entities, done["texts"], done["rows"])
        return JSONResponse({"pipeline": done["pipeline"], "html": markup})

    @app.get("/", response_class=HTMLResponse, summary="A page to try the pipeline in a browser")
    async def page(request: Request) -> HTMLResponse:
        if state.pipeline is None:
            return HTMLResponse("<p>The pipeline is loading: reload in a moment.</p>", status_code=503)
        info = state.pipeline.info
        return HTMLResponse(
            render_page(info["name"], info["version"], info["precision"], state.pipeline.labels, str(request.base_url))
        )

    @app.get(
        "/health",
        summary="200 once the pipeline is loaded, 503 before (or if loading failed); `worker`: the answering process",
    )
    async def health() -> JSONResponse:
        if state.pipeline is not None:
            return JSONResponse({"status": "ready", "pipeline": state.pipeline.info, "worker": os.getpid()})
        status = "failed" if state.load_error else "loading"
        return JSONResponse({"status": status, "error": state.load_error, "worker": os.getpid()}, status_code=503)

    @app.get("/metrics", summary="Requests by route and status, texts, batch sizes and latencies of this worker")
    async def metrics() -> JSONResponse:
        return JSONResponse(state.metrics.to_dict())

    return app


def app_from_environment() -> FastAPI:
    """uvicorn's factory in each worker process (scripts/serve.py sets the
    settings in the environment)."""
    return create_app(ServeSettings.from_environment())
