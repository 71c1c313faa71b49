"""Request and response models of the REST API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rationalyst.supervisor.prompts import TASKS, pick_task
from rationalyst.supervisor.types import STRATEGIES

Task = Literal[TASKS]  # type: ignore[valid-type]
StrategyName = Literal[STRATEGIES]  # type: ignore[valid-type]


class StrictJSON(BaseModel):
    """A request body of exactly its declared JSON types: strict mode, so `true` is
    not 1 and "3" is not 3; but 2.0 is an integer, as JSON Schema has it."""
    model_config = ConfigDict(strict=True)

    @model_validator(mode="before")
    @classmethod
    def _whole_numbers(cls, data):
        if not isinstance(data, dict):
            return data
        ints = {n for n, f in cls.model_fields.items() if f.annotation in (int, int | None)}
        return {k: int(v) if k in ints and isinstance(v, float) and v.is_integer() else v
                for k, v in data.items()}


class SolveRequest(StrictJSON):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=20_000)
    choices: list[str] | None = Field(None, min_length=2, max_length=10,
                                      description="answer options, lettered A, B, ...")
    task: Task | None = Field(None, description=(
        "task family; default: multiple_choice when choices are given, else math"))
    strategy: StrategyName = "rationalyst"
    num_candidates: int = Field(3, ge=1, le=16)
    max_steps: int = Field(15, ge=1, le=64)
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, lt=2**31 - 1)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000, description=(
        "token budget over all generated tokens (steps and rationales); "
        "server default if unset"))
    timeout_s: float | None = Field(None, gt=0, description=(
        "deadline of the solve in seconds (server maximum if unset); when it passes the "
        "steps so far come back with finish_reason 'timeout'"))
    stream: bool = False

    @field_validator("question")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("question must contain some text")
        return v

    @field_validator("choices")
    @classmethod
    def _choices_not_blank(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and any(not c.strip() for c in v):
            raise ValueError("every choice must contain some text")
        return v

    @model_validator(mode="after")
    def _task_fits_choices(self) -> "SolveRequest":
        self.task = pick_task(self.task, self.choices)
        return self


class CandidateOut(BaseModel):
    text: str
    score: float | None
    chosen: bool


class TimingsOut(BaseModel):
    sample_ms: float
    rationale_ms: float
    score_ms: float
    total_ms: float


class StepOut(BaseModel):
    index: int
    text: str
    rationale: str | None
    candidates: list[CandidateOut]
    elapsed_ms: float
    timings: TimingsOut = Field(description="this step's time per phase; sample and "
                                "rationale overlap in rationalyst")


class UsageOut(BaseModel):
    agent_prompt_tokens: int
    agent_completion_tokens: int
    rationale_tokens: int
    scored_tokens: int = Field(description="prompt tokens the scorer really computed")


class SolveResponse(BaseModel):
    id: str
    strategy: StrategyName
    seed: int = Field(description="the seed used; send it back to repeat the solve")
    answer: str | None
    finish_reason: Literal["answer", "max_steps", "budget", "timeout"]
    steps: list[StepOut]
    usage: UsageOut
    timings: TimingsOut


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class HealthResponse(BaseModel):
    status: Literal["ready", "loading", "degraded"]
    models: dict[str, str]
    rationale_is_stand_in: bool
    note: str | None = None
    errors: list[str] = Field(default_factory=list, description="why the engines are not ready")
