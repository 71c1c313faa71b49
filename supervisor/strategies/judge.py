"""`judge`: a verifier baseline. An LLM rates each candidate trajectory 0-3 (the
reference's gpt4_world / llama3_world): the agent itself, or any OpenAI-compatible
chat endpoint (HTTPJudge)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rationalyst.protocol import Candidate

from ..concurrency import gather_or_cancel
from ..engine import Engine
from ..http_api import APIClient, APIError
from .base import (
    StepChoice,
    StepState,
    candidates,
    choose,
    sample,
    timed,
    unique_texts,
    verified_best,
)

# Our words for the reference's verifier prompt: one integer 0-3, higher = likelier.
JUDGE_SYSTEM = (
    "You are a strict verifier of step-by-step reasoning. You are given a question and "
    "a partial reasoning trajectory. Assign the trajectory a reward: the more probable "
    "it is that the trajectory is correct and leads to the right answer, the higher. "
    "Reply with one integer from 0 to 3 in the form 'Reward: N', and nothing else."
)
JUDGE_MAX_TOKENS = 16


def judge_messages(question: str, steps: Sequence[str]) -> list[dict]:
    lines = "\n".join(f"Step {i + 1}: {s}" for i, s in enumerate(steps))
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": f"Question: {question}\n\nTrajectory:\n{lines}"},
    ]


def parse_reward(reply: str) -> int | None:
    """The integer the reply starts with, or that follows its last 'Reward:', as the
    reference parses it; None unless it is 0-3 (the reference drew a random one).
    Not any integer in the text: 'The answer is 1.' is no reward."""
    tail = reply.rsplit("Reward:", 1)[-1] if "Reward:" in reply else reply
    m = re.match(r"\s*\**\s*(-?\d+)\b", tail)
    if not m:
        return None
    value = int(m.group(1))
    return value if 0 <= value <= 3 else None


@dataclass
class Rating:
    reward: int | None
    reply: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # of the prompt tokens, read from the prefix cache


class AgentJudge:
    """The agent engine as its own verifier (the reference's llama3_world): greedy."""

    def __init__(self, engine: Engine):
        self.engine = engine

    async def rate(
        self, messages: list[dict], request_id: str, *, session: str | None = None
    ) -> Rating:
        prompt = self.engine.render(messages)
        gen = await self.engine.generate(
            prompt, JUDGE_MAX_TOKENS, ("\n\n",), request_id, session=session
        )
        return _from_generation(gen)


def _from_generation(gen) -> Rating:
    reply = gen.completions[0].text
    return Rating(
        parse_reward(reply), reply, gen.prompt_tokens, gen.completion_tokens, gen.cached_tokens
    )


def chat_rating(data: dict) -> Rating:
    """An OpenAI chat completion as a Rating. Run as post_json's parser, so a garbled
    reply, `usage` included, becomes the verifier's clear error."""
    reply = data["choices"][0]["message"]["content"] or ""
    usage = data.get("usage") or {}
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    return Rating(
        parse_reward(reply),
        reply,
        int(usage.get("prompt_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
        int(cached or 0),
    )


class HTTPJudge:
    """Any OpenAI-compatible chat endpoint (GPT-4 as in the paper, or `vllm serve`).
    `url` is the API base, as OpenAI's clients take it: http://host:port/v1."""

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout_s: float = 300.0):
        self.api = APIClient(url, "the judge verifier", api_key, timeout_s)
        self.url = url
        self.model = model

    async def ask(self, messages: list[dict], extra: dict, parse=chat_rating) -> Rating:
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": 0.0,
            "max_tokens": JUDGE_MAX_TOKENS,
            **extra,
        }
        return await self.api.post_json(
            "/chat/completions", body, parse, "sent a reply that is not an OpenAI chat completion"
        )

    async def rate(
        self, messages: list[dict], request_id: str, *, session: str | None = None
    ) -> Rating:
        # `session`: the solve's id; the judge endpoint is one server, nothing to pin.
        return await self.ask(messages, {})

    async def check(self) -> None:
        await self.api.probe("/models", bad_status=500)

    async def close(self) -> None:
        await self.api.close()


# Replies whose shape is forced, so that every candidate gets a reward (issue 27).
REWARDS = [f"Reward: {n}" for n in range(4)]
FREE_TEXT_MAX_TOKENS = 1000
REWARD_SCHEMA = {
    "type": "object",
    "properties": {"reward": {"type": "integer", "minimum": 0, "maximum": 3}},
    "required": ["reward"],
    "additionalProperties": False,
}


class StructuredAgentJudge(AgentJudge):
    """The agent as its own verifier, its reply constrained to one of REWARDS."""

    def __init__(self, engine: Engine, free_text: bool = False):
        super().__init__(engine)
        self.free_text = free_text

    def structured(self) -> bool:
        # Engines without structured outputs (scripted, remote) reply in free text.
        return not self.free_text and hasattr(self.engine, "generate_choice")

    async def rate(
        self, messages: list[dict], request_id: str, free_text: bool = False, **kw
    ) -> Rating:
        # **kw: what the judge passes through (issue 26's `session`).
        eng = self.engine
        prompt = eng.render(messages)
        if self.free_text or free_text:
            gen = await eng.generate(prompt, FREE_TEXT_MAX_TOKENS, (), request_id, **kw)
        elif self.structured():  # the in-process vLLM engine
            gen = await eng.generate_choice(prompt, REWARDS, JUDGE_MAX_TOKENS, request_id, **kw)
        else:
            return await super().rate(messages, request_id, **kw)
        return _from_generation(gen)


def json_rating(data: dict) -> Rating:
    r = chat_rating(data)
    try:
        value = json.loads(r.reply)["reward"]
    except (ValueError, KeyError, TypeError):
        value = None
    ok = isinstance(value, int) and 0 <= value <= 3
    return Rating(
        value if ok else parse_reward(r.reply),
        r.reply,
        r.prompt_tokens,
        r.completion_tokens,
        r.cached_tokens,
    )


# The structured requests an OpenAI-compatible verifier may take, tried in this order:
# vLLM's structured outputs (`vllm serve` 0.32 reads `structured_outputs`; older ones
# `guided_choice`; each ignores the other's), then OpenAI's json_schema. A server that
# refuses a field (OpenAI answers 400 to unknown ones) or ignores it (no reward comes
# back) moves the judge on to the next; free text parsed for its 'Reward:' is last.
STRUCTURED = {
    "choice": ({"structured_outputs": {"choice": REWARDS}, "guided_choice": REWARDS}, chat_rating),
    "json_schema": (
        {
            "max_tokens": 32,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "reward", "strict": True, "schema": REWARD_SCHEMA},
            },
        },
        json_rating,
    ),
}
# How a server refuses a request's shape. Anything else (no answer, 5xx, 401, 429, a
# prompt over the context) is no verdict on the mode: it surfaces as it came.
REFUSED = frozenset({400, 404, 422})


