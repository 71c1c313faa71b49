"""`prm`: a verifier baseline. A process reward model scores each candidate
trajectory's steps (its probability that a step is good); the highest aggregate wins."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rationalyst.protocol import Candidate

from ..engine import NotConfigured
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
    cands = candidates(await sample(state, engines))
    await score(state, engines, cands, None)
    choose(cands, verified_best(cands))
    return StepChoice(cands, None)


async def score(
    state: StepState, engines, cands: list[Candidate], rationale: str | None = None
) -> None:
    """Each candidate's trajectory scored by the PRM, step by step; the candidate's
    score is those step scores aggregated (`prm_aggregation`)."""
    if engines.prm is None:
        raise NotConfigured(PRM_MISSING)
    unique = unique_texts(cands)
    if not unique:
        return
    scored = await timed(
        engines.prm.score(
            state.problem.question,
            [[*state.steps, t] for t in unique],
            f"{state.request_id}-prm",
            session=state.session,
        ),
        state.timings,
        "score_ms",
    )
    state.usage.verifier_prompt_tokens += scored.prompt_tokens
    by_text = dict(zip(unique, scored.steps))
    for c in cands:
        if c.text in by_text:
            c.step_scores = by_text[c.text]
            c.score = aggregate(c.step_scores, state.params.prm_aggregation)


PRM_MISSING = (
    "strategy 'prm' needs a process reward model: start the server with "
    "RATIONALYST_PRM_MODEL set (a local PRM checkpoint; RATIONALYST_PRM_URL "
    "for a remote `vllm serve` of it)"
)
