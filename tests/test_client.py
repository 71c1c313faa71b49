"""The Python client (clients/client.py) and `rationalyst solve`: against the real
server (marked vllm), and against a scripted stub HTTP server for retries and failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from harness import REPO, StubServer
from rationalyst.clients.client import (
    APIConnectionError,
    AsyncRationalystClient,
    BadRequestError,
    Candidate,
    RateLimitError,
    RationalystClient,
    ServerError,
    SolveRequest,
    SolveResult,
    Step,
    Timings,
    Usage,
)

vllm = pytest.mark.vllm
QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have?"


# ---- against the real server ----------------------------------------------------------


@pytest.fixture(scope="module")
def client(server):
    with RationalystClient(server.url) as c:
        yield c


def check_result(r: SolveResult, max_steps: int) -> None:
    assert isinstance(r, SolveResult) and r.id.startswith("solve-")
    assert r.finish_reason in ("answer", "max_steps", "budget")
    assert 1 <= len(r.steps) <= max_steps
    assert isinstance(r.usage, Usage) and r.usage.agent_completion_tokens > 0
    assert isinstance(r.timings, Timings) and r.timings.total_ms > 0
    assert r.raw["id"] == r.id and len(r.raw["steps"]) == len(r.steps)
    for i, step in enumerate(r.steps):
        assert isinstance(step, Step) and step.index == i and step.text
        assert all(isinstance(c, Candidate) for c in step.candidates)
        chosen = [c for c in step.candidates if c.chosen]
        assert len(chosen) == 1 and chosen[0].text == step.text


@vllm
def test_health(client):
    h = client.health()
    assert h["status"] == "ready" and h["models"]["agent"] == "SmolLM2-135M-Instruct"


@vllm
def test_greedy_solve_is_typed(client):
    r = client.solve(QUESTION, strategy="greedy", max_steps=2)
    check_result(r, 2)
    assert r.strategy == "greedy" and r.usage.rationale_tokens == 0
    for step in r.steps:
        assert step.rationale is None
        assert step.candidates == [Candidate(text=step.text, score=None, chosen=True)]


@vllm
def test_rationalyst_solve_is_typed(client):
    r = client.solve(QUESTION, num_candidates=2, max_steps=1, seed=7)
    check_result(r, 1)
    assert r.strategy == "rationalyst" and r.seed == 7 and r.usage.rationale_tokens > 0
    for step in r.steps:
        assert isinstance(step.rationale, str) and step.rationale
        assert len(step.candidates) == 2
        assert all(isinstance(c.score, float) for c in step.candidates)
        best = max(step.candidates, key=lambda c: c.score)
        assert best.chosen


@vllm
async def test_async_solve_and_health(server):
    async with AsyncRationalystClient(server.url) as c:
        assert (await c.health())["status"] == "ready"
        r = await c.solve(QUESTION, strategy="greedy", max_steps=2)
    check_result(r, 2)
    assert r.strategy == "greedy"


def split_stream(items: list) -> tuple[list[Step], SolveResult]:
    assert items and isinstance(items[-1], SolveResult)
    assert all(isinstance(i, Step) for i in items[:-1])
    return items[:-1], items[-1]


@vllm
def test_stream_yields_steps_then_the_result(client):
    items, arrived = [], []
    for item in client.stream_solve(QUESTION, num_candidates=2, max_steps=2, seed=3):
        items.append(item)
        arrived.append(time.monotonic())
    steps, result = split_stream(items)
    assert steps and result.steps == steps  # the result repeats what was streamed
    check_result(result, 2)
    if len(steps) > 1:  # streamed as chosen, not buffered to the end
        assert arrived[-1] - arrived[0] > 0.5 * steps[-1].elapsed_ms / 1e3


@vllm
async def test_async_stream(server):
    async with AsyncRationalystClient(server.url) as c:
        items = [i async for i in c.stream_solve(QUESTION, strategy="greedy", max_steps=2)]
    steps, result = split_stream(items)
    assert steps and result.steps == steps


@vllm
def test_422_is_a_bad_request_error_with_the_servers_message(client):
    with pytest.raises(BadRequestError) as info:
        client.solve(QUESTION, num_candidates=40)
    e = info.value
    assert e.status_code == 422 and e.type == "invalid_request_error"
    assert "num_candidates" in e.message and e.param == "num_candidates"
    with pytest.raises(BadRequestError, match="num_candidates"):
        list(client.stream_solve(QUESTION, num_candidates=40))
    with pytest.raises(BadRequestError, match="context") as info:
        list(client.stream_solve("x " * 9000))
    assert info.value.status_code == 400


@vllm
async def test_async_bad_request(server):
    async with AsyncRationalystClient(server.url) as c:
        with pytest.raises(BadRequestError, match="max_steps") as info:
            await c.solve(QUESTION, max_steps=0)
        assert info.value.status_code == 422
        with pytest.raises(BadRequestError, match="max_steps"):
            [i async for i in c.stream_solve(QUESTION, max_steps=0)]


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rationalyst.cli", "solve", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )


@vllm
def test_cli_stream_prints_steps_and_answer(server):
    p = cli(
        QUESTION,
        "--url",
        server.url,
        "--stream",
        "--num-candidates",
        "2",
        "--max-steps",
        "1",
        "--seed",
        "3",
    )
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "Step 1" in out and "rationale:" in out
    assert "✓" in out and "✗" in out  # chosen and rejected candidates, with scores
    assert "Answer:" in out and "finish:" in out and "usage:" in out and "total" in out


@vllm
def test_cli_json(server):
    p = cli(QUESTION, "--url", server.url, "--strategy", "greedy", "--max-steps", "1", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["id"].startswith("solve-") and len(out["steps"]) == 1
    p = cli(
        QUESTION,
        "--url",
        server.url,
        "--strategy",
        "greedy",
        "--max-steps",
        "1",
        "--json",
        "--stream",
    )
    assert p.returncode == 0, p.stderr
    events = [json.loads(line) for line in p.stdout.splitlines()]
    assert [e["event"] for e in events] == ["step", "done"]
    assert events[-1]["data"]["steps"] == [events[0]["data"]]


@vllm
def test_cli_bad_request_exits_1_with_the_servers_message(server):
    p = cli(QUESTION, "--url", server.url, "--num-candidates", "40")
    assert p.returncode == 1 and p.stdout == ""
    assert "num_candidates" in p.stderr and "422" in p.stderr


# ---- against a scripted stub server ---------------------------------------------------

STEP = {
    "index": 0,
    "text": "3 + 4 = 7.",
    "rationale": "add them",
    "candidates": [
        {"text": "3 + 4 = 7.", "score": -0.5, "chosen": True},
        {"text": "3 - 4 = -1.", "score": -1.25, "chosen": False},
    ],
    "elapsed_ms": 12.5,
}
RESULT = {
    "id": "solve-stub",
    "strategy": "rationalyst",
    "seed": 1,
    "answer": "7",
    "finish_reason": "answer",
    "steps": [STEP],
    "usage": {
        "agent_prompt_tokens": 10,
        "agent_completion_tokens": 5,
        "rationale_tokens": 3,
        "scored_tokens": 8,
    },
    "timings": {"sample_ms": 1.0, "rationale_ms": 2.0, "score_ms": 3.0, "total_ms": 7.0},
}
OK = (200, {"content-type": "application/json"}, json.dumps(RESULT).encode())
SSE_STEP = f"event: step\r\ndata: {json.dumps(STEP)}\r\n\r\n".encode()
SSE_OK = (
    200,
    {"content-type": "text/event-stream"},
    b": ping\r\n\r\n" + SSE_STEP + f"event: done\r\ndata: {json.dumps(RESULT)}\r\n\r\n".encode(),
)


def err(status: int, message: str, retry_after: str | None = "0") -> tuple:
    headers = {"content-type": "application/json"}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    body = {"error": {"message": message, "type": "rate_limit_error", "param": None}}
    return status, headers, json.dumps(body).encode()


@pytest.fixture
def stub():
    s = StubServer()
    yield s
    s.close()


@pytest.fixture
def sleeps(monkeypatch):
    """Record the client's back-off sleeps instead of sleeping."""
    got: list[float] = []
    monkeypatch.setattr(time, "sleep", got.append)
    return got