def refused(exc: APIError) -> bool:
    return exc.status in REFUSED and not exc.too_long


class StructuredHTTPJudge(HTTPJudge):
    """HTTPJudge asking for a structured reply first; remembers, for its URL, which
    request gave a reward ("choice", "json_schema", or "text": none did)."""

    def __init__(self, *args, free_text: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.free_text = free_text
        self.mode: str | None = None  # once a request in it has succeeded

    async def rate(
        self, messages: list[dict], request_id: str, free_text: bool = False, **kw
    ) -> Rating:
        if self.free_text or free_text:
            return await self.ask(messages, {"max_tokens": FREE_TEXT_MAX_TOKENS})
        spent: list[Rating] = []  # replies of refused modes, still counted in usage
        known = self.mode
        for mode in [*STRUCTURED] if known is None else [known]:
            if mode not in STRUCTURED:
                break
            extra, parse = STRUCTURED[mode]
            try:
                rating = await self.ask(messages, extra, parse)
            except APIError as exc:
                # Only a refusal, and only while probing, says "try the next kind".
                if known is not None or not refused(exc):
                    raise
                continue
            if rating.reward is not None:
                self.learn(mode)
                return _plus(rating, spent)
            spent.append(rating)
        rating = await super().rate(messages, request_id, **kw)
        if known is None:
            self.learn("text")
        return _plus(rating, spent)

    def learn(self, mode: str) -> None:
        # The first probe to succeed decides; a concurrent one does not overwrite it.
        if self.mode is None:
            self.mode = mode


def _plus(rating: Rating, spent: list[Rating]) -> Rating:
    for r in spent:
        rating.prompt_tokens += r.prompt_tokens
        rating.completion_tokens += r.completion_tokens
        rating.cached_tokens += r.cached_tokens
    return rating


def verifier(state: StepState, engines) -> tuple[object, dict]:
    """The step's verifier and the keyword arguments its `rate` takes."""
    v = engines.judge or StructuredAgentJudge(engines.agent)
    # judge_reply "free_text": the reference's reply, with room to reason first.
    extra = (
        {"free_text": True}
        if getattr(state.params, "judge_reply", "") == "free_text"
        and getattr(v, "free_text", None) is not None
        else {}
    )
    return v, extra


async def judge(state: StepState, engines) -> StepChoice:
    """Sample N; the verifier rates every candidate trajectory at once; the highest
    reward wins, ties broken by the agent's own mean log-prob, then the first."""
    gen = await sample(state, engines)
    cands = candidates(gen)
    for c, comp in zip(cands, gen.completions):
        c.logprob = comp.mean_logprob
    await score(state, engines, cands, None)
    choose(cands, verified_best(cands))
    return StepChoice(cands, None)


async def score(
    state: StepState, engines, cands: list[Candidate], rationale: str | None = None
) -> None:
    """Each candidate's reward 0-3 from the verifier, which rates the trajectory with
    the candidate as its last step (None where the reply held no reward)."""
    v, extra = verifier(state, engines)
    unique = unique_texts(cands)
    q = state.problem.question
    ratings = await timed(
        gather_or_cancel(
            *(
                v.rate(
                    judge_messages(q, [*state.steps, t]),
                    f"{state.request_id}-judge{i}",
                    session=state.session,
                    **extra,
                )
                for i, t in enumerate(unique)
            )
        ),
        state.timings,
        "score_ms",
    )
    by_text = dict(zip(unique, ratings))
    u = state.usage
    for rating in ratings:
        u.verifier_prompt_tokens += rating.prompt_tokens
        u.verifier_completion_tokens += rating.completion_tokens
        u.cached_tokens += rating.cached_tokens
        u.verifier_unparsed += rating.reward is None
    for c in cands:
        if c.text in by_text:
            c.score, c.reply = by_text[c.text].reward, by_text[c.text].reply
