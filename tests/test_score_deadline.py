"""POST /score under the server's deadline (max_timeout_s, as /solve's): an engine
slower than the deadline gets its calls cancelled and the client a 504 soon after the
deadline, not when the engine would have finished; the slot is free again."""

from __future__ import annotations

import time

import httpx
import pytest

from harness import ThreadServer
from rationalyst.supervisor.scripted_engine import ScriptedEngine

Q = "What is 3 + 4?"
SLOW_S = 4.0  # each rationale call; the server's deadline is 1 s
BOUND_S = 3.0  # the 504 comes well before the engine would have finished


@pytest.fixture
def slow():
    engine = ScriptedEngine(generate_s=SLOW_S)
    with ThreadServer(engine, max_timeout_s=1, max_concurrent_solves=1, max_queued_solves=0) as srv:
        yield srv


def timed_post(srv, body: dict) -> tuple[httpx.Response, float]:
    t0 = time.perf_counter()
    r = httpx.post(srv.url + "/score", json=body, timeout=30)
    return r, time.perf_counter() - t0


def assert_deadline_error(r: httpx.Response, elapsed: float) -> None:
    assert r.status_code == 504, r.text
    err = r.json()["error"]
    assert err["code"] == "deadline_exceeded" and err["type"] == "timeout_error"
    assert "deadline of 1 s" in err["message"] and "RATIONALYST_MAX_TIMEOUT_S" in err["message"]
    assert elapsed < BOUND_S, elapsed


def started_and_cancelled(engine: ScriptedEngine) -> tuple[set[str], set[str]]:
    started = {rid for ev, rid in engine.events if ev == "generate_start"}
    cancelled = {rid for ev, rid in engine.events if ev == "cancelled"}
    return started, cancelled


@pytest.mark.parametrize(
    "body, calls",
    [
        ({"question": Q, "steps": ["a"], "candidates": ["b", "c"]}, 1),
        ({"question": Q, "steps": ["a", "b", "c"]}, 3),  # one rationale per step
    ],
    ids=["candidates", "trajectory"],
)
def test_score_past_the_deadline_is_504_and_cancels_the_engine(slow, body, calls):
    r, elapsed = timed_post(slow, body)
    assert_deadline_error(r, elapsed)
    started, cancelled = started_and_cancelled(slow.engine)
    assert len(started) == calls and cancelled == started
    assert not slow.engine.in_flight
    assert not any(ev == "generate_end" for ev, _ in slow.engine.events)


def test_the_slot_is_free_after_the_deadline(slow):
    # One slot and no queue: were the first still holding it, the second would be a 429.
    body = {"question": Q, "candidates": ["b"]}
    for _ in range(2):
        r, elapsed = timed_post(slow, body)
        assert_deadline_error(r, elapsed)


def test_solve_and_score_share_the_deadline(slow):
    """/solve on the same server stops at the same 1 s (finish_reason timeout)."""
    t0 = time.perf_counter()
    r = httpx.post(slow.url + "/solve", json={"question": Q, "strategy": "rationalyst"}, timeout=30)
    assert r.status_code == 200 and r.json()["finish_reason"] == "timeout", r.text
    assert time.perf_counter() - t0 < BOUND_S
