"""/v1's `stop` ends a supervised solve: the loop stops after the first step whose
text (joined to the steps before it as /v1's content is) holds a stop string, that
step cut before it, finish_reason "stop".

Loop logic on ScriptedEngine (a scripted fake engine, no model), and the /v1 route on
a scripted server over real HTTP; the real-engine side is in test_input_edges.py.
"""

from __future__ import annotations

import json

import httpx
import pytest
from httpx_sse import EventSource

from harness import ThreadServer
from rationalyst.supervisor.engine import Engines
from rationalyst.supervisor.loop import solve, solve_all
from rationalyst.supervisor.scripted_engine import ScriptedEngine
from rationalyst.supervisor.types import Problem, Result, SolveParams

MATH = Problem(question="What is 3 + 4?", task="math")
STEPS = ["First, 3 apples.", "Then 4 more. Done here.", "Now count them.", "So 7 left."]


def greedy(**kw) -> SolveParams:
    return SolveParams(**{"strategy": "greedy", "max_steps": 4, "seed": 1, **kw})


def engine() -> ScriptedEngine:
    return ScriptedEngine(generate=list(STEPS))


async def run(stop: tuple[str, ...]) -> tuple[Result, ScriptedEngine]:
    eng = engine()
    return await solve_all(MATH, greedy(stop=stop), Engines(eng, eng, eng)), eng


@pytest.mark.asyncio
async def test_no_stop_runs_every_step():
    res, eng = await run(())
    assert res.finish_reason == "max_steps" and [s.text for s in res.steps] == STEPS
    assert eng.calls["generate"] == 4


@pytest.mark.asyncio
async def test_stop_in_a_step_ends_the_solve_with_the_step_cut():
    res, eng = await run(("Done", "never"))
    assert res.finish_reason == "stop"
    assert [s.text for s in res.steps] == ["First, 3 apples.", "Then 4 more. "]
    assert eng.calls["generate"] == 2  # no round after the stop
    # The chosen candidate keeps what was sampled; only the released step is cut.
    assert res.steps[1].candidates[0].text == STEPS[1]


@pytest.mark.asyncio
async def test_stop_at_a_steps_start_leaves_it_empty():
    res, eng = await run(("Then",))
    assert [s.text for s in res.steps] == ["First, 3 apples.", ""]
    assert res.finish_reason == "stop" and eng.calls["generate"] == 2


@pytest.mark.asyncio
async def test_stop_the_separator_completes_ends_before_the_next_step():
    # "\n" joins the steps: after step 0 the next step could only be cut away whole.
    res, eng = await run(("\n",))
    assert [s.text for s in res.steps] == ["First, 3 apples."]
    assert res.finish_reason == "stop" and eng.calls["generate"] == 1
    res, eng = await run(("apples.\nThen",))  # across two steps: this one is cut whole
    assert [s.text for s in res.steps] == ["First, 3 apples.", ""]
    assert res.finish_reason == "stop" and eng.calls["generate"] == 2


@pytest.mark.asyncio
async def test_streamed_step_is_the_cut_one():
    eng = engine()
    events = [ev async for ev in solve(MATH, greedy(stop=("more",)), Engines(eng, eng, eng))]
    assert [ev.text for ev in events[:-1]] == ["First, 3 apples.", "Then 4 "]
    assert events[-1].finish_reason == "stop"


def test_v1_stop_ends_the_solve_and_says_stop():
    with ThreadServer(engine()) as srv:
        r = httpx.post(
            srv.url + "/v1/chat/completions",
            timeout=30,
            json={
                "model": "greedy",
                "stop": "Done",
                "max_steps": 4,
                "messages": [{"role": "user", "content": "What is 3 + 4?"}],
            },
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["choices"][0]["message"]["content"] == "First, 3 apples.\nThen 4 more. "
    assert body["rationalyst"]["finish_reason"] == "stop"
    assert len(body["rationalyst"]["steps"]) == 2


def test_v1_stream_with_stop_sends_the_cut_content():
    with (
        ThreadServer(engine()) as srv,
        httpx.Client(timeout=30) as c,
        c.stream(
            "POST",
            srv.url + "/v1/chat/completions",
            json={
                "model": "greedy",
                "stop": ["Done"],
                "max_steps": 4,
                "stream": True,
                "messages": [{"role": "user", "content": "What is 3 + 4?"}],
            },
        ) as r,
    ):
        chunks = [json.loads(e.data) for e in EventSource(r).iter_sse() if e.data != "[DONE]"]
    content = "".join(
        ch["choices"][0]["delta"].get("content", "") for ch in chunks if ch["choices"]
    )
    assert content == "First, 3 apples.\nThen 4 more. "
    finals = [
        ch["choices"][0]["finish_reason"]
        for ch in chunks
        if ch["choices"] and ch["choices"][0].get("finish_reason")
    ]
    assert finals == ["stop"]
