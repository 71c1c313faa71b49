"""`explicit`: explicit supervision. The rationale goes into the agent's own prompt."""

from __future__ import annotations

from rationalyst.protocol import Candidate

from .. import prompts
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


async def explicit(state: StepState, engines: Engines) -> StepChoice:
    """Explicit supervision: the rationale goes into the agent's own prompt; the
    candidate the agent itself finds likeliest under that prompt wins."""
    rationale = await write_rationale(state, engines)
    gen = await sample(state, engines, rationale)
    cands = candidates(gen)
    decay = state.params.score_decay
    # The sampling call already returned the log-probs that `score` asks for.
    for c, comp in zip(cands, gen.completions):
        c.score = (
            decayed_mean(comp.token_logprobs, decay) if comp.token_logprobs else comp.mean_logprob
        )
    choose(cands, best(cands))
    return StepChoice(cands, rationale)


async def score(
    state: StepState, engines: Engines, cands: list[Candidate], rationale: str | None
) -> None:
    """Candidates the agent did not just sample (POST /score): their (decayed) mean
    token log-prob under the agent's own prompt with the rationale, the quantity the
    step reads off its sampling call, from a scoring call on the same prompt."""
    unique = unique_texts(cands)
    if not unique:
        return
    agent = engines.agent
    prompt = agent.render(prompts.agent_messages(state.problem, state.steps, rationale))
    scores = await timed(
        agent.score(prompt, unique, f"{state.request_id}-score", session=state.session),
        state.timings,
        "score_ms",
    )
    state.usage.scored_tokens += scores.computed_tokens
    by_text = {
        t: decayed_mean(lps, state.params.score_decay)
        for t, lps in zip(unique, scores.token_logprobs)
    }
    for c in cands:
        c.score = by_text.get(c.text)