def test_429_then_200_is_retried_and_parsed(stub):
    stub.script = [err(429, "slow down"), err(429, "slow down"), OK]
    with RationalystClient(stub.url, max_retries=2, api_key="k") as c:
        r = c.solve(QUESTION, choices=["6", "7"], seed=1)
    assert len(stub.requests) == 3
    assert r == SolveResult.from_dict(RESULT) and r.steps[0].candidates[1].score == -1.25
    method, path, headers, body = stub.requests[-1]
    assert (method, path) == ("POST", "/solve")
    assert headers["authorization"] == "Bearer k"
    assert body == {
        "question": QUESTION,
        "choices": ["6", "7"],
        "strategy": "rationalyst",
        "num_candidates": 3,
        "max_steps": 15,
        "temperature": 0.7,
        "top_p": 1.0,
        "seed": 1,
        "stream": False,
        "profile": "generic",
        "score_decay": 1.0,
        "judge_reply": "structured",
        "prm_aggregation": "last",
    }


def test_503_retries_are_bounded(stub, sleeps):
    stub.script = [err(503, "engine down", retry_after=None)]
    with RationalystClient(stub.url, max_retries=3) as c, pytest.raises(ServerError) as info:
        c.solve(QUESTION)
    assert len(stub.requests) == 4 and len(sleeps) == 3
    assert info.value.status_code == 503 and info.value.message == "engine down"
    # no Retry-After: exponential back-off with jitter, 0.5 s base
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1 and 1 <= sleeps[2] <= 2


