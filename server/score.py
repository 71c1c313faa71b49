"""POST /score: RATIONALYST's step scoring as a service (issue 27).

With `candidates`: each candidate next step's score after `steps`, with the rationale
used. Without: every step of `steps` scored after its own prefix, as a process reward
model scores a trajectory. Same engines, prefix-cached scoring, admission (429),
auth (middleware), request metrics and error bodies as /solve."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from rationalyst.protocol import (DEFAULT_SCORE_DECAY, MAX_CHOICE_CHARS, MAX_QUESTION_CHARS,
                                  ErrorResponse, StrictJSON, Task, Usage, pick_task)
from rationalyst.supervisor import step_scoring
from rationalyst.supervisor.types import Problem

from .errors import APIError
from .solve import admitted

router = APIRouter()
MAX_STEP_CHARS = 4_000


class ScoreRequest(StrictJSON):
    model_config = ConfigDict(strict=True, extra="forbid")
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    steps: list[Annotated[str, Field(max_length=MAX_STEP_CHARS)]] = Field(
        default_factory=list, max_length=64, description="the trajectory so far")
    candidates: list[Annotated[str, Field(max_length=MAX_STEP_CHARS)]] | None = Field(
        None, min_length=1, max_length=16, description=(
            "candidate next steps; unset: score every step of `steps` after its prefix"))
    strategy: Literal["rationalyst"] = Field("rationalyst", description=(
        "whose scorer: only 'rationalyst' for now"))
    task: Task | None = None
    choices: list[Annotated[str, Field(max_length=MAX_CHOICE_CHARS)]] | None = Field(
        None, min_length=2, max_length=10)
    score_decay: float = Field(DEFAULT_SCORE_DECAY, gt=0.0, le=1.0)


class CandidateScore(BaseModel):
    text: str
    score: float | None = Field(description="mean token log-prob; null for an empty step")


class StepScore(CandidateScore):
    index: int
    rationale: str


class ScoreResponse(BaseModel):
    id: str
    strategy: str
    rationale: str | None = Field(None, description="candidates mode: the rationale used")
    candidates: list[CandidateScore] | None = None
    steps: list[StepScore] | None = Field(None, description="trajectory mode: per step")
    usage: Usage


@router.post("/score", response_model=ScoreResponse, responses={
    400: {"model": ErrorResponse, "description": "the body is not valid JSON"},
    401: {"model": ErrorResponse}, 413: {"model": ErrorResponse},
    422: {"model": ErrorResponse}, 429: {"model": ErrorResponse},
    503: {"model": ErrorResponse}})
async def score(req: ScoreRequest, request: Request) -> ScoreResponse:
    if not req.question.strip():
        raise APIError(422, "question must contain some text", param="question")
    if req.candidates is None and not req.steps:
        raise APIError(422, "send candidates, or steps to score", param="steps")
    try:
        task = pick_task(req.task, req.choices)
    except ValueError as exc:
        raise APIError(422, str(exc), param="task") from exc
    if req.choices and any(not c.strip() for c in req.choices):
        raise APIError(422, "every choice must contain some text", param="choices")
    problem = Problem(question=req.question.strip(), task=task,
                      choices=tuple(req.choices) if req.choices else None)
    engines, s = request.app.state.engines, request.app.state.settings
    rid = "score-" + uuid.uuid4().hex
    kw = dict(rationale_max_tokens=s.rationale_max_tokens, score_decay=req.score_decay,
              request_id=rid)
    steps = [t.strip() for t in req.steps]
    async with admitted(request):
        if req.candidates is not None:
            out = await step_scoring.score_candidates(problem, steps, req.candidates,
                                                      engines, **kw)
            return ScoreResponse(
                id=rid, strategy=req.strategy, rationale=out.rationale, usage=out.usage,
                candidates=[CandidateScore(text=c, score=sc)
                            for c, sc in zip(req.candidates, out.scores)])
        parts, usage = await step_scoring.score_trajectory(problem, steps, engines, **kw)
        return ScoreResponse(id=rid, strategy=req.strategy, usage=usage, steps=[
            StepScore(index=i, text=t, score=p.scores[0], rationale=p.rationale)
            for i, (t, p) in enumerate(zip(steps, parts))])
