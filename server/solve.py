"""POST /solve: JSON, or a stream of Server-Sent Events, one per chosen step."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
from fastapi import APIRouter, Request, Response
from sse_starlette.sse import EventSourceResponse
from starlette.background import BackgroundTask

from rationalyst.protocol import (
    DONE_EVENT,
    ERROR_EVENT,
    STEP_EVENT,
    ErrorResponse,
    SolveRequest,
    SolveResult,
    default_step_end,
    pick_task,
)
from rationalyst.supervisor.engine import BadParam, BadRequest, ServiceUnavailable
from rationalyst.supervisor.loop import check_fits, solve
from rationalyst.supervisor.types import Problem, Result, SolveParams, Step

from . import errors
from .errors import engine_error_body, error_body

log = logging.getLogger(__name__)
router = APIRouter(route_class=errors.route_class(errors.SOLVE_STATUS))
T = TypeVar("T")

# Request fields that are solve parameters under the same name (so a new one flows
# through); the token budget and the deadline meet the server's settings below, and
# /v1's `stop` (a string or a list) is made a tuple by its route.
_PARAMS = {f.name for f in dataclasses.fields(SolveParams)} - {
    "max_tokens",
    "timeout_s",
    "step_max_tokens",
    "rationale_max_tokens",
    "stop",
}


def request_params(req) -> dict:
    """The solve parameters a request model carries (/solve's, or /v1's extra_body)."""
    return {n: getattr(req, n) for n in _PARAMS if n in type(req).model_fields}


def solve_params(
    request: Request,
    max_tokens: int | None,
    timeout_s: float | None,
    profile: str = "generic",
    **fields,
) -> SolveParams:
    """Request fields plus the server's per-call token settings, budget and deadline.
    Turn steps (the reference profile's default) get turn_max_tokens per step and per
    rationale; the reference profile has no budget unless the request sets one."""
    s = request.app.state.settings
    fields["step_end"] = fields.get("step_end") or default_step_end(profile)
    turn = fields["step_end"] == "turn"
    if max_tokens is None and profile != "reference":
        max_tokens = s.max_tokens
    if timeout_s is not None and timeout_s > s.max_timeout_s:
        # The value as sent (repr: the shortest exact form; with :g 600.0001 read 600).
        got = repr(float(timeout_s)).removesuffix(".0")
        raise BadParam(
            f"timeout_s must be at most {s.max_timeout_s:g} on this server, got {got}",
            param="timeout_s",
        )
    return SolveParams(
        step_max_tokens=s.turn_max_tokens if turn else s.step_max_tokens,
        rationale_max_tokens=(s.turn_max_tokens if turn else s.rationale_max_tokens),
        max_tokens=max_tokens,
        timeout_s=timeout_s or s.max_timeout_s,
        **fields,
    )


@asynccontextmanager
async def admitted(request: Request):
    """Hold one of the server's solve slots (or get a 429) for a JSON response."""
    admission = request.app.state.admission
    await admission.acquire()
    request.state.admitted = True
    try:
        yield
    finally:
        admission.release()


# One thread: a tokenizer is not safe to share across threads, and one bounds the work.
TOKENIZE = ThreadPoolExecutor(1, thread_name_prefix="tokenize")


async def fits(check, *args) -> None:
    """Tokenize off the event loop: a long prompt must not hold /health."""
    await asyncio.get_running_loop().run_in_executor(TOKENIZE, check, *args)


# nginx's "client closed request": only the access log and metrics ever see it.
CLIENT_GONE = 499


async def _disconnected(request: Request) -> None:
    """Return when the client hangs up. The body was read already (the route parsed
    it), so the only message left to receive is the disconnect."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T | Response:
    """Run a JSON response's work, cancelled the moment its client goes away (vLLM's
    `with_cancellation`): a queued request leaves the queue, a running solve cancels
    its in-flight engine requests and frees its slot."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when this handler itself is cancelled (shutdown)
        watch.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if not getattr(request.state, "solve_started", False):
                request.app.state.metrics.aborted.inc()  # (a started solve counts itself)
            log.info("client gone: request %s cancelled", request.state.request_id)
    if task.cancelled():
        return Response(status_code=CLIENT_GONE)
    return task.result()


SHUTDOWN_MESSAGE = (
    "the server is shutting down and its grace period ended before this "
    "solve did; send the request again (another replica will take it)"
)


async def sse_response(
    request: Request, events: AsyncIterator[dict], farewell: list[dict], start=None
) -> EventSourceResponse:
    """Take a solve slot (or 429), await `start()` if given (its errors are still an
    HTTP status), then stream; the slot is freed when the stream ends.
    On SIGTERM a stream may run on for the shutdown grace period; one still running
    then gets the `farewell` events (an error) before it is cut."""
    admission = request.app.state.admission
    await admission.acquire()
    if start is not None:
        try:
            await start()
        except BaseException:
            admission.release()
            raise
    grace, shutdown = request.app.state.settings.shutdown_grace_s, anyio.Event()

    def client_gone() -> None:
        # The access log and the request counter then say 499, as for JSON responses;
        # a solve counts its own abort (metrics.track), a pass-through is counted here.
        request.state.client_gone = True
        if not getattr(request.state, "solve_started", False):
            request.app.state.metrics.aborted.inc()
        log.info("client gone: stream %s cancelled", request.state.request_id)

    return EventSourceResponse(
        _until_cut(events, shutdown, grace, farewell, client_gone),
        ping=15,
        background=BackgroundTask(admission.release),
        shutdown_event=shutdown,
        shutdown_grace_period=grace,
    )


