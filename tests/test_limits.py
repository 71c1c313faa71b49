"""Limits: 429 with Retry-After, 413 (declared and chunked), the deadline, the
context length, parameter bounds.

Scripted engine, 127.0.0.1 only, bounded polling: see tests/harness.py."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from harness import (
    LoopServer,
    answering_engine,
    asse_events,
    blocking_engine,
    metric,
    poll,
    step_of,
)
from rationalyst.supervisor import prompts
from rationalyst.supervisor.scripted_engine import ScriptedEngine
from rationalyst.supervisor.types import Problem


async def test_busy_server_answers_429_with_retry_after():
    gate = asyncio.Event()
    engine = blocking_engine(gate, from_step=0)
    with LoopServer(engine, max_concurrent_solves=1, max_queued_solves=1) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            body = {"question": "q", "stream": True, "max_steps": 2}

            async def held():
                async with c.stream("POST", "/solve", json=body) as r:
                    return [e async for e, _, _ in asse_events(r)]

            holders = [asyncio.create_task(held()) for _ in range(2)]
            # One solve runs (blocked in the engine), one waits in the queue.
            await poll(
                lambda: (
                    len({step_of(rid)[0] for rid in set(engine.in_flight)}) == 1
                    and metric(srv.url, "rationalyst_queue_depth") == 1
                ),
                what="full",
            )

            for path, payload in [
                ("/solve", {"question": "q"}),
                ("/solve", {"question": "q", "stream": True}),
                (
                    "/v1/chat/completions",
                    {"model": "rationalyst", "messages": [{"role": "user", "content": "q"}]},
                ),
            ]:
                r = await c.post(path, json=payload)
                assert r.status_code == 429, r.text
                assert int(r.headers["retry-after"]) > 0
                err = r.json()["error"]
                assert err["type"] == "rate_limit_error" and err["code"] == "server_busy"
                assert "1 solves are running and 1 are queued" in err["message"]

            srv.call_soon(gate.set)
            results = await asyncio.wait_for(asyncio.gather(*holders), 30)
            assert results == [["step", "step", "done"]] * 2
            assert metric(srv.url, "rationalyst_requests_total", status="429") == 3
            assert metric(srv.url, "rationalyst_queue_depth") == 0


def test_body_over_the_limit_is_413_declared_or_chunked():
    with LoopServer(answering_engine(), max_body_bytes=2048) as srv:
        big = {"question": "x " * 2000}
        r = httpx.post(srv.url + "/solve", json=big)
        assert r.status_code == 413
        assert "over this server's limit of 2048" in r.json()["error"]["message"]

        # Without Content-Length (chunked), the body is counted as it arrives.
        raw = json.dumps(big).encode()
        chunks = (raw[i : i + 512] for i in range(0, len(raw), 512))
        r = httpx.post(
            srv.url + "/v1/chat/completions",
            content=chunks,
            headers={"content-type": "application/json"},
        )
        assert r.request.headers["transfer-encoding"] == "chunked"
        assert r.status_code == 413, r.text
        assert "over this server's limit of 2048" in r.json()["error"]["message"]
        # A small chunked body still goes through.
        small = json.dumps({"question": "q"}).encode()
        r = httpx.post(
            srv.url + "/solve",
            content=iter([small[:5], small[5:]]),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 200, r.text


def test_timeout_over_the_server_maximum_is_422():
    with LoopServer(answering_engine(), max_timeout_s=5) as srv:
        r = httpx.post(srv.url + "/solve", json={"question": "q", "timeout_s": 10})
        assert r.status_code == 422
        err = r.json()["error"]
        assert err["param"] == "timeout_s"
        assert err["message"] == "timeout_s must be at most 5 on this server, got 10"
        r = httpx.post(srv.url + "/solve", json={"question": "q", "timeout_s": 5})
        assert r.status_code == 200


@pytest.mark.parametrize("stream", [False, True])
async def test_deadline_ends_the_solve_with_timeout_and_the_steps_so_far(stream):
    # Each step: sampling and the rationale, 0.2 s side by side; 20 steps would be 4 s.
    engine = ScriptedEngine(sample_s=0.2, generate_s=0.2)
    with LoopServer(engine) as srv:
        body = {"question": "q", "max_steps": 20, "timeout_s": 0.5, "stream": stream}
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            t0 = time.monotonic()
            if stream:
                async with c.stream("POST", "/solve", json=body) as r:
                    events = [(e, d) for e, d, _ in [x async for x in asse_events(r)]]
                assert [e for e, _ in events[:-1]] == ["step"] * (len(events) - 1)
                assert events[-1][0] == "done"
                result = events[-1][1]
                assert len(result["steps"]) == len(events) - 1
            else:
                r = await c.post("/solve", json=body)
                assert r.status_code == 200, r.text
                result = r.json()
            elapsed = time.monotonic() - t0
        assert result["finish_reason"] == "timeout"
        n = len(result["steps"])
        assert 1 <= n < 20 and [s["index"] for s in result["steps"]] == list(range(n))
        assert elapsed < 0.5 + 1.5
        # The cut step's engine requests were cancelled, and nothing is left running.
        cut = {f"{result['id']}-{n}-sample", f"{result['id']}-{n}-rationale"}
        assert cut <= {rid for kind, rid in engine.events if kind == "cancelled"}
        assert not engine.in_flight
        assert metric(srv.url, "rationalyst_solves_in_flight") == 0


def test_question_too_long_for_the_context_is_400():
    short = Problem(question="What is 3 + 4?", task="math")
    probe = ScriptedEngine()
    need = probe.count_tokens(probe.render(prompts.agent_messages(short, [])))
    scorer = probe.count_tokens(probe.render(prompts.scorer_messages(short, [], "")))
    # Room for the short question and one step (64 tokens), and for the scorer's
    # prompt with a rationale and a step (64 + 64), plus a little.
    engine = answering_engine(max_model_len=max(need + 64, scorer + 128) + 20)
    long_q = "why " * 200
    with LoopServer(engine) as srv:
        assert httpx.post(srv.url + "/solve", json={"question": short.question}).status_code == 200
        n_requests = len(engine.requests)
        r = httpx.post(srv.url + "/solve", json={"question": long_q})
        assert r.status_code == 400
        assert "shorten the question" in r.json()["error"]["message"]
        r = httpx.post(
            srv.url + "/v1/chat/completions",
            json={"model": "rationalyst", "messages": [{"role": "user", "content": long_q}]},
        )
        assert r.status_code == 400 and "shorten the question" in r.json()["error"]["message"]
        assert len(engine.requests) == n_requests  # refused before any engine work
        # Turn steps (up to 1,000 tokens) are cut to the room left, so the same short
        # question fits in turn mode too, and no step asks for more than the room.
        r = httpx.post(srv.url + "/solve", json={"question": short.question, "step_end": "turn"})
        assert r.status_code == 200, r.text
        asked = [
            (i["params"].max_tokens, engine.count_tokens(i["prompt"]))
            for kind, _, i in engine.requests[n_requests:]
            if kind == "sample"
        ]
        assert asked and all(0 < m <= engine.max_model_len - p for m, p in asked)


def test_num_candidates_and_max_steps_over_their_limits_are_422():
    with LoopServer(answering_engine()) as srv:
        for field, value, limit in [("num_candidates", 17, 16), ("max_steps", 65, 64)]:
            r = httpx.post(srv.url + "/solve", json={"question": "q", field: value})
            assert r.status_code == 422
            err = r.json()["error"]
            assert err["param"] == field
            assert f"less than or equal to {limit}" in err["message"]


def test_deadlines_in_fractions_of_a_millisecond_are_timeouts_not_500s():
    """uvloop's timers have millisecond resolution and may fire a fraction of a
    millisecond before the deadline: still the solve's deadline (this was a 500)."""
    with LoopServer(ScriptedEngine(sample_s=0.005)) as srv:
        for timeout_s in (6.1e-05, 0.00021, 0.0004, 0.0113, 0.0226, 0.0301):
            r = httpx.post(srv.url + "/solve", json={"question": "q", "timeout_s": timeout_s})
            assert r.status_code == 200, (timeout_s, r.text)
            assert r.json()["finish_reason"] == "timeout"
