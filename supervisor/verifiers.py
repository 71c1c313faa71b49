"""Verifier baselines as step strategies: `judge` (an LLM rates each candidate
trajectory 0-3, the reference's gpt4_world / llama3_world) and `prm` (a process
reward model's probability that the step is good). Same signature as the others."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

from .concurrency import gather_or_cancel
from .engine import Engine, NotConfigured
from .http_api import APIClient
from .strategies import StepChoice, StepState, _candidates, _choose, _sample, _timed
from .types import Candidate

# Our words for the reference's verifier prompt: one integer 0-3, higher = likelier.
JUDGE_SYSTEM = (
    "You are a strict verifier of step-by-step reasoning. You are given a question and "
    "a partial reasoning trajectory. Assign the trajectory a reward: the more probable "
    "it is that the trajectory is correct and leads to the right answer, the higher. "
    "Reply with one integer from 0 to 3 in the form 'Reward: N', and nothing else.")
JUDGE_MAX_TOKENS = 16


def judge_messages(question: str, steps: Sequence[str]) -> list[dict]:
    lines = "\n".join(f"Step {i + 1}: {s}" for i, s in enumerate(steps))
    return [{"role": "system", "content": JUDGE_SYSTEM},
            {"role": "user", "content": f"Question: {question}\n\nTrajectory:\n{lines}"}]


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


class AgentJudge:
    """The agent engine as its own verifier (the reference's llama3_world): greedy."""

    def __init__(self, engine: Engine):
        self.engine = engine

    async def rate(self, messages: list[dict], request_id: str) -> Rating:
        prompt = self.engine.render(messages)
        gen = await self.engine.generate(prompt, JUDGE_MAX_TOKENS, ("\n\n",), request_id)
        reply = gen.completions[0].text
        return Rating(parse_reward(reply), reply, gen.prompt_tokens, gen.completion_tokens)


def _rating(data: dict) -> Rating:
    """An OpenAI chat completion as a Rating. Run as post_json's parser, so a garbled
    reply, `usage` included, becomes the verifier's clear error."""
    reply = data["choices"][0]["message"]["content"] or ""
    usage = data.get("usage") or {}
    return Rating(parse_reward(reply), reply, int(usage.get("prompt_tokens") or 0),
                  int(usage.get("completion_tokens") or 0))


class HTTPJudge:
    """Any OpenAI-compatible chat endpoint (GPT-4 as in the paper, or `vllm serve`).
    `url` is the API base, as OpenAI's clients take it: http://host:port/v1."""

    def __init__(self, url: str, model: str, api_key: str | None = None,
                 timeout_s: float = 300.0):
        self.api = APIClient(url, "the judge verifier", api_key, timeout_s)
        self.model = model

    async def rate(self, messages: list[dict], request_id: str) -> Rating:
        body = {"model": self.model, "messages": messages, "temperature": 0.0,
                "max_tokens": JUDGE_MAX_TOKENS}
        return await self.api.post_json("/chat/completions", body, _rating,
                                        "sent a reply that is not an OpenAI chat completion")

    async def check(self) -> None:
        await self.api.probe("/models", bad_status=500)

    async def close(self) -> None:
        await self.api.close()


def _tiebreak(c: Candidate, i: int):
    return (c.score if c.score is not None else -math.inf,
            c.logprob if c.logprob is not None else -math.inf, -i)


def _best(cands: list[Candidate]) -> int:
    live = [i for i, c in enumerate(cands) if c.text] or list(range(len(cands)))
    return max(live, key=lambda i: _tiebreak(cands[i], i))


async def judge(state: StepState, engines) -> StepChoice:
    """Sample N; the verifier rates every candidate trajectory at once; the highest
    reward wins, ties broken by the agent's own mean log-prob, then the first."""
    gen = await _sample(state, engines)
    cands = _candidates(gen)
    for c, comp in zip(cands, gen.completions):
        c.logprob = comp.mean_logprob
    from .structured_judge import StructuredAgentJudge  # (it imports this module)
    verifier = engines.judge or StructuredAgentJudge(engines.agent)
    # judge_reply "free_text": the reference's reply, with room to reason first.
    extra = ({"free_text": True} if getattr(state.params, "judge_reply", "") == "free_text"
             and getattr(verifier, "free_text", None) is not None else {})
    unique = list(dict.fromkeys(c.text for c in cands if c.text))
    q = state.problem.question
    ratings = await _timed(gather_or_cancel(*(
        verifier.rate(judge_messages(q, [*state.steps, t]), f"{state.request_id}-judge{i}",
                      **extra)
        for i, t in enumerate(unique))), state.timings, "score_ms")
    by_text = dict(zip(unique, ratings))
    u = state.usage
    for rating in ratings:
        u.verifier_prompt_tokens += rating.prompt_tokens
        u.verifier_completion_tokens += rating.completion_tokens
        u.verifier_unparsed += rating.reward is None
    for c in cands:
        if c.text in by_text:
            c.score, c.reply = by_text[c.text].reward, by_text[c.text].reply
    _choose(cands, _best(cands))
    return StepChoice(cands, None)


def aggregate(step_scores: Sequence[float], how: str) -> float:
    if how == "min":
        return min(step_scores)
    if how == "prod":
        return math.prod(step_scores)
    return step_scores[-1]


async def prm(state: StepState, engines) -> StepChoice:
    """Sample N; a process reward model scores each trajectory's steps; the highest
    aggregated probability wins (ties: the first)."""
    if engines.prm is None:
        raise NotConfigured(PRM_MISSING)
    gen = await _sample(state, engines)
    cands = _candidates(gen)
    unique = list(dict.fromkeys(c.text for c in cands if c.text))
    if unique:
        scored = await _timed(engines.prm.score(
            state.problem.question, [[*state.steps, t] for t in unique],
            f"{state.request_id}-prm"), state.timings, "score_ms")
        state.usage.verifier_prompt_tokens += scored.prompt_tokens
        by_text = dict(zip(unique, scored.steps))
        for c in cands:
            if c.text in by_text:
                c.step_scores = by_text[c.text]
                c.score = aggregate(c.step_scores, state.params.prm_aggregation)
    _choose(cands, _best(cands))
    return StepChoice(cands, None)


PRM_MISSING = ("strategy 'prm' needs a process reward model: start the server with "
               "RATIONALYST_PRM_MODEL set (a local PRM checkpoint; RATIONALYST_PRM_URL "
               "for a remote `vllm serve` of it)")

VERIFIERS = {"judge": judge, "prm": prm}
