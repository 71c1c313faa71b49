"""create_app(settings) -> FastAPI. The lifespan owns the engines."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from supervisor.backends import ModelInfo, load_engines
from supervisor.engine import EngineError, Engines, PromptTooLong
from supervisor.settings import Settings

from .protocol import HealthResponse
from .solve import router as solve_router

log = logging.getLogger(__name__)

STAND_IN_NOTE = ("The rationale model is a stand-in ({name}), not RATIONALYST: its "
                 "rationales come from a general chat model. Set RATIONALYST_RATIONALE_MODEL "
                 "to Dongwei/Rationalyst_reasoning_datasets for the real one.")


def _error(status: int, message: str, type_: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(status_code=status,
                        content={"error": {"message": message, "type": type_, "param": param}})


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    parts, param = [], None
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        if err.get("type") == "json_invalid":
            return "the request body is not valid JSON", None
        where = ".".join(loc)
        param = param or where or None
        msg = err.get("msg", "invalid value").removeprefix("Value error, ")
        got = f" (got {err['input']!r})" if "input" in err and loc and not isinstance(
            err["input"], dict) else ""
        parts.append(f"{where}: {msg}{got}" if where else msg)
    return "; ".join(parts), param


def create_app(settings: Settings | None = None, engines: Engines | None = None,
               info: ModelInfo | None = None) -> FastAPI:
    """Build the app. Pass `engines` (and `info`) to serve engines built elsewhere,
    e.g. a scripted engine in tests; otherwise they load from `settings` at start-up."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        owned = engines is None
        if owned:
            # Loading here makes a bad checkpoint fail start-up, not the first request.
            app.state.engines, app.state.info = load_engines(settings)
        log.info("models ready: %s", app.state.info)
        try:
            yield
        finally:
            if owned:
                await app.state.engines.close()

    app = FastAPI(title="rationalyst-server", version="0.1.0", lifespan=lifespan,
                  description="Inference-time process supervision with RATIONALYST.")
    app.state.settings = settings
    app.state.engines = engines
    app.state.info = info or ModelInfo("agent", "rationale", "agent", True)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        message, param = _validation_message(exc)
        status = 400 if message.endswith("not valid JSON") else 422
        return _error(status, message, "invalid_request_error", param)

    @app.exception_handler(PromptTooLong)
    async def _too_long(request: Request, exc: PromptTooLong):
        return _error(400, str(exc), "invalid_request_error")

    @app.exception_handler(EngineError)
    async def _engine(request: Request, exc: EngineError):
        log.error("engine error: %s", exc)
        return _error(503, f"the model engine failed: {exc}", "engine_error")

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail), "invalid_request_error")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        return _error(500, "internal error; see the server log", "internal_error")

    @app.get("/health", response_model=HealthResponse)
    async def health(request: Request) -> dict:
        info: ModelInfo = request.app.state.info
        return {"status": "ready" if request.app.state.engines else "loading",
                "models": {"agent": info.agent, "rationale": info.rationale,
                           "scorer": info.scorer},
                "rationale_is_stand_in": info.rationale_is_stand_in,
                "note": STAND_IN_NOTE.format(name=info.rationale)
                if info.rationale_is_stand_in else None}

    app.include_router(solve_router)
    return app
