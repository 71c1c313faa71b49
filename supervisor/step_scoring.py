"""RATIONALYST's step scoring on its own (POST /score): the calls the `rationalyst`
strategy makes for one step, without sampling: the rationale for the trajectory so
far, then each candidate's (decayed) mean token log-prob under the scorer given
trajectory + rationale, on the same prefix-cached engine call (Engine.score).

Kept beside the strategies rather than in them: it must give the loop's score for
the same (question, steps, candidate), which test_score checks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Sequence

from . import prompts
from .engine import Engines, decayed_mean
from .types import Problem, Usage

SCORERS = ("rationalyst",)


@dataclass
class Scored:
    rationale: str
    scores: list[float | None]  # one per candidate; None for an empty one
    usage: Usage = field(default_factory=Usage)


async def rationale_for(problem: Problem, steps: Sequence[str], engines: Engines,
                        max_tokens: int, request_id: str, usage: Usage) -> str:
    """The rationale the loop writes before a step (line steps: one greedy generate)."""
    eng = engines.rationale
    prompt = eng.render(prompts.rationale_messages(problem, list(steps)))
    gen = await eng.generate(prompt, max_tokens, (), f"{request_id}-rationale")
    usage.rationale_tokens += gen.completion_tokens
    return gen.completions[0].text.strip()


async def score_candidates(problem: Problem, steps: Sequence[str], candidates: Sequence[str],
                           engines: Engines, *, rationale_max_tokens: int,
                           score_decay: float, request_id: str,
                           rationale: str | None = None, usage: Usage | None = None) -> Scored:
    usage = usage if usage is not None else Usage()
    if rationale is None:
        rationale = await rationale_for(problem, steps, engines, rationale_max_tokens,
                                        request_id, usage)
    texts = [c.strip() for c in candidates]
    unique = list(dict.fromkeys(t for t in texts if t))
    by_text: dict[str, float] = {}
    if unique:
        scorer = engines.scorer
        prefix = scorer.render(prompts.scorer_messages(problem, list(steps), rationale))
        scores = await scorer.score(prefix, unique, f"{request_id}-score")
        usage.scored_tokens += scores.computed_tokens
        by_text = {t: decayed_mean(lps, score_decay)
                   for t, lps in zip(unique, scores.token_logprobs)}
    return Scored(rationale, [by_text.get(t) for t in texts], usage)


async def score_trajectory(problem: Problem, steps: Sequence[str], engines: Engines, *,
                           rationale_max_tokens: int, score_decay: float,
                           request_id: str) -> tuple[list[Scored], Usage]:
    """Each step scored after its own prefix, as a PRM scores a trajectory."""
    usage = Usage()
    parts = await asyncio.gather(*(
        score_candidates(problem, steps[:i], [steps[i]], engines,
                         rationale_max_tokens=rationale_max_tokens, score_decay=score_decay,
                         request_id=f"{request_id}-{i}", usage=usage)
        for i in range(len(steps))))
    return list(parts), usage
