"""A strategy's step scoring on its own (POST /score): the registry's scorer of the
named strategy, the very function its step calls, run on given candidates instead of
sampled ones. Strategies that write a rationale write it first, as their step does
(greedy, so the same trajectory gets the same rationale).

test_score checks that it gives a candidate the score the step loop gave it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .concurrency import gather_or_cancel
from .engine import BadParam, Engines, NotConfigured
from .strategies import REGISTRY, StepState
from .strategies.base import write_rationale
from .types import Candidate, Problem, SolveParams, Timings, Usage


@dataclass
class Scored:
    rationale: str | None
    candidates: list[Candidate]  # score (None: empty, or the verifier gave none), reply, ...
    usage: Usage = field(default_factory=Usage)


def scorer_of(strategy: str, engines: Engines):
    spec = REGISTRY[strategy]
    if spec.score is None:
        scorers = ", ".join(n for n, s in REGISTRY.items() if s.score)
        raise BadParam(
            f"strategy {strategy!r} does not score steps; the scorers are {scorers}",
            param="strategy",
        )
    if any(getattr(engines, m) is None for m in spec.models):
        raise NotConfigured(
            spec.not_configured
            or f"strategy {strategy!r} needs the models {', '.join(spec.models)}"
        )
    return spec


async def score_candidates(
    problem: Problem,
    steps: Sequence[str],
    candidates: Sequence[str],
    params: SolveParams,
    engines: Engines,
    *,
    request_id: str,
    usage: Usage | None = None,
) -> Scored:
    """Each candidate's score as the next step after `steps`, under params.strategy."""
    spec = scorer_of(params.strategy, engines)
    usage = usage if usage is not None else Usage()
    # No budget and no seed: the scorers sample nothing.
    state = StepState(
        problem, list(steps), params, 0, 1 << 30, usage, Timings(), request_id, request_id
    )
    rationale = await write_rationale(state, engines) if spec.rationale else None
    cands = [Candidate(text=c.strip()) for c in candidates]
    await spec.score(state, engines, cands, rationale)
    return Scored(rationale, cands, usage)


async def score_trajectory(
    problem: Problem,
    steps: Sequence[str],
    params: SolveParams,
    engines: Engines,
    *,
    request_id: str,
) -> tuple[list[Scored], Usage]:
    """Each step scored after its own prefix, as a PRM scores a trajectory."""
    usage = Usage()
    parts = await gather_or_cancel(
        *(
            score_candidates(
                problem,
                steps[:i],
                [steps[i]],
                params,
                engines,
                request_id=f"{request_id}-{i}",
                usage=usage,
            )
            for i in range(len(steps))
        )
    )
    return list(parts), usage
