"""The wire format's responses: what /solve, /score and /health send back.

Imported through rationalyst.protocol as well, which owns the names and the requests."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rationalyst.names import FinishReason, StrategyName


class WireModel(BaseModel):
    """A response object. Unknown fields (a newer server's) are kept, not refused;
    fields with defaults are still required in the response schema. The supervisor
    fills these in place as a solve runs, so they are plain mutable models."""

    model_config = ConfigDict(extra="allow", json_schema_serialization_defaults_required=True)

    @property
    def raw(self) -> dict:
        """The JSON object, as sent."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, d: dict):
        return cls.model_validate(d)


class Candidate(WireModel):
    text: str
    score: float | None = Field(
        None,
        description=(
            "rationalyst, explicit: mean token log-prob; judge: the verifier's reward 0-3 "
            "(None when its reply did not parse); prm: the aggregated step probability; "
            "None for greedy and random"
        ),
    )
    chosen: bool = False
    reply: str | None = Field(None, description="judge: the verifier's raw reply")
    logprob: float | None = Field(
        None,
        description=("judge: the agent's own mean log-prob of the candidate, which breaks ties"),
    )
    step_scores: list[float] | None = Field(
        None, description=("prm: the PRM's probability that each step of the trajectory is good")
    )


class Timings(WireModel):
    sample_ms: float = 0.0
    rationale_ms: float = 0.0
    score_ms: float = 0.0
    total_ms: float = 0.0


class Step(WireModel):
    index: int
    text: str
    rationale: str | None
    candidates: list[Candidate]
    elapsed_ms: float
    timings: Timings = Field(
        default_factory=Timings,
        description=("this step's time per phase; sample and rationale overlap in rationalyst"),
    )


class Usage(WireModel):
    agent_prompt_tokens: int = 0
    agent_completion_tokens: int = 0
    rationale_tokens: int = 0
    scored_tokens: int = Field(0, description="prompt tokens the scorer really computed")
    verifier_prompt_tokens: int = Field(0, description="judge's or PRM's prompt tokens")
    verifier_completion_tokens: int = Field(0, description="judge's reply tokens")
    verifier_unparsed: int = Field(0, description="judge replies with no reward 0-3 in them")
    rationale_prompt_tokens: int = Field(0, description="RATIONALYST's prompt tokens")
    cached_tokens: int = Field(
        0,
        description=(
            "of the agent, rationale and verifier prompt tokens, those the backend read from "
            "its prefix cache instead of computing (0 where the backend does not report it)"
        ),
    )
    reasoning_tokens: int = Field(
        0,
        description=(
            "generated tokens not in the chosen steps: rejected candidates, rationales, "
            "verifier replies (set when the solve ends)"
        ),
    )

    @property
    def generated(self) -> int:
        return self.agent_completion_tokens + self.rationale_tokens

    @property
    def prompt_tokens(self) -> int:
        """Every prompt token read or computed: the OpenAI `prompt_tokens` (the scorer's
        prefill counts only what it computed, cache hits excluded)."""
        return (
            self.agent_prompt_tokens
            + self.rationale_prompt_tokens
            + self.scored_tokens
            + self.verifier_prompt_tokens
        )

    @property
    def completion_tokens(self) -> int:
        """Every generated token: agent candidates, rationales, verifier replies."""
        return self.generated + self.verifier_completion_tokens


class SolveResult(WireModel):
    """The /solve response, and the SSE `done` event."""

    id: str
    strategy: StrategyName
    seed: int = Field(description="the seed used; send it back to repeat the solve")
    answer: str | None
    finish_reason: FinishReason
    steps: list[Step] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    timings: Timings = Field(default_factory=Timings)


# Stream events of POST /solve with stream: true.
STEP_EVENT, DONE_EVENT, ERROR_EVENT = "step", "done", "error"


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class ReplicaStatus(BaseModel):
    url: str
    up: bool
    scoring: str | None = Field(None, description="its scoring path, once connected")


class HealthResponse(BaseModel):
    status: Literal["ready", "loading", "degraded"]
    models: dict[str, str]
    rationale_is_stand_in: bool
    note: str | None = None
    errors: list[str] = Field(default_factory=list, description="why the engines are not ready")
    scoring: str | None = Field(
        None,
        description=(
            "how candidates are scored: in-process or remote, from the prefix cache or "
            "with full prefill (a remote vllm serve needs --enable-scale-out "
            "--enable-prompt-tokens-details for the cache)"
        ),
    )
    replicas: dict[str, list[ReplicaStatus]] = Field(
        default_factory=dict,
        description=("per role served by several vllm serve replicas: each one's state"),
    )
