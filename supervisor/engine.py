"""The one protocol between the step loop and the model backends.

Prompts cross it as text that the caller has already rendered with `render`,
so that chat templates are applied the same way for every backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# ---- errors: what went wrong, not an HTTP status; each router maps them to its own
# wire format (server/errors.py). Two families: the request's fault, and the backend's.


class BadRequest(ValueError):
    """The request cannot be served as sent; `param` names the field at fault, if one.
    Servers map it to 400 (/solve: see BadParam)."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


class ServiceUnavailable(RuntimeError):
    """The request was fine; the server cannot serve it now. Servers map it to 503."""


class EngineError(ServiceUnavailable):
    """The backend failed; the request was fine."""


class PromptTooLong(BadRequest):
    """The prompt does not fit the model's context. Mid-solve it ends the solve with
    finish_reason "length" (the steps so far stand); up front it is a 400."""


class NotConfigured(BadRequest):
    """The request needs a backend this server was not started with (a PRM)."""


class BadParam(BadRequest):
    """A parameter out of what this server or its backend takes: a 400 on /v1, a 422
    (as FastAPI's own validation) on /solve."""


class InvalidParams(BadParam):
    """The backend refused a sampling parameter (vLLM's validation); `param` names it."""


@dataclass(frozen=True)
class SampleParams:
    n: int = 1
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 64
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # Token ids that end the completion too: the end-of-turn ids, for turn steps.
    stop_token_ids: tuple[int, ...] = ()
    # The chat pass-through's other sampling parameters, under vLLM's names
    # (presence_penalty, logit_bias, top_k, ...); the backend checks them.
    extra: dict = field(default_factory=dict)


@dataclass
class Completion:
    text: str
    num_tokens: int
    # Mean log-probability of the sampled tokens under the sampling prompt.
    mean_logprob: float | None = None
    finish_reason: str | None = None
    # Per-token log-probs of the sampled tokens, where the backend returns them.
    token_logprobs: list[float] | None = None


@dataclass
class Generation:
    completions: list[Completion]
    prompt_tokens: int
    # Of those, the ones read from the backend's prefix cache (not prefilled), where
    # the backend reports it.
    cached_tokens: int = 0

    @property
    def completion_tokens(self) -> int:
        return sum(c.num_tokens for c in self.completions)


@dataclass
class Scores:
    token_logprobs: list[list[float]]
    # Prompt tokens the backend really prefilled (cache hits excluded).
    computed_tokens: int = 0
    means: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self.means = [sum(t) / len(t) if t else float("-inf") for t in self.token_logprobs]


def decayed_mean(logprobs: Sequence[float], decay: float = 1.0) -> float:
    """mean over i of decay**i * logprobs[i]: 1.0 is the plain mean (the reference's
    inference_no_length.py), 0.9 its inference.py (early tokens weigh more)."""
    if not logprobs:
        return float("-inf")
    if decay == 1.0:
        return sum(logprobs) / len(logprobs)
    return sum(decay**i * lp for i, lp in enumerate(logprobs)) / len(logprobs)


@runtime_checkable
class Engine(Protocol):
    """A model that can sample, generate greedily and score continuations."""

    name: str
    max_model_len: int

    def render(self, messages: Sequence[dict], add_generation_prompt: bool = True) -> str:
        """Apply the model's own chat template."""

    def count_tokens(self, text: str) -> int: ...

    # Every call carries its request id and the id of the solve (or session) it belongs
    # to: remote engines pin a session to one replica, and send it as X-Session-Id.
    # None: the call is a session of its own.

    async def sample(
        self, prompt: str, params: SampleParams, request_id: str, *, session: str | None = None
    ) -> Generation:
        """n completions of `prompt` drawn with the given sampling settings."""

    async def generate(
        self,
        prompt: str,
        max_tokens: int,
        stop: Sequence[str],
        request_id: str,
        *,
        session: str | None = None,
    ) -> Generation:
        """One greedy (temperature 0) completion."""

    def stream(
        self, prompt: str, params: SampleParams, request_id: str, *, session: str | None = None
    ) -> AsyncIterator[Completion]:
        """One sampled completion as it is produced: each item holds the new text,
        the token count so far, and the finish reason on the last one."""

    async def score(
        self,
        prefix: str,
        continuations: Sequence[str],
        request_id: str,
        *,
        session: str | None = None,
    ) -> Scores:
        """Per-token log-probs of each continuation's own tokens given `prefix`.

        Prefix and continuation are tokenized separately and joined as ids, so
        exactly the continuation's tokens are scored (no merge at the boundary).
        """

    async def check(self) -> None:
        """Raise EngineError when the backend cannot serve (for /health)."""

    async def close(self) -> None: ...


@dataclass
class Engines:
    """The three roles of a solve. Roles may share one engine (one model)."""

    agent: Engine
    rationale: Engine
    scorer: Engine
    # The `judge` strategy's verifier (None: the agent itself) and the `prm`
    # strategy's process reward model (None: not configured); see strategies/.
    judge: object | None = None
    prm: object | None = None

    def distinct(self) -> list[Engine]:
        """Every backend to check (/health) and close, each once."""
        seen: dict[int, Engine] = {}
        for e in (self.agent, self.rationale, self.scorer, self.judge, self.prm):
            if e is not None:
                seen.setdefault(id(e), e)
        return list(seen.values())

    async def close(self) -> None:
        for e in self.distinct():
            await e.close()
