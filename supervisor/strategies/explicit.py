"""`explicit`: explicit supervision. The rationale goes into the agent's own prompt."""

from __future__ import annotations

from ..engine import Engines, decayed_mean
from .base import StepChoice, StepState, best, candidates, choose, sample, write_rationale


async def explicit(state: StepState, engines: Engines) -> StepChoice:
    """Explicit supervision: the rationale goes into the agent's own prompt; the
    candidate the agent itself finds likeliest under that prompt wins."""
    rationale = await write_rationale(state, engines)
    gen = await sample(state, engines, rationale)
    cands = candidates(gen)
    decay = state.params.score_decay
    for c, comp in zip(cands, gen.completions):
        c.score = (decayed_mean(comp.token_logprobs, decay) if comp.token_logprobs
                   else comp.mean_logprob)
    choose(cands, best(cands))
    return StepChoice(cands, rationale)
