"""StructuredHTTPJudge's fallback over real HTTP on 127.0.0.1: only a refusal of the
request's shape (400/404/422, not a prompt over the context) moves it to the next
kind of request, only while it is still learning which one its server takes; an
outage surfaces as it came and teaches it nothing."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import ThreadingHTTPServer

import httpx
import pytest

import harness
from harness import LoopServer, StubServer, free_port, json_reply
from rationalyst.supervisor.http_api import APIError
from rationalyst.supervisor.scripted_engine import ScriptedEngine
from rationalyst.supervisor.strategies.judge import StructuredHTTPJudge

MSGS = [{"role": "user", "content": "Question: 1+1\n\nTrajectory:\nStep 1: 2"}]
TOO_LONG = [
    # OpenAI's
    "This model's maximum context length is 8192 tokens. However, your messages "
    "resulted in 9000 tokens.",
    # vLLM's
    "The decoder prompt (length 9000) is longer than the maximum model length of 8192.",
]


def chat(text: str):
    return json_reply(
        200,
        {
            "choices": [{"message": {"content": text}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3},
        },
    )


def error(status: int, message: str):
    return json_reply(status, {"error": {"message": message, "type": "invalid_request_error"}})


def kind(body: dict) -> str:
    if "structured_outputs" in body:
        return "choice"
    return "json_schema" if "response_format" in body else "text"


def vllm_like(request):
    """A `vllm serve`: the choice constrains the reply; otherwise it answers in prose."""
    body = request[3]
    return chat("Reward: 2") if kind(body) == "choice" else chat("The step looks right.")


def kinds(stub: StubServer) -> list[str]:
    return [kind(body) for *_, body in stub.requests]


@pytest.fixture
async def served():
    """A stub verifier and a judge on it; both closed after the test."""
    made: list = []

    def make(respond, **kw):
        stub = StubServer(respond)
        judge = StructuredHTTPJudge(stub.url + "/v1", "m", **kw)
        made.append((stub, judge))
        return stub, judge

    yield make
    for stub, judge in made:
        await judge.close()
        stub.close()


async def test_a_judge_down_on_its_first_call_uses_the_structured_mode_once_up(monkeypatch):
    port = free_port()  # nothing listens there yet
    judge = StructuredHTTPJudge(f"http://127.0.0.1:{port}/v1", "m")
    try:
        with pytest.raises(APIError) as err:
            await judge.rate(MSGS, "r1")
        assert err.value.status is None and f"127.0.0.1:{port}" in str(err.value)
        assert judge.mode is None  # an outage says nothing of what the server takes

        class OnThePort(ThreadingHTTPServer):  # the stub comes up where the judge points
            def __init__(self, _address, handler):
                super().__init__(("127.0.0.1", port), handler)

        monkeypatch.setattr(harness, "ThreadingHTTPServer", OnThePort)
        stub = StubServer(vllm_like)
        try:
            r = await judge.rate(MSGS, "r2")
        finally:
            stub.close()
    finally:
        await judge.close()
    assert r.reward == 2 and judge.mode == "choice"
    assert kinds(stub) == ["choice"]


@pytest.mark.parametrize("status", [401, 429, 500, 503])
async def test_an_outage_on_the_first_call_is_raised_without_trying_other_modes(served, status):
    stub, judge = served(lambda _: error(status, "overloaded, try again"))
    with pytest.raises(APIError) as err:
        await judge.rate(MSGS, "r1")
    assert err.value.status == status and f"answered HTTP {status}" in str(err.value)
    assert kinds(stub) == ["choice"] and judge.mode is None


async def test_a_503_once_the_mode_is_known_surfaces_and_sends_no_free_text(served):
    down = threading.Event()
    stub, judge = served(lambda req: error(503, "restarting") if down.is_set() else vllm_like(req))
    assert (await judge.rate(MSGS, "r1")).reward == 2 and judge.mode == "choice"
    down.set()
    with pytest.raises(APIError) as err:
        await judge.rate(MSGS, "r2")
    down.clear()
    r = await judge.rate(MSGS, "r3")
    assert err.value.status == 503
    assert kinds(stub) == ["choice", "choice", "choice"]  # never a free-text request
    assert r.reward == 2 and judge.mode == "choice"


async def test_a_refused_field_falls_back_to_json_schema_and_is_remembered(served):
    def openai_like(request):
        body = request[3]
        if kind(body) == "choice":
            return error(400, "Unrecognized request argument supplied: structured_outputs")
        return chat(json.dumps({"reward": 1}) if kind(body) == "json_schema" else "prose")

    stub, judge = served(openai_like)
    assert (await judge.rate(MSGS, "r1")).reward == 1
    assert (await judge.rate(MSGS, "r2")).reward == 1
    assert judge.mode == "json_schema"
    assert kinds(stub) == ["choice", "json_schema", "json_schema"]


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_refused_structure_falls_back_to_text_and_is_remembered(served, status):
    def plain(request):
        if kind(request[3]) != "text":
            return error(status, "unknown field")
        return chat("Reward: 3")

    stub, judge = served(plain)
    assert (await judge.rate(MSGS, "r1")).reward == 3
    assert (await judge.rate(MSGS, "r2")).reward == 3
    assert judge.mode == "text"
    assert kinds(stub) == ["choice", "json_schema", "text", "text"]


@pytest.mark.parametrize("message", TOO_LONG)
async def test_a_prompt_over_the_context_is_no_fallback(served, message):
    long = threading.Event()
    stub, judge = served(lambda req: error(400, message) if long.is_set() else vllm_like(req))
    long.set()
    with pytest.raises(APIError) as err:
        await judge.rate(MSGS, "r1")
    assert err.value.too_long and judge.mode is None
    assert kinds(stub) == ["choice"]
    long.clear()  # a shorter trajectory: the structured mode is still the one used
    assert (await judge.rate(MSGS, "r2")).reward == 2
    assert judge.mode == "choice" and kinds(stub) == ["choice", "choice"]


async def test_a_hung_verifier_costs_one_timeout_not_three(served):
    release = threading.Event()

    def hang(request):
        release.wait(30)
        return chat("Reward: 1")

    stub, judge = served(hang, timeout_s=0.2)
    try:
        with pytest.raises(APIError) as err:
            await judge.rate(MSGS, "r1")
    finally:
        release.set()
    assert err.value.status is None and "ReadTimeout" in str(err.value)
    assert kinds(stub) == ["choice"] and judge.mode is None


async def test_concurrent_first_calls_keep_the_mode_learned_first(served):
    # B learns "choice" while A, started first, is still probing; A's choice is then
    # refused and its json_schema taken: A's reward stands, the mode B learned too.
    b_done = threading.Event()
    msgs_a = [{"role": "user", "content": "Question: 1+1\n\nTrajectory:\nStep 1: A"}]

    def respond(request):
        body = request[3]
        if "Step 1: A" not in body["messages"][-1]["content"]:
            return vllm_like(request)
        if kind(body) == "choice":
            b_done.wait(30)
            return error(400, "messages: unsupported content")
        return chat(json.dumps({"reward": 1}))

    stub, judge = served(respond)
    a = asyncio.create_task(judge.rate(msgs_a, "a"))
    try:
        assert (await judge.rate(MSGS, "b")).reward == 2
    finally:
        b_done.set()
    assert (await a).reward == 1
    assert judge.mode == "choice"


@pytest.mark.parametrize(
    "reply", [error(503, "restarting"), error(400, TOO_LONG[0])], ids=["503", "too-long"]
)
def test_the_judges_errors_still_answer_503_naming_its_host(reply):
    # Raised unchanged, they keep the EngineError mapping the server gives them.
    stub = StubServer(lambda _: reply)
    eng = ScriptedEngine(steps=lambda p, n, s: ["a", "b"][:n])
    try:
        with LoopServer(eng) as srv:
            judge = StructuredHTTPJudge(stub.url + "/v1", "m")
            srv.server.config.app.state.engines.judge = judge
            r = httpx.post(srv.url + "/solve", json={"question": "q", "strategy": "judge"})
    finally:
        stub.close()
    assert r.status_code == 503
    assert stub.url.split("//")[1] in r.json()["error"]["message"]
    assert kinds(stub) == ["choice"] * len(stub.requests)  # each candidate: one try
    assert judge.mode is None
