"""The `judge` strategy: an LLM verifier rates each candidate trajectory 0-3.

The argmax, tie, unparseable-reply and cancellation tests script the agent with the
scripted engine (no model code; see tests/harness.py). The verifier is then the agent
itself (AgentJudge, the default), or a stub OpenAI-compatible server on 127.0.0.1.
The end-to-end tests run the real default model, judging its own candidates."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from harness import LoopServer, StubServer, free_port, json_reply
from rationalyst.supervisor.engine import EngineError, Engines
from rationalyst.supervisor.loop import solve_all
from rationalyst.supervisor.scripted_engine import ScriptedEngine
from rationalyst.supervisor.strategies.judge import JUDGE_SYSTEM, HTTPJudge, parse_reward
from rationalyst.supervisor.types import Problem, SolveParams

PROBLEM = Problem("What is 2 + 3?", "math")
CANDS = ["add two and three", "the sum is five", "guess six"]


def params(**kw) -> SolveParams:
    return SolveParams(
        **{"strategy": "judge", "num_candidates": 3, "max_steps": 1, "seed": 1, **kw}
    )


def agent(replies: dict[str, str], scores=None, **kw) -> ScriptedEngine:
    """Samples CANDS; as its own judge, replies by the candidate in the prompt's
    last trajectory line."""

    def generate(prompt):
        last = [line for line in prompt.splitlines() if line.startswith("Step ")][-1]
        return replies[last.split(": ", 1)[1]]

    return ScriptedEngine(steps=lambda p, n, s: CANDS[:n], generate=generate, scores=scores, **kw)


@pytest.mark.parametrize(
    "reply, reward",
    [
        ("Reward: 3", 3),
        ("2", 2),
        ("I think... Reward: 0.", 0),
        ("Reward: **2**", 2),
        (" 1\n", 1),
        ("reward 1 of 3", None),
        ("The answer is 1.", None),
        ("Reward: 12", None),
        ("Reward: 7", None),
        ("Reward: -1", None),
        ("no idea", None),
        ("", None),
    ],
)
def test_parse_reward(reply, reward):
    assert parse_reward(reply) == reward


async def test_highest_reward_wins_and_trace_keeps_rewards_and_replies():
    eng = agent({CANDS[0]: "Reward: 1", CANDS[1]: "Reward: 3", CANDS[2]: "Reward: 2"})
    result = await solve_all(PROBLEM, params(), Engines(eng, eng, eng))
    cands = result.steps[0].candidates
    assert [c.score for c in cands] == [1, 3, 2]
    assert [c.reply for c in cands] == ["Reward: 1", "Reward: 3", "Reward: 2"]
    assert result.steps[0].text == CANDS[1] and cands[1].chosen
    judged = [r for r in eng.requests if r[0] == "generate"]
    assert len(judged) == 3  # one verifier call per candidate
    for (_, rid, inputs), cand in zip(judged, CANDS):
        assert JUDGE_SYSTEM in inputs["prompt"] and PROBLEM.question in inputs["prompt"]
        assert f"Step 1: {cand}\n" in inputs["prompt"] and rid.endswith(f"judge{CANDS.index(cand)}")
    u = result.usage
    assert u.verifier_prompt_tokens > 0 and u.verifier_completion_tokens == 6
    assert u.verifier_unparsed == 0


async def test_every_call_of_a_judge_solve_carries_the_solve_id():
    # What replica pinning and X-Session-Id use (tests/test_replicas.py runs the same
    # on two real replicas): the verifier's calls too, not only the samples.
    eng = agent({c: "Reward: 1" for c in CANDS})
    await solve_all(PROBLEM, params(max_steps=2), Engines(eng, eng, eng), "solve-abc")
    kinds = {kind for kind, _, _ in eng.requests}
    assert kinds == {"sample", "generate"}
    assert set(eng.sessions.values()) == {"solve-abc"}
    assert len([r for r in eng.sessions if "judge" in r]) == 6


async def test_ties_go_to_the_agents_own_likelier_candidate():
    # Agent log-probs: the third candidate likeliest, then the second.
    lp = {CANDS[0]: -3.0, CANDS[1]: -2.0, CANDS[2]: -1.0}
    eng = agent(
        {CANDS[0]: "Reward: 3", CANDS[1]: "Reward: 3", CANDS[2]: "Reward: 1"},
        scores=lambda prefix, text: [lp[text]] * len(text.split()),
    )
    result = await solve_all(PROBLEM, params(), Engines(eng, eng, eng))
    cands = result.steps[0].candidates
    assert [c.logprob for c in cands] == [-3.0, -2.0, -1.0]
    assert cands[1].chosen and result.steps[0].text == CANDS[1]


async def test_unparseable_replies_are_counted_shown_and_never_random():
    eng = agent({CANDS[0]: "maybe good", CANDS[1]: "Reward: 0", CANDS[2]: "Reward: 9"})
    for seed in (1, 2, 3):  # the choice does not depend on the seed
        result = await solve_all(PROBLEM, params(seed=seed), Engines(eng, eng, eng))
        cands = result.steps[0].candidates
        assert [c.score for c in cands] == [None, 0, None]
        assert [c.reply for c in cands] == ["maybe good", "Reward: 0", "Reward: 9"]
        assert cands[1].chosen
        assert result.usage.verifier_unparsed == 2


async def test_a_failing_verifier_call_cancels_its_siblings():
    gate = asyncio.Event()

    async def on_start(kind):
        if kind == "generate" and CANDS[2] not in eng.requests[-1][2]["prompt"]:
            await gate.wait()  # never set: only cancellation ends these

    def generate(prompt):
        raise EngineError("verifier down")

    eng = ScriptedEngine(steps=lambda p, n, s: CANDS[:n], generate=generate, on_start=on_start)
    with pytest.raises(EngineError, match="verifier down"):
        await asyncio.wait_for(solve_all(PROBLEM, params(), Engines(eng, eng, eng)), 10)
    judged = {rid for kind, rid, _ in eng.requests if kind == "generate"}
    cancelled = {rid for ev, rid in eng.events if ev == "cancelled"}
    assert len(judged) == 3 and len(cancelled) == 2 and cancelled < judged
    assert not eng.in_flight


# ---- a stub OpenAI-compatible verifier --------------------------------------------------


def chat_reply(content: str, prompt_tokens: int = 40, completion_tokens: int = 3):
    return json_reply(
        200,
        {
            "id": "x",
            "object": "chat.completion",
            "model": "gpt-4-turbo",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": content},
                }
            ],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
        },
    )


async def test_stub_openai_verifier_receives_each_trajectory():
    def respond(request):
        user = request[3]["messages"][-1]["content"]
        return chat_reply("Reward: 3" if CANDS[2] in user else "Reward: 1")

    stub = StubServer(respond)
    judge = HTTPJudge(stub.url + "/v1", "gpt-4-turbo", api_key="sk-test")
    eng = agent({})
    try:
        result = await solve_all(PROBLEM, params(max_steps=2), Engines(eng, eng, eng, judge=judge))
    finally:
        await judge.close()
        stub.close()
    assert [s.text for s in result.steps] == [CANDS[2], CANDS[2]]
    assert not [r for r in eng.requests if r[0] == "generate"]  # the agent never judged
    assert len(stub.requests) == 6
    for method, path, headers, body in stub.requests:
        assert (method, path) == ("POST", "/v1/chat/completions")
        assert headers["authorization"] == "Bearer sk-test"
        assert body["model"] == "gpt-4-turbo" and body["temperature"] == 0.0
        system, user = body["messages"]
        assert system == {"role": "system", "content": JUDGE_SYSTEM}
        assert user["content"].startswith(f"Question: {PROBLEM.question}")
    # Step 2's prompts hold the chosen first step, then each candidate.
    second = [b["messages"][1]["content"] for *_, b in stub.requests[3:]]
    for cand in CANDS:
        assert any(u.endswith(f"Step 1: {CANDS[2]}\nStep 2: {cand}") for u in second)
    assert result.usage.verifier_prompt_tokens == 6 * 40
    assert result.usage.verifier_completion_tokens == 6 * 3


@pytest.mark.parametrize(
    "reply, needle",
    [
        (json_reply(500, {"error": "boom"}), "answered HTTP 500"),
        ((200, {"content-type": "text/plain"}, b"not json"), "not an OpenAI chat completion"),
        (json_reply(200, {"choices": []}), "not an OpenAI chat completion"),
        (
            json_reply(200, {"choices": [{"message": {"content": "Score: 7"}}], "usage": [1]}),
            "not an OpenAI chat completion",
        ),
    ],
)
async def test_verifier_http_error_or_non_json_is_an_engine_error_naming_its_host(reply, needle):
    stub = StubServer()
    stub.script = [reply]
    judge = HTTPJudge(stub.url + "/v1", "m")
    eng = agent({})
    try:
        with pytest.raises(EngineError) as err:
            await solve_all(PROBLEM, params(), Engines(eng, eng, eng, judge=judge))
    finally:
        await judge.close()
        stub.close()
    host = stub.url.split("//")[1]
    assert needle in str(err.value) and host in str(err.value)


def test_unreachable_verifier_is_503_with_its_host_and_health_degraded():
    port = free_port()  # nothing listens there
    with LoopServer(agent({})) as srv:
        engines = srv.server.config.app.state.engines
        engines.judge = HTTPJudge(f"http://127.0.0.1:{port}/v1", "gpt-4-turbo")
        r = httpx.post(srv.url + "/solve", json={"question": "q", "strategy": "judge"})
        assert r.status_code == 503
        assert f"127.0.0.1:{port}" in r.json()["error"]["message"]
        with httpx.stream(
            "POST", srv.url + "/solve", json={"question": "q", "strategy": "judge", "stream": True}
        ) as s:
            text = s.read().decode()
        assert "event: error" in text and f"127.0.0.1:{port}" in text
        h = httpx.get(srv.url + "/health")
        assert h.status_code == 503 and h.json()["status"] == "degraded"
        assert any(f"127.0.0.1:{port}" in e for e in h.json()["errors"])
        assert h.json()["models"]["judge"] == "gpt-4-turbo" and "prm" not in h.json()["models"]
        # The other strategies still serve.
        ok = httpx.post(
            srv.url + "/solve", json={"question": "q", "strategy": "random", "max_steps": 1}
        )
        assert ok.status_code == 200


# ---- the real default model as its own verifier --------------------------------------


@pytest.mark.vllm
def test_judge_end_to_end_on_the_default_model(server):
    with httpx.Client(base_url=server.url, timeout=600) as c:
        r = c.post(
            "/solve",
            json={
                "question": "Tom has 3 apples and buys 4 more. How many apples does he have?",
                "strategy": "judge",
                "num_candidates": 2,
                "max_steps": 2,
                "seed": 3,
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["strategy"] == "judge" and body["steps"]
        unparsed = 0
        for step in body["steps"]:
            chosen = [c for c in step["candidates"] if c["chosen"]]
            assert len(chosen) == 1 and chosen[0]["text"] == step["text"]
            for cand in step["candidates"]:
                if not cand["text"]:
                    continue
                assert isinstance(cand["reply"], str) and cand["logprob"] is not None
                assert cand["score"] in (0, 1, 2, 3, None)
                if cand["score"] is None:
                    unparsed += 1
                else:
                    assert cand["score"] == parse_reward(cand["reply"])
            live = [c for c in step["candidates"] if c["text"]]
            best = max(c["score"] if c["score"] is not None else -1 for c in live)
            assert (chosen[0]["score"] if chosen[0]["score"] is not None else -1) == best
        u = body["usage"]
        assert u["verifier_prompt_tokens"] > 0 and u["verifier_completion_tokens"] > 0
        assert u["verifier_unparsed"] == unparsed
        # Without a PRM configured, strategy prm is a 400 that names the setting.
        r = c.post("/solve", json={"question": "q", "strategy": "prm"})
        assert r.status_code == 400 and "RATIONALYST_PRM_MODEL" in r.json()["error"]["message"]
        models = {m["id"] for m in c.get("/v1/models").json()["data"]}
        assert "judge" in models and "prm" not in models  # listed only with a PRM


def test_the_trace_viewer_menus_offer_every_strategy():
    import re

    from rationalyst.protocol import STRATEGIES
    from rationalyst.server import ui

    html = ui.render()  # the page as served: its menus come from the registry
    for menu in ("strategy", "compare"):
        block = re.search(rf'<select id="{menu}">(.*?)</select>', html, re.S).group(1)
        assert set(re.findall(r"<option>(\w+)</option>", block)) == set(STRATEGIES)
