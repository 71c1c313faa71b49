"""Issue 27 on a scripted server (no vLLM): reasoning_format with the `openai` SDK and
LiteLLM, stream and not; usage's reasoning_tokens and extension block; temperature 0
on a supervised model."""

from __future__ import annotations

import openai
import pytest

from harness import ThreadServer, answering_engine

ASK = [{"role": "user", "content": "What is 3 + 4?"}]


@pytest.fixture(scope="module")
def srv():
    with ThreadServer(answering_engine()) as s:
        yield s


@pytest.fixture(scope="module")
def oai(srv):
    with openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0, timeout=60) as c:
        yield c


def test_content_format_is_the_default(oai):
    r = oai.chat.completions.create(
        model="rationalyst", messages=ASK, seed=1, extra_body={"num_candidates": 1}
    )
    m = r.choices[0].message
    assert m.content == "first step 0\nThe answer is: 7"
    assert m.model_extra.get("reasoning") is None


def test_reasoning_format_non_stream(oai):
    r = oai.chat.completions.create(
        model="rationalyst",
        messages=ASK,
        seed=1,
        extra_body={"num_candidates": 1, "reasoning_format": "reasoning"},
    )
    m = r.choices[0].message
    assert m.content == "The answer is: 7"
    assert m.model_extra["reasoning"] == m.model_extra["reasoning_content"] == "first step 0"
    assert r.choices[0].finish_reason == "stop"


def test_reasoning_format_stream(oai):
    stream = oai.chat.completions.create(
        model="rationalyst",
        messages=ASK,
        seed=1,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"num_candidates": 1, "reasoning_format": "reasoning"},
    )
    reasoning = reasoning_content = content = ""
    usage = None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            d = ch.delta
            reasoning += (d.model_extra or {}).get("reasoning") or ""
            reasoning_content += (d.model_extra or {}).get("reasoning_content") or ""
            content += d.content or ""
    assert reasoning == reasoning_content == "first step 0"
    assert content == "The answer is: 7"
    assert (
        usage.completion_tokens_details.reasoning_tokens
        == usage.completion_tokens - usage.model_extra["rationalyst"]["content_tokens"]
    )


def test_bad_reasoning_format_is_400(oai):
    with pytest.raises(openai.BadRequestError, match="reasoning_format"):
        oai.chat.completions.create(
            model="rationalyst", messages=ASK, extra_body={"reasoning_format": "hidden"}
        )


def test_usage_counts_hidden_work_as_reasoning(oai):
    r = oai.chat.completions.create(
        model="rationalyst", messages=ASK, seed=1, extra_body={"num_candidates": 3}
    )
    u, trace = r.usage, r.model_extra["rationalyst"]["usage"]
    generated = trace["agent_completion_tokens"] + trace["rationale_tokens"]
    assert u.completion_tokens == generated
    # the scripted engine counts whitespace tokens: content is 1 + 5 tokens
    content_tokens = len(r.choices[0].message.content.split())
    assert u.completion_tokens_details.reasoning_tokens == generated - content_tokens > 0
    ext = u.model_extra["rationalyst"]
    assert ext["scoring_prefill_tokens"] == trace["scored_tokens"]
    assert ext["verifier_completion_tokens"] == trace["verifier_completion_tokens"]
    assert u.prompt_tokens == (
        trace["agent_prompt_tokens"]
        + trace["rationale_prompt_tokens"]
        + trace["scored_tokens"]
        + trace["verifier_prompt_tokens"]
    )
    assert trace["rationale_prompt_tokens"] > 0


def test_temperature_zero_runs_seeded_and_says_so(oai):
    def ask():
        return oai.chat.completions.with_raw_response.create(
            model="rationalyst", messages=ASK, temperature=0
        ).parse()

    a, b = ask(), ask()
    sa = a.model_extra["rationalyst_sampling"]
    assert sa["requested_temperature"] == 0 and sa["temperature"] == 0.7
    assert sa["seed_from"] == "derived" and sa["seed"] == a.model_extra["rationalyst"]["seed"]
    assert b.model_extra["rationalyst_sampling"]["seed"] == sa["seed"]
    assert a.choices[0].message.content == b.choices[0].message.content


def test_temperature_zero_refused_by_setting():
    with (
        ThreadServer(answering_engine(), zero_temperature="refuse") as s,
        openai.OpenAI(base_url=s.url + "/v1", api_key="u", max_retries=0) as c,
    ):
        with pytest.raises(openai.BadRequestError, match="greedy"):
            c.chat.completions.create(model="rationalyst", messages=ASK, temperature=0)


def test_litellm_reads_reasoning_content(srv):
    litellm = pytest.importorskip("litellm")
    kw = dict(
        model="openai/rationalyst",
        api_base=srv.url + "/v1",
        api_key="unused",
        messages=ASK,
        seed=1,
        extra_body={"num_candidates": 1, "reasoning_format": "reasoning"},
    )
    r = litellm.completion(**kw)
    assert r.choices[0].message.content == "The answer is: 7"
    assert r.choices[0].message.reasoning_content == "first step 0"
    reasoning = content = ""
    for chunk in litellm.completion(stream=True, **kw):
        d = chunk.choices[0].delta
        reasoning += getattr(d, "reasoning_content", None) or ""
        content += d.content or ""
    assert (reasoning, content) == ("first step 0", "The answer is: 7")


def test_offered_tools_are_answered_without_a_call_and_a_forced_call_is_400(oai):
    # Chat UIs (Open WebUI) send their built-in tools with every request.
    tools = [
        {
            "type": "function",
            "function": {
                "name": "web_search",
                "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
            },
        }
    ]
    r = oai.chat.completions.create(
        model="rationalyst", messages=ASK, seed=1, tools=tools, extra_body={"num_candidates": 1}
    )
    assert r.choices[0].message.content and not r.choices[0].message.tool_calls
    with pytest.raises(openai.BadRequestError, match="tool_choice"):
        oai.chat.completions.create(
            model="rationalyst", messages=ASK, tools=tools, tool_choice="required"
        )
