"""`rationalyst`: implicit supervision. RATIONALYST writes a rationale for the next
step; the scorer ranks the agent's N candidates by their log-probs under trajectory +
rationale."""

from __future__ import annotations

from .. import prompts
from ..concurrency import gather_or_cancel
from ..engine import Engines, decayed_mean
from .base import StepChoice, StepState, best, candidates, choose, sample, timed, write_rationale


async def rationalyst(state: StepState, engines: Engines) -> StepChoice:
    """Implicit supervision: score candidates under trajectory + rationale."""
    # The rationale depends only on the trajectory, so it runs beside sampling.
    gen, rationale = await gather_or_cancel(sample(state, engines),
                                            write_rationale(state, engines))
    cands = candidates(gen)
    unique = list(dict.fromkeys(c.text for c in cands if c.text))
    if unique:
        scorer = engines.scorer
        prefix = scorer.render(prompts.scorer_messages(state.problem, state.steps, rationale))
        scores = await timed(scorer.score(prefix, unique, f"{state.request_id}-score",
                                          session=state.session), state.timings, "score_ms")
        state.usage.scored_tokens += scores.computed_tokens
        decay = state.params.score_decay  # from the same log-probs: no extra call
        by_text = {t: decayed_mean(lps, decay) for t, lps in zip(unique, scores.token_logprobs)}
        for c in cands:
            c.score = by_text.get(c.text)
    choose(cands, best(cands))
    return StepChoice(cands, rationale)
