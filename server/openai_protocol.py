"""OpenAI chat-completions request/response models (the subset we serve)."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rationalyst.protocol import SEED_LIMIT, SolveOptions, SolveResult, Step


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: keep the text ones
            return "".join(
                p["text"]
                for p in self.content
                if p.get("type") == "text" and isinstance(p.get("text"), str)
            )
        return self.content or ""


class StreamOptions(BaseModel):
    include_usage: bool = False


PASSTHROUGH = (
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "top_k",
    "min_p",
    "logit_bias",
)


class ChatCompletionRequest(SolveOptions):
    # Kept (not dropped) so the route can refuse the ones a solve cannot honour
    # (logprobs, tools, ...); the rest are ignored, as vLLM does.
    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, lt=SEED_LIMIT)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    # Sampling parameters the pass-through hands to vLLM, which checks their ranges
    # (a refusal is a 400 naming them); a supervised solve ignores them.
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repetition_penalty: float | None = None
    top_k: int | None = Field(None, ge=-1, lt=SEED_LIMIT)  # vLLM sends it on as a C int
    min_p: float | None = None
    logit_bias: dict[int, float] | None = None
    # Extra body fields (`extra_body` in the SDK): the SolveOptions fields.

    @field_validator("stop")
    @classmethod
    def _no_empty_stop(cls, stop: str | list[str] | None):
        # vLLM refuses one too ("stop cannot contain an empty string"): say it first,
        # for every model, streamed or not.
        if stop is not None and any(s == "" for s in ([stop] if isinstance(stop, str) else stop)):
            raise ValueError("stop strings must not be empty: drop the empty one")
        return stop

    @model_validator(mode="after")
    def _check(self) -> ChatCompletionRequest:
        if self.n != 1:
            raise ValueError(
                "n must be 1: each request runs one solve; send n requests "
                "(with different seeds) for n independent solves"
            )
        # The content parts and the question are checked by the route, where a bad
        # part can be named (messages.0.content.0.text) and the model is known.
        return self

    def vllm_extra(self) -> dict:
        """The pass-through parameters that were sent, under vLLM's names."""
        return {k: getattr(self, k) for k in PASSTHROUGH if getattr(self, k) is not None}

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def token_budget(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def question(self) -> str:
        """The last user message's text ("" when there is none)."""
        return next((m.text() for m in reversed(self.messages) if m.role == "user"), "")

    def system(self) -> str | None:
        parts = [m.text() for m in self.messages if m.role in ("system", "developer")]
        return "\n".join(parts) or None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str
    # reasoning_format "reasoning": the steps before the answer, under both names.
    reasoning: str | None = None
    reasoning_content: str | None = None


class CompletionChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    # A supervised model's (server/chat_fields.openai_usage): reasoning_tokens, and the
    # counts by model in `rationalyst`.
    completion_tokens_details: dict[str, int] | None = None
    prompt_tokens_details: dict[str, int] | None = None
    rationalyst: dict[str, int] | None = None


class _Sparse(BaseModel):
    """A response whose optional extras (usage, rationalyst) are left out when unset,
    as OpenAI's are, rather than sent as null."""

    def sparse_json(self) -> str:
        return self.model_dump_json(
            exclude={
                k
                for k in ("usage", "rationalyst", "rationalyst_sampling")
                if getattr(self, k, 0) is None
            }
        )


class ChatCompletion(_Sparse):
    """The non-streamed response."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: now())
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage
    rationalyst: SolveResult | None = Field(
        None, description=("the whole solve (steps, candidates, scores) of a supervised model")
    )
    rationalyst_sampling: dict | None = Field(
        None,
        description=("temperature 0 on a supervised model: the temperature and seed it ran with"),
    )


class ChunkChoice(BaseModel):
    index: int = 0
    delta: dict[str, str] = Field(description="role and/or content")
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class ChatCompletionChunk(_Sparse):
    """One streamed event. `usage` (last, choices empty) and `rationalyst` (the chosen
    step, on a supervised model's step chunks) are sent only when present."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    rationalyst: Step | None = None
    rationalyst_sampling: dict | None = None


def now() -> int:
    return int(time.time())