def test_retry_after_is_honoured_and_capped(stub, sleeps):
    stub.script = [err(429, "wait", retry_after="7"), err(429, "wait", retry_after="9999"), OK]
    with RationalystClient(stub.url) as c:
        assert c.solve(QUESTION).answer == "7"
    assert sleeps == [7.0, 60.0]


def test_no_retries_raises_rate_limit_error(stub):
    stub.script = [err(429, "too many requests")]
    with RationalystClient(stub.url, max_retries=0) as c:
        with pytest.raises(RateLimitError, match="too many requests") as info:
            c.solve(QUESTION)
        assert info.value.status_code == 429 and info.value.type == "rate_limit_error"
        with pytest.raises(RateLimitError):
            c.health()
    assert [r[:2] for r in stub.requests] == [("POST", "/solve"), ("GET", "/health")]


def test_connection_errors_are_retried_then_raised(sleeps):
    closed = StubServer()
    closed.close()  # its port is free now: connections are refused
    with RationalystClient(closed.url, max_retries=2) as c, pytest.raises(APIConnectionError):
        c.solve(QUESTION)
    assert len(sleeps) == 2


def test_stream_is_retried_before_its_first_event(stub):
    stub.script = [err(503, "busy"), SSE_OK]
    with RationalystClient(stub.url) as c:
        items = list(c.stream_solve(QUESTION))
    assert len(stub.requests) == 2 and stub.requests[0][3]["stream"] is True
    assert items == [Step.from_dict(STEP), SolveResult.from_dict(RESULT)]


def test_stream_that_breaks_after_a_byte_is_not_retried(stub):
    stub.script = [(200, {"content-type": "text/event-stream"}, SSE_STEP, 100_000), SSE_OK]
    got = []
    with RationalystClient(stub.url, max_retries=2) as c, pytest.raises(APIConnectionError):
        for item in c.stream_solve(QUESTION):
            got.append(item)
    assert got == [Step.from_dict(STEP)] and len(stub.requests) == 1


