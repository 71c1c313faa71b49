"""POST /score: a strategy's step scoring as a service (issue 27).

With `candidates`: each candidate next step's score after `steps` under the named
strategy's scorer (the registry's, the function its step calls), with the rationale
used. Without: every step of `steps` scored after its own prefix, as a process reward
model scores a trajectory. Same engines, prefix-cached scoring, admission (429), auth
(middleware), request and token metrics, and error bodies as /solve: the request is
checked by the wire format's validators (a 422 naming the field) and the scorers'
errors are the engine's (BadParam 422, NotConfigured 400, EngineError 503). The work
runs under /solve's deadline (the server's max_timeout_s: /score has no timeout_s);
past it the engine calls are cancelled and the answer is a 504."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from rationalyst.protocol import ErrorResponse, ScoreRequest, Usage
from rationalyst.supervisor import step_scoring
from rationalyst.supervisor.engine import EngineError
from rationalyst.supervisor.types import Problem

from .errors import APIError
from .solve import admitted, solve_params, unless_disconnected

router = APIRouter()


class CandidateScore(BaseModel):
    text: str
    score: float | None = Field(
        description=(
            "the strategy's score (rationalyst, explicit: mean token log-prob; judge: the "
            "reward 0-3; prm: the aggregated step probability); null for an empty step or a "
            "verifier reply with no reward"
        )
    )
    reply: str | None = Field(None, description="judge: the verifier's raw reply")
    step_scores: list[float] | None = Field(
        None, description=("prm: the PRM's probability for each step of the trajectory")
    )


class StepScore(CandidateScore):
    index: int
    rationale: str | None = Field(description="the rationale used (rationalyst, explicit)")


class ScoreResponse(BaseModel):
    id: str
    strategy: str
    rationale: str | None = Field(
        None,
        description=("candidates mode: the rationale used (rationalyst, explicit; null otherwise)"),
    )
    candidates: list[CandidateScore] | None = None
    steps: list[StepScore] | None = Field(None, description="trajectory mode: per step")
    usage: Usage


def deadline_passed(timeout_s: float) -> APIError:
    return APIError(
        504,
        f"the scoring did not finish within this server's deadline of {timeout_s:g} s "
        "and was cancelled; send fewer steps or candidates per request, or raise the "
        "server's RATIONALYST_MAX_TIMEOUT_S",
        "timeout_error",
        code="deadline_exceeded",
    )


def _scored(c) -> dict:
    return {"text": c.text, "score": c.score, "reply": c.reply, "step_scores": c.step_scores}


@router.post(
    "/score",
    response_model=ScoreResponse,
    response_model_exclude_none=False,
    responses={
        400: {
            "model": ErrorResponse,
            "description": ("the body is not valid JSON, or the scorer's model is not configured"),
        },
        401: {"model": ErrorResponse},
        413: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
        429: {"model": ErrorResponse},
        503: {"model": ErrorResponse},
        504: {
            "model": ErrorResponse,
            "description": "the server's deadline (max_timeout_s) passed; the work was cancelled",
        },
    },
)
async def score(req: ScoreRequest, request: Request):
    request.state.strategy = req.strategy
    problem = Problem(
        question=req.question.strip(),
        task=req.task,
        choices=tuple(req.choices) if req.choices else None,
    )
    params = solve_params(
        request,
        None,
        None,
        strategy=req.strategy,
        score_decay=req.score_decay,
        judge_reply=req.judge_reply,
        prm_aggregation=req.prm_aggregation,
    )
    engines, metrics = request.app.state.engines, request.app.state.metrics
    step_scoring.scorer_of(req.strategy, engines)  # a 4xx before the queue
    rid = "score-" + uuid.uuid4().hex
    steps = [t.strip() for t in req.steps]

    async def run() -> ScoreResponse:
        async with admitted(request):
            # As /solve's: from the slot on; it cancels the in-flight engine calls.
            deadline = asyncio.timeout(params.timeout_s)
            try:
                async with deadline:
                    body = await work()
            except TimeoutError:
                if not deadline.expired():  # an engine's own timeout, not ours
                    raise
                raise deadline_passed(params.timeout_s) from None
            except EngineError:
                metrics.engine_errors.inc()
                raise
        metrics.observe_usage(body.usage)
        return body

    async def work() -> ScoreResponse:
        if req.candidates is not None:
            out = await step_scoring.score_candidates(
                problem, steps, req.candidates, params, engines, request_id=rid
            )
            return ScoreResponse(
                id=rid,
                strategy=req.strategy,
                rationale=out.rationale,
                usage=out.usage,
                candidates=[_scored(c) for c in out.candidates],
            )
        parts, usage = await step_scoring.score_trajectory(
            problem, steps, params, engines, request_id=rid
        )
        return ScoreResponse(
            id=rid,
            strategy=req.strategy,
            usage=usage,
            steps=[
                StepScore(index=i, rationale=p.rationale, **_scored(p.candidates[0]))
                for i, p in enumerate(parts)
            ],
        )

    return await unless_disconnected(request, run())
