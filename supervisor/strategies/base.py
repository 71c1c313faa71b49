"""What every step strategy shares: the state a step starts from, the choice it
returns, and the public helpers the strategy modules (and `making/rank.py`) build on:
sampling N candidates, writing a rationale, timing a call, picking the best."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .. import prompts
from ..engine import Engines, Generation, SampleParams
from ..types import Candidate, Problem, SolveParams, Timings, Usage

STEP_STOP = ("\n",)  # one step is one line; the chat turn end also stops it


def turns(state: StepState) -> bool:
    return state.params.step_end == "turn"


def step_ends(state: StepState, engine, prompt: str, want: int) -> dict:
    """SampleParams fields for where a step (or a turn-mode rationale) ends: at a
    newline, or (turn) only at the engine's end-of-turn ids, passed explicitly, with
    the length capped by the room left in the context."""
    if not turns(state):
        return {"stop": STEP_STOP, "max_tokens": want}
    room = engine.max_model_len - engine.count_tokens(prompt)
    return {
        "stop": (),
        "stop_token_ids": tuple(getattr(engine, "end_of_turn_ids", ())),
        "max_tokens": max(1, min(want, room)),
    }


@dataclass
class StepState:
    problem: Problem
    steps: list[str]  # chosen step texts so far
    params: SolveParams
    seed: int  # this step's seed, derived from the solve's seed and the step index
    budget: int  # tokens the solve may still generate
    usage: Usage
    timings: Timings
    request_id: str  # this step's: each engine call adds its own suffix
    # The solve's id, which every engine call carries (remote engines pin it to one
    # replica); None: each call is a session of its own.
    session: str | None = None

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


# A step strategy: the same signature for all of them (see the registry in __init__).
Strategy = Callable[[StepState, Engines], Awaitable[StepChoice]]
# A strategy's scorer: fills in each candidate's score (and the verifier's reply or
# step scores) as the candidate next step after state.steps, given the rationale its
# strategy wrote (None for strategies without one). The strategy calls it in its step,
# and POST /score calls it alone (supervisor/step_scoring.py).
Scorer = Callable[[StepState, Engines, list[Candidate], "str | None"], Awaitable[None]]


async def timed(coro: Awaitable, timings: Timings, attr: str):
    t0 = time.perf_counter()
    try:
        return await coro
    finally:
        setattr(timings, attr, getattr(timings, attr) + (time.perf_counter() - t0) * 1e3)


async def sample(state: StepState, engines: Engines, rationale: str | None = None) -> Generation:
    """The agent's N candidate steps (the rationale in its prompt, if given)."""
    agent = engines.agent
    prompt = agent.render(prompts.agent_messages(state.problem, state.steps, rationale))
    p = state.params
    params = SampleParams(
        n=p.num_candidates,
        temperature=p.temperature,
        top_p=p.top_p,
        seed=state.seed,
        **step_ends(state, agent, prompt, state.step_tokens),
    )
    gen = await timed(
        agent.sample(prompt, params, f"{state.request_id}-sample", session=state.session),
        state.timings,
        "sample_ms",
    )
    count_agent(state.usage, gen)
    return gen


def count_agent(usage: Usage, gen: Generation) -> None:
    usage.agent_prompt_tokens += gen.prompt_tokens
    usage.agent_completion_tokens += gen.completion_tokens
    usage.cached_tokens += gen.cached_tokens


async def write_rationale(state: StepState, engines: Engines) -> str:
    """RATIONALYST's rationale for the next step, given the trajectory so far."""
    eng = engines.rationale
    prompt = eng.render(prompts.rationale_messages(state.problem, state.steps))
    max_tokens = max(1, min(state.params.rationale_max_tokens, state.budget))
    rid = f"{state.request_id}-rationale"
    if turns(state):  # greedy up to the end of turn, the ids passed explicitly
        call = eng.sample(
            prompt,
            SampleParams(n=1, temperature=0.0, **step_ends(state, eng, prompt, max_tokens)),
            rid,
            session=state.session,
        )
    else:
        call = eng.generate(prompt, max_tokens, (), rid, session=state.session)
    gen = await timed(call, state.timings, "rationale_ms")
    state.usage.rationale_tokens += gen.completion_tokens
    state.usage.rationale_prompt_tokens += gen.prompt_tokens
    state.usage.cached_tokens += gen.cached_tokens
    return gen.completions[0].text.strip()


def candidates(gen: Generation) -> list[Candidate]:
    return [Candidate(text=c.text.strip()) for c in gen.completions]


def unique_texts(cands: list[Candidate]) -> list[str]:
    """The distinct non-empty candidate texts, in order: each is scored once."""
    return list(dict.fromkeys(c.text for c in cands if c.text))


def choose(cands: list[Candidate], index: int) -> None:
    cands[index].chosen = True


def best(cands: list[Candidate]) -> int:
    # Empty candidates never win while a real one exists; ties go to the first.
    live = [i for i, c in enumerate(cands) if c.text and c.score is not None]
    pool = live or list(range(len(cands)))
    return max(
        pool, key=lambda i: (cands[i].score if cands[i].score is not None else float("-inf"), -i)
    )


def verified_best(cands: list[Candidate]) -> int:
    """The verifier strategies' pick: the highest score among non-empty candidates,
    ties broken by the agent's own mean log-prob, then the first."""
    live = [i for i, c in enumerate(cands) if c.text] or list(range(len(cands)))
    return max(live, key=lambda i: tiebreak(cands[i], i))


def tiebreak(c: Candidate, i: int):
    """verified_best's key: score, then the agent's mean log-prob, then the first."""
    return (
        c.score if c.score is not None else -math.inf,
        c.logprob if c.logprob is not None else -math.inf,
        -i,
    )
