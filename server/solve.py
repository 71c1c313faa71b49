"""POST /solve: JSON, or a stream of Server-Sent Events, one per chosen step."""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse
from starlette.background import BackgroundTask

from rationalyst.protocol import (DONE_EVENT, ERROR_EVENT, STEP_EVENT, ErrorResponse,
                                  SolveRequest, SolveResult, default_step_end, pick_task)
from rationalyst.supervisor.engine import EngineError, PromptTooLong
from rationalyst.supervisor.loop import check_fits, solve
from rationalyst.supervisor.types import Problem, Result, SolveParams, Step

from .errors import APIError, engine_error_body

log = logging.getLogger(__name__)
router = APIRouter()

# Request fields that are solve parameters under the same name (so a new one flows
# through); the token budget and the deadline meet the server's settings below.
_PARAMS = {f.name for f in dataclasses.fields(SolveParams)} - {
    "max_tokens", "timeout_s", "step_max_tokens", "rationale_max_tokens"}


def request_params(req) -> dict:
    """The solve parameters a request model carries (/solve's, or /v1's extra_body)."""
    return {n: getattr(req, n) for n in _PARAMS if n in type(req).model_fields}


def solve_params(request: Request, max_tokens: int | None, timeout_s: float | None,
                 profile: str = "generic", **fields) -> SolveParams:
    """Request fields plus the server's per-call token settings, budget and deadline.
    Turn steps (the reference profile's default) get turn_max_tokens per step and per
    rationale; the reference profile has no budget unless the request sets one."""
    s = request.app.state.settings
    fields["step_end"] = fields.get("step_end") or default_step_end(profile)
    turn = fields["step_end"] == "turn"
    if max_tokens is None and profile != "reference":
        max_tokens = s.max_tokens
    if timeout_s is not None and timeout_s > s.max_timeout_s:
        raise APIError(422, f"timeout_s must be at most {s.max_timeout_s:g} on this server, "
                            f"got {timeout_s:g}", param="timeout_s")
    return SolveParams(step_max_tokens=s.turn_max_tokens if turn else s.step_max_tokens,
                       rationale_max_tokens=(s.turn_max_tokens if turn
                                             else s.rationale_max_tokens),
                       max_tokens=max_tokens,
                       timeout_s=timeout_s or s.max_timeout_s, **fields)


@asynccontextmanager
async def admitted(request: Request):
    """Hold one of the server's solve slots (or get a 429) for a JSON response."""
    admission = request.app.state.admission
    await admission.acquire()
    try:
        yield
    finally:
        admission.release()


async def sse_response(request: Request, events: AsyncIterator[dict]) -> EventSourceResponse:
    """Take a solve slot (or 429), then stream; the slot is freed when the stream ends.
    On SIGTERM a stream may run on for the shutdown grace period."""
    admission = request.app.state.admission
    await admission.acquire()
    return EventSourceResponse(events, ping=15, background=BackgroundTask(admission.release),
                               shutdown_grace_period=request.app.state.settings.shutdown_grace_s)


def _to_solve(req: SolveRequest, request: Request) -> tuple[Problem, SolveParams]:
    problem = Problem(question=req.question.strip(), task=pick_task(req.task, req.choices),
                      choices=tuple(req.choices) if req.choices else None,
                      profile=req.profile, category=req.category)
    return problem, solve_params(request, req.max_tokens, req.timeout_s, req.profile,
                                 **request_params(req))


def run_solve(request: Request, problem: Problem, params: SolveParams,
              solve_id: str) -> AsyncIterator[Step | Result]:
    """The solve's events, recorded in the app's metrics."""
    request.state.strategy = params.strategy
    return request.app.state.metrics.track(
        solve(problem, params, request.app.state.engines, solve_id))


async def final_result(events: AsyncIterator[Step | Result]) -> Result:
    async for ev in events:
        if isinstance(ev, Result):
            return ev
    raise RuntimeError("the solve ended without a result")


def error_event(exc: Exception) -> dict:
    return {"event": ERROR_EVENT, "data": json.dumps(engine_error_body(exc))}


@router.post("/solve", response_model=SolveResult,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "JSON, or SSE events step/done/error"},
                        400: {"model": ErrorResponse}, 401: {"model": ErrorResponse},
                        413: {"model": ErrorResponse}, 422: {"model": ErrorResponse},
                        429: {"model": ErrorResponse}, 503: {"model": ErrorResponse}})
async def post_solve(req: SolveRequest, request: Request):
    engines = request.app.state.engines
    problem, params = _to_solve(req, request)
    check_fits(problem, params, engines)  # 400 now, not an error event later
    solve_id = "solve-" + uuid.uuid4().hex

    events = run_solve(request, problem, params, solve_id)
    if not req.stream:
        async with admitted(request):
            return await final_result(events)

    async def sse():
        try:
            async for ev in events:
                if isinstance(ev, Result):
                    yield {"event": DONE_EVENT, "data": ev.model_dump_json()}
                else:
                    yield {"event": STEP_EVENT, "data": ev.model_dump_json()}
        except (PromptTooLong, EngineError) as exc:
            log.warning("solve %s failed: %s", solve_id, exc)
            yield error_event(exc)
        except Exception as exc:  # a bug: log it, tell the client without a trace
            log.exception("solve %s crashed", solve_id)
            yield error_event(exc)

    # Cancelling the generator on disconnect cancels the solve and its engine requests.
    return await sse_response(request, sse())
