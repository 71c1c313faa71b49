"""create_app(settings) -> FastAPI. The lifespan owns the engines."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rationalyst.protocol import HealthResponse
from rationalyst.supervisor import profiles
from rationalyst.supervisor.backends import ModelInfo, backend_status, load_engines, verifier_models
from rationalyst.supervisor.engine import Engines
from rationalyst.supervisor.models import RATIONALYST_HUB_ID

from . import errors
from .admission import Admission
from .metrics import Metrics
from .middleware import RequestContext
from .openai import router as openai_router
from .score import router as score_router
from .settings import ServerSettings
from .solve import router as solve_router
from .ui import router as ui_router

log = logging.getLogger(__name__)

# The published checkpoint has no LM head, so the server refuses it as it is: the note
# points to the import that makes it servable.
STAND_IN_NOTE = (
    "The rationale model is a stand-in ({name}), not RATIONALYST: its "
    "rationales come from a general chat model. For the real one, import the "
    "published checkpoint once: rationalyst import-checkpoint "
    f"{RATIONALYST_HUB_ID} --base meta-llama/Meta-Llama-3-8B-Instruct --out DIR, "
    "then set RATIONALYST_RATIONALE_MODEL to DIR."
)


def create_app(
    settings: ServerSettings | None = None,
    engines: Engines | None = None,
    info: ModelInfo | None = None,
) -> FastAPI:
    """Build the app. Pass `engines` (and `info`) to serve engines built elsewhere,
    e.g. a scripted engine in tests; otherwise they load from `settings` at start-up."""
    settings = settings or ServerSettings()
    profiles.configure(settings.fewshot_dir, settings.benchmark_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        owned = engines is None
        if owned:
            # Loading here makes a bad checkpoint fail start-up, not the first request.
            app.state.engines, app.state.info = await load_engines(settings)
        log.info("models ready: %s", app.state.info)
        try:
            yield
        finally:
            if owned:
                await app.state.engines.close()

    app = FastAPI(
        title="rationalyst-server",
        version="0.1.0",
        lifespan=lifespan,
        description="Inference-time process supervision with RATIONALYST.",
    )
    app.state.settings = settings
    app.state.engines = engines
    app.state.info = info or ModelInfo("agent", "rationale", "agent", True)

    errors.install(app)
    app.state.metrics = Metrics()
    app.state.admission = Admission(
        settings.max_concurrent_solves, settings.max_queued_solves, app.state.metrics.queue_depth
    )
    app.add_middleware(
        RequestContext,
        metrics=app.state.metrics,
        api_keys=settings.api_keys,
        max_body_bytes=settings.max_body_bytes,
        routes=app.router.routes,
    )
    if settings.cors_origins:  # outermost, so preflights need no key
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "HEAD", "OPTIONS"],
            allow_headers=["authorization", "content-type", "x-request-id"],
            expose_headers=["x-request-id", "retry-after"],
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/health",
        response_model=HealthResponse,
        responses={503: {"model": HealthResponse, "description": "not ready"}},
    )
    async def health(request: Request):
        info: ModelInfo = request.app.state.info
        engines: Engines | None = request.app.state.engines
        problems = []
        if engines is not None:
            results = await asyncio.gather(
                *(e.check() for e in engines.distinct()), return_exceptions=True
            )
            problems = [str(r) for r in results if isinstance(r, Exception)]
        status = "loading" if engines is None else "degraded" if problems else "ready"
        body = HealthResponse(
            status=status,
            rationale_is_stand_in=info.rationale_is_stand_in,
            errors=problems,
            models={
                "agent": info.agent,
                "rationale": info.rationale,
                "scorer": info.scorer,
                **(verifier_models(engines, info.agent) if engines is not None else {}),
            },
            note=STAND_IN_NOTE.format(name=info.rationale) if info.rationale_is_stand_in else None,
            **(backend_status(engines) if engines is not None else {}),
        )
        return JSONResponse(body.model_dump(), status_code=200 if status == "ready" else 503)

    app.include_router(solve_router)
    app.include_router(openai_router)
    app.include_router(score_router)
    app.include_router(ui_router)
    return app