async def _until_cut(
    events: AsyncIterator[dict],
    shutdown: anyio.Event,
    grace: float,
    farewell: list[dict],
    client_gone,
) -> AsyncIterator[dict]:
    async def cut_time() -> None:
        await shutdown.wait()
        # A little before sse-starlette's own cut, so the farewell still goes out.
        await asyncio.sleep(max(0.0, grace - min(1.0, grace / 10)))

    cut = asyncio.ensure_future(cut_time())
    nxt: asyncio.Future | None = None
    gone = False
    try:
        while True:
            nxt = asyncio.ensure_future(anext(events))  # type: ignore[arg-type]
            await asyncio.wait({nxt, cut}, return_when=asyncio.FIRST_COMPLETED)
            if not nxt.done():  # the grace period is over: stop the solve, say so
                await _cancel(nxt)
                log.warning("stream cut at the end of the shutdown grace period")
                for ev in farewell:
                    yield ev
                return
            try:
                ev = nxt.result()
            except StopAsyncIteration:
                return
            yield ev
    except (GeneratorExit, asyncio.CancelledError):
        # sse-starlette closes or cancels the stream: its client left (unless the
        # server is going down, and cancels what outlived the grace period).
        gone = not shutdown.is_set()
        raise
    finally:
        cut.cancel()
        # Shielded: sse-starlette cancels this task again at every await while it
        # tears the response down, and the solve must be seen to its end.
        with anyio.CancelScope(shield=True):
            if nxt is not None and not nxt.done():  # the client left: cancel the solve
                await _cancel(nxt)
            if gone:
                client_gone()
            await events.aclose()  # type: ignore[attr-defined]


async def _cancel(task: asyncio.Future) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
        await task


def _to_solve(req: SolveRequest, request: Request) -> tuple[Problem, SolveParams]:
    problem = Problem(
        question=req.question.strip(),
        task=pick_task(req.task, req.choices),
        choices=tuple(req.choices) if req.choices else None,
        profile=req.profile,
        category=req.category,
        dataset=req.dataset,
    )
    return problem, solve_params(
        request, req.max_tokens, req.timeout_s, req.profile, **request_params(req)
    )


def run_solve(
    request: Request, problem: Problem, params: SolveParams, solve_id: str
) -> AsyncIterator[Step | Result]:
    """The solve's events, recorded in the app's metrics."""
    request.state.strategy = params.strategy

    def started() -> None:
        request.state.solve_started = True

    return request.app.state.metrics.track(
        solve(problem, params, request.app.state.engines, solve_id), started
    )


async def final_result(events: AsyncIterator[Step | Result]) -> Result:
    try:
        async for ev in events:
            if isinstance(ev, Result):
                return ev
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    raise RuntimeError("the solve ended without a result")


async def json_solve(request: Request, events: AsyncIterator[Step | Result]) -> Result:
    async with admitted(request):
        return await final_result(events)


def error_event(exc: Exception) -> dict:
    return {"event": ERROR_EVENT, "data": json.dumps(engine_error_body(exc))}


@router.post(
    "/solve",
    response_model=SolveResult,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "JSON, or SSE events step/done/error",
        },
        400: {"model": ErrorResponse},
        401: {"model": ErrorResponse},
        413: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
        429: {"model": ErrorResponse},
        503: {"model": ErrorResponse},
    },
)
async def post_solve(req: SolveRequest, request: Request):
    engines = request.app.state.engines
    problem, params = _to_solve(req, request)
    await fits(check_fits, problem, params, engines)  # 400 now, not an error event later
    solve_id = "solve-" + uuid.uuid4().hex

    events = run_solve(request, problem, params, solve_id)
    if not req.stream:
        return await unless_disconnected(request, json_solve(request, events))

    async def sse():
        try:
            async for ev in events:
                if isinstance(ev, Result):
                    yield {"event": DONE_EVENT, "data": ev.model_dump_json()}
                else:
                    yield {"event": STEP_EVENT, "data": ev.model_dump_json()}
        except (BadRequest, ServiceUnavailable) as exc:
            log.warning("solve %s failed: %s", solve_id, exc)
            yield error_event(exc)
        except Exception as exc:  # a bug: log it, tell the client without a trace
            log.exception("solve %s crashed", solve_id)
            yield error_event(exc)

    # Cancelling the generator on disconnect cancels the solve and its engine requests;
    # a stream still queued for a slot leaves the queue.
    farewell = [
        {
            "event": ERROR_EVENT,
            "data": json.dumps(
                error_body(SHUTDOWN_MESSAGE, "server_shutdown", code="shutting_down")
            ),
        }
    ]
    return await unless_disconnected(request, sse_response(request, sse(), farewell))
