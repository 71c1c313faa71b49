"""Unit tests of the step loop, the strategies and answer extraction.

These run against ScriptedEngine, a scripted fake engine (no model), so they
test the loop's logic only: ordering, choice, stop rules, routing, seeding.
Model behaviour is covered by the engine and API tests.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest

from rationalyst.supervisor.answers import extract, has_answer, last_boxed, normalize_number
from rationalyst.supervisor.engine import Engines, PromptTooLong
from rationalyst.supervisor.loop import check_fits, solve, solve_all, step_seed
from rationalyst.supervisor.scripted_engine import ScriptedEngine
from rationalyst.supervisor.types import Problem, Result, SolveParams, Step

DATA = Path(__file__).resolve().parents[2] / "shared/data/benchmarks"
MATH = Problem(question="What is 3 + 4?", task="math")
GUARD_S = 5.0  # failure guard against deadlock only; never used to synchronise


def one(engine: ScriptedEngine) -> Engines:
    return Engines(engine, engine, engine)


def params(**kw) -> SolveParams:
    return SolveParams(**{"seed": 1, "max_steps": 3, **kw})


def scores_by(table: dict[str, float]):
    """A score function giving every token of a known text the same log-prob."""
    return lambda prefix, text: [table.get(text, -50.0)] * max(1, len(text.split()))


def kinds(engine: ScriptedEngine) -> list[str]:
    return [k for k, _ in engine.events]


# (a) concurrency and ordering


@pytest.mark.asyncio
async def test_rationalyst_runs_rationale_beside_sampling():
    eng = ScriptedEngine(sample_s=0.01, generate_s=0.01)
    await solve_all(MATH, params(max_steps=2), one(eng))
    for i in range(2):
        ev = [
            k
            for k, rid in eng.events
            if rid.endswith(f"-{i}-sample") or rid.endswith(f"-{i}-rationale")
        ]
        assert sorted(ev[:2]) == ["generate_start", "sample_start"], ev
    # Scoring needs both, so it starts after both have ended.
    ks = kinds(eng)
    assert ks.index("score_start") > max(ks.index("sample_end"), ks.index("generate_end"))


@pytest.mark.asyncio
async def test_rationalyst_sample_and_rationale_wait_for_each_other():
    # Each call blocks until the other has started: a sequential loop deadlocks.
    barrier = asyncio.Barrier(2)

    async def meet(kind: str) -> None:
        if kind in ("sample", "generate"):
            await barrier.wait()

    eng = ScriptedEngine(on_start=meet)
    res = await asyncio.wait_for(solve_all(MATH, params(max_steps=3), one(eng)), GUARD_S)
    assert len(res.steps) == 3 and eng.calls["score"] == 3


@pytest.mark.asyncio
async def test_explicit_runs_rationale_before_sampling():
    eng = ScriptedEngine(sample_s=0.005, generate_s=0.005)
    await solve_all(MATH, params(strategy="explicit", max_steps=2), one(eng))
    assert kinds(eng) == ["generate_start", "generate_end", "sample_start", "sample_end"] * 2


@pytest.mark.asyncio
async def test_cancelling_a_solve_cancels_its_engine_calls():
    started, never = asyncio.Event(), asyncio.Event()

    async def hang(kind: str) -> None:
        if kind == "sample":
            started.set()
        await never.wait()

    eng = ScriptedEngine(on_start=hang)
    task = asyncio.create_task(solve_all(MATH, params(), one(eng)))
    await asyncio.wait_for(started.wait(), GUARD_S)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    cancelled = {rid.rsplit("-", 1)[1] for k, rid in eng.events if k == "cancelled"}
    assert cancelled == {"sample", "rationale"} and not eng.in_flight


# (b) argmax choice


@pytest.mark.asyncio
async def test_rationalyst_picks_highest_mean_score_and_scores_duplicates_once():
    cands = ["a b", "c d", "a b", "", "e f"]
    eng = ScriptedEngine(steps=[cands], scores=scores_by({"a b": -2.0, "c d": -0.5, "e f": -1.0}))
    res = await solve_all(MATH, params(num_candidates=5, max_steps=1), one(eng))
    step = res.steps[0]
    assert step.text == "c d"
    assert [c.chosen for c in step.candidates] == [False, True, False, False, False]
    assert [c.score for c in step.candidates] == [-2.0, -0.5, -2.0, None, -1.0]
    (score_req,) = [r for r in eng.requests if r[0] == "score"]
    assert score_req[2]["continuations"] == ["a b", "c d", "e f"]


@pytest.mark.asyncio
async def test_argmax_uses_mean_not_sum_and_ties_go_first():
    # "x y z" sums lower but has the higher mean; "p" ties it and comes later.
    table = {"x y z": [-1.0, -1.0, -1.0], "q": [-3.0], "p": [-1.0]}
    eng = ScriptedEngine(steps=[["q", "x y z", "p"]], scores=lambda pre, t: table[t])
    res = await solve_all(MATH, params(max_steps=1), one(eng))
    assert res.steps[0].text == "x y z"
    assert sum(c.chosen for c in res.steps[0].candidates) == 1


# (c) stop rules


@pytest.mark.asyncio
async def test_answer_in_chosen_step_stops_at_once():
    steps = [
        ["We add 3 and 4.", "3 + 4 = 8."],
        ["The answer is: 7", "So it is 8."],
        ["never sampled", "never sampled"],
    ]
    table = {"We add 3 and 4.": -0.1, "The answer is: 7": -0.1}
    eng = ScriptedEngine(steps=steps, scores=scores_by(table))
    res = await solve_all(MATH, params(num_candidates=2, max_steps=10), one(eng))
    assert (res.finish_reason, res.answer) == ("answer", "7")
    assert [s.text for s in res.steps] == ["We add 3 and 4.", "The answer is: 7"]
    assert eng.calls == {"sample": 2, "generate": 2, "score": 2}


@pytest.mark.asyncio
async def test_answer_in_a_losing_candidate_does_not_stop():
    steps = [["The answer is: 8", "Think."]] * 3
    eng = ScriptedEngine(steps=steps, scores=scores_by({"Think.": -0.1}))
    res = await solve_all(MATH, params(num_candidates=2, max_steps=3), one(eng))
    assert (res.finish_reason, res.answer, len(res.steps)) == ("max_steps", None, 3)


@pytest.mark.asyncio
async def test_max_steps():
    eng = ScriptedEngine()
    res = await solve_all(MATH, params(max_steps=4), one(eng))
    assert (res.finish_reason, res.answer, len(res.steps)) == ("max_steps", None, 4)
    assert eng.calls["sample"] == 4


@pytest.mark.asyncio
async def test_token_budget():
    # Per full step: 2 candidates x 3 tokens + a 2-token rationale = 8 tokens.
    eng = ScriptedEngine(
        steps=lambda p, n, s: ["one two three"] * n, generate=lambda p: "because so"
    )
    res = await solve_all(MATH, params(num_candidates=2, max_steps=10, max_tokens=10), one(eng))
    assert res.finish_reason == "budget" and len(res.steps) == 2
    assert res.usage.generated >= 10
    # The second step only had 2 tokens left, and the engine was told so.
    sample_params = [r[2]["params"] for r in eng.requests if r[0] == "sample"]
    assert [p.max_tokens for p in sample_params] == [10, 2]
    assert [r[2]["max_tokens"] for r in eng.requests if r[0] == "generate"] == [10, 2]


# (d) strategies


@pytest.mark.asyncio
async def test_greedy_has_no_rationale_and_no_scores():
    eng = ScriptedEngine(generate=["Add them.", "The answer is: 7"])
    res = await solve_all(MATH, params(strategy="greedy", max_steps=5), one(eng))
    assert [s.text for s in res.steps] == ["Add them.", "The answer is: 7"]
    assert res.answer == "7"
    for s in res.steps:
        assert s.rationale is None
        assert [(c.score, c.chosen) for c in s.candidates] == [(None, True)]
    assert eng.calls == {"generate": 2}


async def _random_choices(seed: int) -> list[str]:
    eng = ScriptedEngine(steps=lambda p, n, s: [f"cand {i}" for i in range(n)])
    res = await solve_all(
        MATH, params(strategy="random", seed=seed, num_candidates=5, max_steps=12), one(eng)
    )
    assert eng.calls == {"sample": 12}  # no rationale, no scoring
    assert all(s.rationale is None and sum(c.chosen for c in s.candidates) == 1 for s in res.steps)
    return [s.text for s in res.steps]


@pytest.mark.asyncio
async def test_random_is_deterministic_per_seed():
    a, b, c = await _random_choices(7), await _random_choices(7), await _random_choices(8)
    assert a == b and a != c
    assert len(set(a)) > 1
    assert a == [f"cand {random.Random(step_seed(7, i)).choice(range(5))}" for i in range(12)]


@pytest.mark.asyncio
async def test_explicit_puts_rationale_in_agent_prompt_and_picks_by_logprob():
    eng = ScriptedEngine(
        steps=[["a", "b"]],
        generate=lambda p: "  Add the two.  ",
        scores=scores_by({"a": -3.0, "b": -1.0}),
    )
    res = await solve_all(
        MATH, params(strategy="explicit", num_candidates=2, max_steps=1), one(eng)
    )
    step = res.steps[0]
    assert step.rationale == "Add the two." and step.text == "b"
    assert [c.score for c in step.candidates] == [-3.0, -1.0]
    (sample_req,) = [r for r in eng.requests if r[0] == "sample"]
    assert "<BOT>Add the two.<EOT>" in sample_req[2]["prompt"]
    assert eng.calls["score"] == 0


# (e) seeding


@pytest.mark.asyncio
async def test_same_seed_same_steps():
    def steps(prompt, n, seed):
        rng = random.Random(seed)
        return [f"w{rng.randrange(1000)} w{rng.randrange(1000)}" for _ in range(n)]

    async def run(seed):
        eng = ScriptedEngine(steps=steps)
        res = await solve_all(MATH, params(seed=seed, max_steps=5), one(eng))
        seeds = [r[2]["params"].seed for r in eng.requests if r[0] == "sample"]
        return [(s.text, [c.text for c in s.candidates]) for s in res.steps], seeds

    (a, seeds_a), (b, _), (c, _) = await run(3), await run(3), await run(4)
    assert a == b and a != c
    assert len(set(seeds_a)) == 5  # a fresh seed per step


# (f) streaming


@pytest.mark.asyncio
async def test_steps_stream_before_result():
    eng = ScriptedEngine()
    seen, samples_at_yield = [], []
    async for ev in solve(MATH, params(max_steps=3), one(eng)):
        seen.append(ev)
        samples_at_yield.append(eng.calls["sample"])
    assert [type(e) for e in seen] == [Step, Step, Step, Result]
    assert [e.index for e in seen[:3]] == [0, 1, 2]
    assert seen[-1].steps == seen[:3]
    # Each step is yielded before the next one is sampled.
    assert samples_at_yield == [1, 2, 3, 3]


# (g) roles


@pytest.mark.asyncio
async def test_roles_go_to_their_engines():
    agent = ScriptedEngine("agent", steps=lambda p, n, s: ["x", "y"])
    rat = ScriptedEngine("rationalyst", generate=lambda p: "Rationale from R.")
    scorer = ScriptedEngine("scorer")
    res = await solve_all(MATH, params(num_candidates=2, max_steps=2), Engines(agent, rat, scorer))
    assert agent.calls == {"sample": 2}
    assert rat.calls == {"generate": 2}
    assert scorer.calls == {"score": 2}
    assert all(s.rationale == "Rationale from R." for s in res.steps)
    prefixes = [r[2]["prefix"] for r in scorer.requests]
    assert all("Rationale: Rationale from R." in p for p in prefixes)
    await Engines(agent, rat, scorer).close()
    assert agent.closed and rat.closed and scorer.closed


def test_check_fits_rejects_a_prompt_over_the_context():
    check_fits(MATH, params(), one(ScriptedEngine()))
    with pytest.raises(PromptTooLong):
        check_fits(MATH, params(), one(ScriptedEngine(max_model_len=100)))


# (h) answers


@pytest.mark.parametrize(
    "text, want",
    [
        ("The answer is: $1,234.00", "1234"),
        ("The answer is: 1,000,000 dollars.", "1000000"),
        ("the answer is 3.50", "3.5"),
        ("The answer is: -7.", "-7"),
        ("The answer is: 0.0", "0"),
        ("So 5 + 2 = 7, and the answer is: 12", "12"),
        ("The answer is 3? No, the correct answer is: 4", "4"),
        ("The answer is: unknown", None),
        ("We get 42 in the end.", None),
    ],
)
def test_extract_math(text, want):
    assert extract("math", text) == want


@pytest.mark.parametrize(
    "text, want",
    [
        (r"So $\boxed{12}$.", "12"),
        (r"First \boxed{1}, then finally \boxed{\frac{1}{2^{3}}}", r"\frac{1}{2^{3}}"),
        (r"\boxed{ \sqrt{2} }", r"\sqrt{2}"),
        (r"\boxed{3", None),
        ("The answer is: 12", None),
    ],
)
def test_extract_boxed(text, want):
    assert extract("math_boxed", text) == want
    assert last_boxed(text) == want


CHOICES = ("air", "ice", "sand", "water")


@pytest.mark.parametrize(
    "text, want",
    [
        ("The answer is: (C)", "C"),
        ("The answer is: C) sand", "C"),
        ("The correct answer is B.", "B"),
        ("The answer is: water.", "D"),
        ("The answer is: Ice", "B"),
        ("The answer is: (E)", None),
        ("The answer is: fire", None),
        ("I think it is (A).", None),
    ],
)
def test_extract_multiple_choice(text, want):
    assert extract("multiple_choice", text, CHOICES) == want


@pytest.mark.parametrize(
    "text, want",
    [
        ("The answer is: False.", "False"),
        ("the answer is unknown", "Unknown"),
        ("The answer is: TRUE", "True"),
        ("The answer is: maybe", None),
        ("It is True.", None),
    ],
)
def test_extract_true_false(text, want):
    assert extract("true_false", text) == want


def test_has_answer_per_family():
    assert has_answer("math", "So the answer is: 7")
    assert not has_answer("math", "7 + 0 = 7")
    assert has_answer("math_boxed", r"so $\boxed{7}$")
    assert not has_answer("math_boxed", "The answer is: 7")


def test_normalize_number_on_gsm8k_gold():
    path = DATA / "gsm8k.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not present")
    with open(path) as f:
        golds = [json.loads(next(f))["answer"] for _ in range(20)]
    for gold in golds:
        assert normalize_number(gold) == gold
        styled = f"${int(gold):,}.00"
        assert normalize_number(styled) == gold
        assert extract("math", f"The answer is: {styled}") == gold


@pytest.mark.asyncio
async def test_engine_failure_in_sampling_cancels_the_rationale_request():
    from rationalyst.supervisor.engine import EngineError

    never = asyncio.Event()

    async def on_start(kind):
        if kind == "generate":
            await never.wait()  # the rationale would run forever unless cancelled

    def broken(prompt, n, seed):
        raise EngineError("agent server down")

    eng = ScriptedEngine(steps=broken, on_start=on_start)
    with pytest.raises(EngineError, match="agent server down"):
        await asyncio.wait_for(
            solve_all(Problem("q", "math"), SolveParams(), Engines(eng, eng, eng)), 5
        )
    cancelled = [rid for kind, rid in eng.events if kind == "cancelled"]
    assert len(cancelled) == 1 and cancelled[0].endswith("-rationale")
    assert not eng.in_flight
