"""`rationalyst`: implicit supervision. RATIONALYST writes a rationale for the next
step; the scorer ranks the agent's N candidates by their log-probs under trajectory +
rationale."""

from __future__ import annotations

from rationalyst.protocol import Candidate

from .. import prompts
from ..concurrency import gather_or_cancel
from ..engine import Engines, decayed_mean
from .base import (
    StepChoice,
    StepState,
    best,
    candidates,
    choose,
    sample,
    timed,
    unique_texts,
    write_rationale,
)


async def rationalyst(state: StepState, engines: Engines) -> StepChoice:
    """Implicit supervision: score candidates under trajectory + rationale."""
    # The rationale depends only on the trajectory, so it runs beside sampling.
    gen, rationale = await gather_or_cancel(sample(state, engines), write_rationale(state, engines))
    cands = candidates(gen)
    await score(state, engines, cands, rationale)
    choose(cands, best(cands))
    return StepChoice(cands, rationale)


async def score(
    state: StepState, engines: Engines, cands: list[Candidate], rationale: str | None
) -> None:
    """Each candidate's (decayed) mean token log-prob under the scorer, given the
    trajectory and the rationale: one prefix-cached scoring call for all of them."""
    unique = unique_texts(cands)
    if not unique:
        return
    scorer = engines.scorer
    messages = prompts.scorer_messages(state.problem, state.steps, rationale or "")
    prefix = scorer.render(messages)
    scores = await timed(
        scorer.score(prefix, unique, f"{state.request_id}-score", session=state.session),
        state.timings,
        "score_ms",
    )
    state.usage.scored_tokens += scores.computed_tokens
    decay = state.params.score_decay  # from the same log-probs: no extra call
    by_text = {t: decayed_mean(lps, decay) for t, lps in zip(unique, scores.token_logprobs)}
    for c in cands:
        c.score = by_text.get(c.text)