def test_stream_error_event_raises_typed_error(stub):
    error = json.dumps(
        {"error": {"message": "the model engine failed: boom", "type": "engine_error"}}
    )
    stub.script = [
        (
            200,
            {"content-type": "text/event-stream"},
            SSE_STEP + f"event: error\ndata: {error}\n\n".encode(),
        )
    ]
    with RationalystClient(stub.url) as c, pytest.raises(ServerError, match="boom") as info:
        list(c.stream_solve(QUESTION))
    assert info.value.type == "engine_error" and len(stub.requests) == 1


def test_stream_without_done_raises(stub):
    stub.script = [(200, {"content-type": "text/event-stream"}, SSE_STEP)]
    with RationalystClient(stub.url) as c, pytest.raises(APIConnectionError, match="done"):
        list(c.stream_solve(QUESTION))


async def test_async_retries_and_unretried_broken_stream(stub):
    stub.script = [err(429, "slow down"), err(503, "busy"), OK]
    async with AsyncRationalystClient(stub.url, max_retries=2) as c:
        assert (await c.solve(QUESTION)).steps == [Step.from_dict(STEP)]
        assert len(stub.requests) == 3
        stub.script = [(200, {"content-type": "text/event-stream"}, SSE_STEP, 100_000), SSE_OK]
        got = []
        with pytest.raises(APIConnectionError):
            async for item in c.stream_solve(QUESTION):
                got.append(item)
    assert got == [Step.from_dict(STEP)] and len(stub.requests) == 4
    async with AsyncRationalystClient(stub.url, max_retries=0) as c:
        stub.script = [err(429, "nope"), OK]
        with pytest.raises(RateLimitError, match="nope"):
            await c.solve(QUESTION)


CHECK_IMPORTS = """
import sys
from rationalyst.cli.main import main
rc = main(sys.argv[1:])
leaked = sorted(m for m in sys.modules if m.split(".")[0] == "vllm"
                or m.startswith(("rationalyst.server", "rationalyst.supervisor")))
assert not leaked, leaked
sys.exit(rc)
"""


def test_cli_speaks_only_http(stub):
    stub.script = [SSE_OK]
    p = subprocess.run(
        [sys.executable, "-c", CHECK_IMPORTS, "solve", QUESTION, "--url", stub.url, "--stream"],
        cwd=REPO,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert p.returncode == 0, p.stderr
    assert "✓ -0.50  3 + 4 = 7." in p.stdout and "✗ -1.25  3 - 4 = -1." in p.stdout
    assert "rationale: add them" in p.stdout and "Answer: 7" in p.stdout


def test_cli_api_error_exits_1(stub):
    stub.script = [err(429, "server is full")]
    p = subprocess.run(
        [sys.executable, "-m", "rationalyst.cli", "solve", QUESTION, "--url", stub.url],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 1 and "server is full" in p.stderr and len(stub.requests) == 3
    p = subprocess.run(
        [sys.executable, "-m", "rationalyst.cli", "solve", "--max-steps", "x", "q"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2 and "max-steps" in p.stderr


def test_a_request_object_and_timeout_s_reach_the_wire(stub):
    stub.script = [OK]
    with RationalystClient(stub.url) as c:
        r = c.solve(SolveRequest(question=QUESTION, strategy="greedy", timeout_s=5.0))
        with pytest.raises(TypeError, match="timeout"):
            c.solve(QUESTION, timeout=5.0)  # a typo is caught before sending
    assert r.finish_reason == "answer" and len(stub.requests) == 1
    body = stub.requests[0][3]
    assert body["timeout_s"] == 5.0 and body["strategy"] == "greedy" and body["task"] == "math"


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["serve", "--port", "x"], "--port"),
        (["serve", "--max-concurrent-solves", "0"], "--max-concurrent-solves"),
        (["prepare", "--scorer", "nobody"], "--scorer"),
        (["solve", "q", "--strategy", "nonesuch"], "--strategy"),
        (["eval", "--dataset", "gsm8k", "--strategies", "greedy,nonesuch"], "--strategies"),
    ],
)
def test_bad_flag_values_are_usage_errors_naming_the_flag(argv, flag):
    p = subprocess.run(
        [sys.executable, "-m", "rationalyst.cli", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and flag in p.stderr and "Traceback" not in p.stderr, p.stderr
