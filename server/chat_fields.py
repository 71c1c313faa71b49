"""What a supervised /v1 response puts where: the reasoning format (steps in
`content`, or in `reasoning`/`reasoning_content` with the answer alone in
`content`), the OpenAI-shaped usage with its details, and the sampling a
`temperature: 0` request is run with (issue 27).

Kept apart from server/openai.py so the routes only call in here."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from rationalyst.protocol import GREEDY_TEMPERATURE, SEED_LIMIT
from rationalyst.supervisor.answers import extract
from rationalyst.supervisor.types import Problem, Usage

from .errors import APIError

REASONING_FORMATS = ("content", "reasoning")
ReasoningFormat = Literal["content", "reasoning"]
# Both names: vLLM's current `reasoning`, and the `reasoning_content` that vLLM used
# before and DeepSeek, LiteLLM and many chat UIs read.
REASONING_KEYS = ("reasoning", "reasoning_content")


def reasoning_format(extra: dict, default: str) -> str:
    """The request's `reasoning_format` (extra body), else the server's default."""
    fmt = extra.get("reasoning_format")
    if fmt is None:
        return default
    if fmt not in REASONING_FORMATS:
        raise APIError(
            400,
            f"reasoning_format must be one of {', '.join(REASONING_FORMATS)}, got {fmt!r}",
            param="reasoning_format",
        )
    return fmt


def is_answer_step(problem: Problem, text: str) -> bool:
    """The step that ends a solve with an answer: the loop stops on the first step
    whose answer parses (loop.solve), so only the last step can be one."""
    return extract(problem.task, text, problem.choices) is not None


def split_steps(problem: Problem, texts: list[str], join: str) -> tuple[str, str]:
    """(reasoning, content) of a solve's step texts in the `reasoning` format: the
    answer step alone is the content; every other step is reasoning."""
    if texts and is_answer_step(problem, texts[-1]):
        return join.join(texts[:-1]), texts[-1]
    return join.join(texts), ""


def reasoning_delta(text: str) -> dict:
    return {k: text for k in REASONING_KEYS}


# ---- usage ----------------------------------------------------------------------------


def openai_usage(u: Usage, content_tokens: int) -> dict:
    """OpenAI's usage shape from a solve's counts.

    completion_tokens: every token the solve generated (agent candidates, rationales,
    verifier replies); completion_tokens_details.reasoning_tokens: those of them that
    are not in the returned content (rejected candidates, rationales, verifier output,
    and in the `reasoning` format the steps before the answer). prompt_tokens: agent,
    rationale and verifier prompts, and the scorer prefill really computed;
    prompt_tokens_details.cached_tokens: of those, the ones read from the backends'
    prefix caches. `rationalyst` breaks them down by model."""
    completion, prompt = u.completion_tokens, u.prompt_tokens
    content_tokens = max(0, min(content_tokens, completion))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": completion - content_tokens},
        "rationalyst": {
            "content_tokens": content_tokens,
            "agent_prompt_tokens": u.agent_prompt_tokens,
            "agent_completion_tokens": u.agent_completion_tokens,
            "rationale_prompt_tokens": u.rationale_prompt_tokens,
            "rationale_tokens": u.rationale_tokens,
            "scoring_prefill_tokens": u.scored_tokens,
            "verifier_prompt_tokens": u.verifier_prompt_tokens,
            "verifier_completion_tokens": u.verifier_completion_tokens,
            "cached_tokens": u.cached_tokens,
        },
    }


# ---- temperature 0 on a supervised model ------------------------------------------------


def request_seed(body: dict) -> int:
    """A seed that is a pure function of the request (model, messages and every option
    but the transport ones): the same request, the same solve."""
    kept = {k: v for k, v in body.items() if k not in ("stream", "stream_options", "seed")}
    digest = hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:8], "big") % SEED_LIMIT


def zero_temperature(
    strategy: str, temperature: float, num_candidates: int, seed: int | None, body: dict, settings
) -> dict | None:
    """How a greedy request (temperature 0, as lm-evaluation-harness sends by default)
    to a sampling strategy runs: None when nothing changes (not greedy, or the
    `greedy` strategy, or one candidate, or the server refuses it), else the sampling
    used: the server's temperature and the request's seed or one derived from it."""
    if (
        temperature >= GREEDY_TEMPERATURE
        or strategy == "greedy"
        or num_candidates <= 1
        or settings.zero_temperature == "refuse"
    ):
        return None
    return {
        "requested_temperature": temperature,
        "temperature": settings.zero_temperature_sampling,
        "seed": seed if seed is not None else request_seed(body),
        "seed_from": "request" if seed is not None else "derived",
        "why": "temperature 0 asks for a deterministic answer; a supervised model "
        "samples candidates, so it sampled at the server's temperature with "
        "a fixed seed instead (RATIONALYST_ZERO_TEMPERATURE=refuse gives a 400)",
    }
