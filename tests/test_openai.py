"""OpenAI compatibility with the official `openai` package, sync and async, against
a real server (uvicorn on 127.0.0.1, default SmolLM2 on vLLM-CPU)."""

from __future__ import annotations

import openai
import pytest

from harness import read_items

pytestmark = pytest.mark.vllm

AGENT = "SmolLM2-135M-Instruct"
QUESTION = read_items("gsm8k", 1)[0]["question"]


@pytest.fixture(scope="module")
def oai(server):
    with openai.OpenAI(
        base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=300
    ) as c:
        yield c


@pytest.fixture
async def aoai(server):
    async with openai.AsyncOpenAI(
        base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=300
    ) as c:
        yield c


def ask(text: str = QUESTION) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_models_lists_strategies_and_agent(oai):
    ids = {m.id for m in oai.models.list()}
    # prm only with a reward model (RATIONALYST_PRM_MODEL), which this server has not
    assert ids == {"rationalyst", "rationalyst-explicit", "random", "greedy", "judge", AGENT}


def test_non_stream_rationalyst_with_trace(oai):
    r = oai.chat.completions.create(
        model="rationalyst",
        messages=ask(),
        seed=3,
        extra_body={"num_candidates": 2, "max_steps": 2},
    )
    assert r.object == "chat.completion" and len(r.choices) == 1
    trace = r.model_extra["rationalyst"]
    steps = trace["steps"]
    assert 1 <= len(steps) <= 2
    assert r.choices[0].message.content == "\n".join(s["text"] for s in steps)
    assert r.choices[0].message.role == "assistant"
    expected = "stop" if trace["finish_reason"] == "answer" else "length"
    assert r.choices[0].finish_reason == expected
    assert all(len(s["candidates"]) == 2 and s["rationale"] for s in steps)
    u = trace["usage"]
    assert r.usage.completion_tokens == u["agent_completion_tokens"] + u["rationale_tokens"]
    # Every prompt read or computed: the agent's, RATIONALYST's, the scorer's prefill.
    assert r.usage.prompt_tokens == (
        u["agent_prompt_tokens"] + u["rationale_prompt_tokens"] + u["scored_tokens"]
    )
    assert u["rationale_prompt_tokens"] > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_stream_sends_one_chunk_per_step_then_usage(oai):
    stream = oai.chat.completions.create(
        model="greedy",
        messages=ask(),
        stream=True,
        extra_body={"max_steps": 3},
        stream_options={"include_usage": True},
    )
    chunks = list(stream)  # the SDK stops at data: [DONE]
    step_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert step_chunks and step_chunks[0].choices[0].delta.role == "assistant"
    assert [c.model_extra["rationalyst"]["index"] for c in step_chunks] == list(
        range(len(step_chunks))
    )
    for c in step_chunks:
        assert c.choices[0].delta.content.strip() == c.model_extra["rationalyst"]["text"]
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason in ("stop", "length")
    assert chunks.index(finals[0]) > chunks.index(step_chunks[-1])
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_max_tokens_is_the_token_budget(oai):
    r = oai.chat.completions.create(
        model="greedy", messages=ask(), max_tokens=5, extra_body={"max_steps": 5}
    )
    assert r.choices[0].finish_reason == "length"
    assert r.model_extra["rationalyst"]["finish_reason"] == "budget"
    assert r.usage.completion_tokens <= 5


def test_extra_body_choices_and_task(oai):
    arc = read_items("arc_challenge", 1)[0]
    r = oai.chat.completions.create(
        model="random",
        messages=ask(arc["question"]),
        seed=2,
        extra_body={
            "choices": arc["choices"],
            "task": "multiple_choice",
            "num_candidates": 2,
            "max_steps": 1,
        },
    )
    steps = r.model_extra["rationalyst"]["steps"]
    assert len(steps) == 1 and len(steps[0]["candidates"]) == 2
    assert steps[0]["rationale"] is None


async def test_async_client_non_stream_and_stream(aoai):
    r = await aoai.chat.completions.create(
        model="greedy", messages=ask(), extra_body={"max_steps": 1}
    )
    assert r.choices[0].message.content == r.model_extra["rationalyst"]["steps"][0]["text"]
    stream = await aoai.chat.completions.create(
        model="greedy", messages=ask(), stream=True, extra_body={"max_steps": 2}
    )
    contents = [
        c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content
    ]
    assert 1 <= len(contents) <= 2


def test_passthrough_streams_tokens(oai):
    stream = oai.chat.completions.create(
        model=AGENT,
        stream=True,
        max_tokens=16,
        seed=1,
        messages=[{"role": "system", "content": "Be brief."}, *ask("Name three colours.")],
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) >= 3  # token by token, not one blob
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert "rationalyst" not in (chunks[1].model_extra or {})


def test_passthrough_non_stream(oai):
    r = oai.chat.completions.create(model=AGENT, messages=ask("Say hello."), max_tokens=8)
    assert r.choices[0].message.content
    assert 0 < r.usage.completion_tokens <= 8 and r.usage.prompt_tokens > 0


def test_unknown_model_is_not_found_with_the_list(oai):
    with pytest.raises(openai.NotFoundError) as e:
        oai.chat.completions.create(model="gpt-9", messages=ask())
    assert e.value.status_code == 404
    msg = e.value.body["message"]
    assert "gpt-9" in msg and "rationalyst" in msg and AGENT in msg
    assert e.value.body["code"] == "model_not_found" and e.value.body["param"] == "model"


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"n": 2}, "n must be 1"),
        ({"temperature": 5}, "temperature"),
        ({"extra_body": {"num_candidates": 40}}, "num_candidates"),
        ({"extra_body": {"task": "multiple_choice"}}, "needs a 'choices' list"),
        ({"messages": [{"role": "system", "content": "hi"}]}, "user message"),
    ],
)
def test_bad_parameters_are_bad_request(oai, kwargs, needle):
    args = {"model": "rationalyst", "messages": ask(), **kwargs}
    with pytest.raises(openai.BadRequestError) as e:
        oai.chat.completions.create(**args)
    assert needle in e.value.body["message"]
    assert e.value.body["type"] == "invalid_request_error"


async def test_async_bad_request(aoai):
    with pytest.raises(openai.BadRequestError):
        await aoai.chat.completions.create(model="greedy", messages=ask(), top_p=0)
