"""The false-answer rule: a step ends the solve only when an answer is extracted.

Loop logic on ScriptedEngine (a scripted fake engine, no model); the real-engine
side of the same rule is in test_input_edges.py.
"""

from __future__ import annotations

import pytest

from rationalyst.supervisor.answers import has_answer
from rationalyst.supervisor.engine import Engines
from rationalyst.supervisor.loop import solve_all
from rationalyst.supervisor.scripted_engine import ScriptedEngine
from rationalyst.supervisor.types import Problem, SolveParams


@pytest.mark.parametrize(
    "task,text,choices",
    [
        ("math", "So the answer is not given.", None),
        ("math", "The answer is:", None),
        ("math_boxed", r"The answer is \boxed", None),
        ("multiple_choice", "The answer is: fire", ["ice", "water"]),
        ("true_false", "The answer is: maybe", None),
    ],
)
def test_phrase_without_a_parseable_answer_is_no_answer(task, text, choices):
    assert not has_answer(task, text, choices)


def test_parseable_answer_is_an_answer():
    assert has_answer("math", "so the answer is 7.")
    assert has_answer("multiple_choice", "The answer is: water", ["ice", "water"])


@pytest.mark.asyncio
async def test_false_answer_step_does_not_end_the_solve():
    eng = ScriptedEngine(generate=["The answer is not given.", "The answer is: 7"])
    e = Engines(eng, eng, eng)
    res = await solve_all(
        Problem(question="What is 3 + 4?", task="math"),
        SolveParams(strategy="greedy", max_steps=5, seed=1),
        e,
    )
    assert [s.text for s in res.steps] == ["The answer is not given.", "The answer is: 7"]
    assert (res.finish_reason, res.answer) == ("answer", "7")


@pytest.mark.asyncio
async def test_context_running_out_mid_solve_returns_the_steps_with_length():
    from rationalyst.supervisor.engine import PromptTooLong

    calls = {"n": 0}

    def steps(prompt, n, seed):
        calls["n"] += 1
        if calls["n"] == 3:
            raise PromptTooLong("prompt of 9000 tokens exceeds the context")
        return [f"step {calls['n']}"] * n

    eng = ScriptedEngine(steps=steps)
    res = await solve_all(
        Problem(question="q", task="math"),
        SolveParams(strategy="random", max_steps=5, seed=1),
        Engines(eng, eng, eng),
    )
    assert res.finish_reason == "length"
    assert [s.text for s in res.steps] == ["step 1", "step 2"]
