"""Step strategies. Each takes the same (state, engines) and returns a StepChoice,
in the style of search-and-learn's strategy functions."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from rationalyst import protocol

from . import prompts
from .concurrency import gather_or_cancel
from .engine import Engines, Generation, SampleParams, decayed_mean
from .types import Candidate, Problem, SolveParams, Timings, Usage

STEP_STOP = ("\n",)  # one step is one line; the chat turn end also stops it


def _turns(state: "StepState") -> bool:
    return state.params.step_end == "turn"


def _ends(state: "StepState", engine, prompt: str, want: int) -> dict:
    """SampleParams fields for where a step (or a turn-mode rationale) ends: at a
    newline, or (turn) only at the engine's end-of-turn ids, passed explicitly, with
    the length capped by the room left in the context."""
    if not _turns(state):
        return {"stop": STEP_STOP, "max_tokens": want}
    room = engine.max_model_len - engine.count_tokens(prompt)
    return {"stop": (), "stop_token_ids": tuple(getattr(engine, "end_of_turn_ids", ())),
            "max_tokens": max(1, min(want, room))}


@dataclass
class StepState:
    problem: Problem
    steps: list[str]  # chosen step texts so far
    params: SolveParams
    seed: int  # this step's seed, derived from the solve's seed and the step index
    budget: int  # tokens the solve may still generate
    usage: Usage
    timings: Timings
    request_id: str

    @property
    def step_tokens(self) -> int:
        return max(1, min(self.params.step_max_tokens, self.budget))


@dataclass
class StepChoice:
    candidates: list[Candidate]
    rationale: str | None

    @property
    def text(self) -> str:
        return next(c.text for c in self.candidates if c.chosen)


Strategy = Callable[[StepState, Engines], Awaitable[StepChoice]]


async def _timed(coro: Awaitable, timings: Timings, attr: str):
    t0 = time.perf_counter()
    try:
        return await coro
    finally:
        setattr(timings, attr, getattr(timings, attr) + (time.perf_counter() - t0) * 1e3)


async def _sample(state: StepState, engines: Engines,
                  rationale: str | None = None) -> Generation:
    agent = engines.agent
    prompt = agent.render(prompts.agent_messages(state.problem, state.steps, rationale))
    p = state.params
    params = SampleParams(n=p.num_candidates, temperature=p.temperature, top_p=p.top_p,
                          seed=state.seed, **_ends(state, agent, prompt, state.step_tokens))
    gen = await _timed(agent.sample(prompt, params, f"{state.request_id}-sample"),
                       state.timings, "sample_ms")
    _count_agent(state.usage, gen)
    return gen


def _count_agent(usage: Usage, gen: Generation) -> None:
    usage.agent_prompt_tokens += gen.prompt_tokens
    usage.agent_completion_tokens += gen.completion_tokens


async def _rationale(state: StepState, engines: Engines) -> str:
    eng = engines.rationale
    prompt = eng.render(prompts.rationale_messages(state.problem, state.steps))
    max_tokens = max(1, min(state.params.rationale_max_tokens, state.budget))
    rid = f"{state.request_id}-rationale"
    if _turns(state):  # greedy up to the end of turn, the ids passed explicitly
        call = eng.sample(prompt, SampleParams(n=1, temperature=0.0, **_ends(
            state, eng, prompt, max_tokens)), rid)
    else:
        call = eng.generate(prompt, max_tokens, (), rid)
    gen = await _timed(call, state.timings, "rationale_ms")
    state.usage.rationale_tokens += gen.completion_tokens
    return gen.completions[0].text.strip()


def _candidates(gen: Generation) -> list[Candidate]:
    return [Candidate(text=c.text.strip()) for c in gen.completions]


def _choose(cands: list[Candidate], index: int) -> None:
    cands[index].chosen = True


def _best(cands: list[Candidate]) -> int:
    # Empty candidates never win while a real one exists; ties go to the first.
    live = [i for i, c in enumerate(cands) if c.text and c.score is not None]
    pool = live or list(range(len(cands)))
    return max(pool, key=lambda i: (cands[i].score if cands[i].score is not None
                                    else float("-inf"), -i))


async def rationalyst(state: StepState, engines: Engines) -> StepChoice:
    """Implicit supervision: score candidates under trajectory + rationale."""
    # The rationale depends only on the trajectory, so it runs beside sampling.
    gen, rationale = await gather_or_cancel(_sample(state, engines),
                                            _rationale(state, engines))
    cands = _candidates(gen)
    unique = list(dict.fromkeys(c.text for c in cands if c.text))
    if unique:
        scorer = engines.scorer
        prefix = scorer.render(prompts.scorer_messages(state.problem, state.steps, rationale))
        scores = await _timed(scorer.score(prefix, unique, f"{state.request_id}-score"),
                              state.timings, "score_ms")
        state.usage.scored_tokens += scores.computed_tokens
        decay = state.params.score_decay  # from the same log-probs: no extra call
        by_text = {t: decayed_mean(lps, decay) for t, lps in zip(unique, scores.token_logprobs)}
        for c in cands:
            c.score = by_text.get(c.text)
    _choose(cands, _best(cands))
    return StepChoice(cands, rationale)


async def explicit(state: StepState, engines: Engines) -> StepChoice:
    """Explicit supervision: the rationale goes into the agent's own prompt; the
    candidate the agent itself finds likeliest under that prompt wins."""
    rationale = await _rationale(state, engines)
    gen = await _sample(state, engines, rationale)
    cands = _candidates(gen)
    decay = state.params.score_decay
    for c, comp in zip(cands, gen.completions):
        c.score = (decayed_mean(comp.token_logprobs, decay) if comp.token_logprobs
                   else comp.mean_logprob)
    _choose(cands, _best(cands))
    return StepChoice(cands, rationale)


async def random_choice(state: StepState, engines: Engines) -> StepChoice:
    """The reference baseline: N samples, one picked at random (seeded)."""
    cands = _candidates(await _sample(state, engines))
    live = [i for i, c in enumerate(cands) if c.text] or list(range(len(cands)))
    _choose(cands, random.Random(state.seed).choice(live))
    return StepChoice(cands, None)


async def greedy(state: StepState, engines: Engines) -> StepChoice:
    """Plain chain-of-thought, one greedy step per turn."""
    agent = engines.agent
    prompt = agent.render(prompts.agent_messages(state.problem, state.steps))
    rid = f"{state.request_id}-greedy"
    if _turns(state):
        call = agent.sample(prompt, SampleParams(n=1, temperature=0.0, **_ends(
            state, agent, prompt, state.step_tokens)), rid)
    else:
        call = agent.generate(prompt, state.step_tokens, STEP_STOP, rid)
    gen = await _timed(call, state.timings, "sample_ms")
    _count_agent(state.usage, gen)
    cands = _candidates(gen)
    _choose(cands, 0)
    return StepChoice(cands, None)


STRATEGIES: dict[str, Strategy] = {
    "rationalyst": rationalyst,
    "explicit": explicit,
    "random": random_choice,
    "greedy": greedy,
}
from .verifiers import VERIFIERS  # noqa: E402  (built on the helpers above)

STRATEGIES.update(VERIFIERS)
assert set(STRATEGIES) == set(protocol.STRATEGIES), "a strategy needs its name in rationalyst.protocol"
