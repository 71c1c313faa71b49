"""The step loop: one strategy call per step, each chosen step emitted at once."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator

from . import prompts
from .answers import extract
from .engine import Engines, NotConfigured, PromptTooLong
from .strategies import REGISTRY, StepState
from .types import Problem, Result, SolveParams, Step, Timings, Usage

# Context reserved up front for a turn step or rationale (the default line step's cap).
TURN_ROOM = 64

# How /v1 joins the steps into the message content; stop strings are found in that text.
STEP_JOIN = "\n"


def cut_at_stop(text: str, stops) -> tuple[str, bool]:
    """The text up to the first stop string (OpenAI leaves the stop out)."""
    at = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:at], True) if at >= 0 else (text, False)


def _cut_step(head: str, step: Step, stops) -> bool:
    """Cut `step` before the first stop string in the content so far (`head`, the
    earlier steps joined); True if one is there. (A stop that begins in an earlier
    step leaves this step empty.)"""
    cut, stopped = cut_at_stop(head + step.text, stops)
    if stopped:
        step.text = cut[len(head) :]
    return stopped


def step_seed(seed: int, index: int) -> int:
    # Distinct per step, yet a pure function of (seed, index): same request, same steps.
    return (seed * 1_000_003 + index) % (2**31 - 1)


async def solve(
    problem: Problem, params: SolveParams, engines: Engines, request_id: str | None = None
) -> AsyncIterator[Step | Result]:
    """Yield each Step the moment it is chosen, then the final Result.

    Concurrent solves call the engines directly, with no lock, so the backend
    batches their requests together.
    """
    strategy = REGISTRY[params.strategy].run
    request_id = request_id or uuid.uuid4().hex
    seed = params.seed if params.seed is not None else secrets.randbelow(2**31 - 1)
    usage, timings = Usage(), Timings()
    steps: list[Step] = []
    content = ""  # the steps as /v1 joins them, where stop strings are looked for
    finish, answer = "max_steps", None
    t_start = time.perf_counter()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + params.timeout_s if params.timeout_s else None

    for index in range(params.max_steps):
        # A stop string the separator completes: the next step would be cut away whole.
        if params.stop and cut_at_stop(content, params.stop)[1]:
            finish = "stop"
            break
        # No budget (max_tokens None, the reference profile): only steps and the deadline.
        budget = params.max_tokens - usage.generated if params.max_tokens is not None else 1 << 30
        if budget <= 0:
            finish = "budget"
            break
        t0, before = time.perf_counter(), timings.model_copy()
        state = StepState(
            problem,
            [s.text for s in steps],
            params,
            step_seed(seed, index),
            budget,
            usage,
            timings,
            f"{request_id}-{index}",
            request_id,
        )
        step_timeout = asyncio.timeout_at(deadline)
        try:
            # The deadline cancels the step's in-flight engine requests.
            async with step_timeout:
                choice = await strategy(state, engines)
        except TimeoutError:
            # Ask the timeout, not the clock: uvloop's millisecond timers may fire
            # a fraction of a millisecond before `deadline`.
            if not step_timeout.expired():
                raise  # not ours
            finish = "timeout"
            break
        except PromptTooLong:
            # The trajectory outgrew a model's context: the steps so far stand.
            finish = "length"
            break
        elapsed = (time.perf_counter() - t0) * 1e3
        step = Step(
            index=index,
            text=choice.text,
            rationale=choice.rationale,
            candidates=choice.candidates,
            elapsed_ms=elapsed,
            timings=Timings(
                sample_ms=timings.sample_ms - before.sample_ms,
                rationale_ms=timings.rationale_ms - before.rationale_ms,
                score_ms=timings.score_ms - before.score_ms,
                total_ms=elapsed,
            ),
        )
        # Cut before it is sent, so the stream and the result hold the same text.
        stopped = bool(params.stop) and _cut_step(content, step, params.stop)
        steps.append(step)
        content += step.text + STEP_JOIN
        yield step
        # Checked on the chosen step, so no round is spent after the answer. Only an
        # answer that parses ends the solve (see answers.has_answer).
        answer = extract(problem.task, step.text, problem.choices)
        if stopped or answer is not None:
            finish = "stop" if stopped else "answer"
            break

    timings.total_ms = (time.perf_counter() - t_start) * 1e3
    # What the solve generated beyond the steps it returns: OpenAI's reasoning_tokens.
    chosen = engines.agent.count_tokens(STEP_JOIN.join(s.text for s in steps)) if steps else 0
    usage.reasoning_tokens = max(0, usage.completion_tokens - chosen)
    yield Result(
        id=request_id,
        strategy=params.strategy,
        seed=seed,
        answer=answer,
        finish_reason=finish,
        steps=steps,
        usage=usage,
        timings=timings,
    )


async def solve_all(
    problem: Problem, params: SolveParams, engines: Engines, request_id: str | None = None
) -> Result:
    """Run a solve to the end and return only its Result."""
    result = None
    async for event in solve(problem, params, engines, request_id):
        result = event
    if not isinstance(result, Result):  # solve() always ends with one
        raise RuntimeError(f"the solve ended without a result (last event: {result!r})")
    return result


def check_fits(problem: Problem, params: SolveParams, engines: Engines) -> None:
    """Raise PromptTooLong before any work when the first step cannot fit: the agent's
    prompt and step, and (strategies with a rationale) RATIONALYST's prompt and
    rationale, and the scorer's prompt with that rationale and a candidate. Later
    steps that outgrow the context end the solve with finish_reason "length"."""
    spec = REGISTRY[params.strategy]
    if any(getattr(engines, m) is None for m in spec.models):
        raise NotConfigured(
            spec.not_configured
            or f"strategy {params.strategy!r} needs the models {', '.join(spec.models)}"
        )
    step, rat = params.step_max_tokens, params.rationale_max_tokens
    if params.step_end == "turn":
        # Turn steps and rationales are cut to the room the context leaves
        # (strategies.base.step_ends), so reserve a line step's room, not the whole cap.
        step, rat = min(step, TURN_ROOM), min(rat, TURN_ROOM)
    checks = [(engines.agent, prompts.agent_messages(problem, []), step, "a step")]
    if spec.rationale:
        checks.append(
            (engines.rationale, prompts.rationale_messages(problem, []), rat, "a rationale")
        )
    if "scorer" in spec.models:
        checks.append(
            (
                engines.scorer,
                prompts.scorer_messages(problem, [], ""),
                rat + step,
                "a rationale and a candidate step",
            )
        )
    for engine, messages, extra, what in checks:
        need = engine.count_tokens(engine.render(messages))
        if need + extra > engine.max_model_len:
            raise PromptTooLong(
                f"the question needs {need} prompt tokens (with the prompt around it) plus "
                f"{extra} for {what}, over {engine.name}'s context of "
                f"{engine.max_model_len} tokens: shorten the question"
            )
