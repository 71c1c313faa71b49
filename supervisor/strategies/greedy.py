"""`greedy`: plain chain-of-thought, one greedy step per turn, nothing to choose."""

from __future__ import annotations

from .. import prompts
from ..engine import Engines, SampleParams
from .base import (
    STEP_STOP,
    StepChoice,
    StepState,
    candidates,
    choose,
    count_agent,
    step_ends,
    timed,
    turns,
)


async def greedy(state: StepState, engines: Engines) -> StepChoice:
    """Plain chain-of-thought, one greedy step per turn."""
    agent = engines.agent
    prompt = agent.render(prompts.agent_messages(state.problem, state.steps))
    rid = f"{state.request_id}-greedy"
    if turns(state):
        call = agent.sample(
            prompt,
            SampleParams(
                n=1, temperature=0.0, **step_ends(state, agent, prompt, state.step_tokens)
            ),
            rid,
            session=state.session,
        )
    else:
        call = agent.generate(prompt, state.step_tokens, STEP_STOP, rid, session=state.session)
    gen = await timed(call, state.timings, "sample_ms")
    count_agent(state.usage, gen)
    cands = candidates(gen)
    choose(cands, 0)
    return StepChoice(cands, None)
