"""Usage arithmetic on a scripted server (the scripted engine reports a known number of
prefix-cache hits per call; the loop's accounting is under test, not a model): a
solve's cached and reasoning tokens in /solve's usage, in /v1's OpenAI fields and in
the Prometheus metrics, each the sum over the engine calls that the solve made."""

from __future__ import annotations

import httpx
import openai
import pytest

from harness import ThreadServer, answering_engine, metric

ASK = [{"role": "user", "content": "What is 3 + 4?"}]


def half(prompt: str) -> int:
    return len(prompt.split()) // 2  # half the (whitespace) tokens came from the cache


@pytest.fixture(scope="module")
def srv():
    with ThreadServer(answering_engine(cached=half)) as s:
        yield s


def expected_cached(srv, request_ids: set[str]) -> int:
    return sum(
        half(inputs["prompt"])
        for kind, rid, inputs in srv.engine.requests
        if kind in ("sample", "generate") and rid.rsplit("-", 2)[0] in request_ids
    )


def test_solve_usage_counts_cache_hits_and_reasoning(srv):
    tokens_before = {
        k: metric(srv.url, "rationalyst_tokens_total", kind=k) for k in ("cached", "reasoning")
    }
    r = httpx.post(
        srv.url + "/solve",
        json={"question": ASK[0]["content"], "seed": 3, "num_candidates": 3},
        timeout=60,
    ).json()
    u = r["usage"]
    assert u["cached_tokens"] == expected_cached(srv, {r["id"]}) > 0
    assert u["rationale_prompt_tokens"] > 0
    chosen = len(" ".join(s["text"] for s in r["steps"]).split())
    completion = u["agent_completion_tokens"] + u["rationale_tokens"]
    assert u["reasoning_tokens"] == completion - chosen > 0
    for kind in ("cached", "reasoning"):
        after = metric(srv.url, "rationalyst_tokens_total", kind=kind)
        assert after == tokens_before[kind] + u[f"{kind}_tokens"]


def test_v1_usage_has_prompt_tokens_details(srv):
    with openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0, timeout=60) as c:
        r = c.chat.completions.create(model="rationalyst", messages=ASK, seed=3)
    trace = r.model_extra["rationalyst"]
    assert (
        r.usage.prompt_tokens_details.cached_tokens
        == trace["usage"]["cached_tokens"]
        == expected_cached(srv, {trace["id"]})
        > 0
    )
    assert r.usage.prompt_tokens_details.cached_tokens < r.usage.prompt_tokens
    ext = r.usage.model_extra["rationalyst"]
    assert ext["cached_tokens"] == trace["usage"]["cached_tokens"]


@pytest.mark.vllm
def test_real_engine_reports_cache_hits_and_reasoning(server, default_model):
    """A seeded solve, sent twice, on the real in-process vLLM engine (the default model):
    the second reads its prompts from vLLM's prefix cache (RequestOutput.
    num_cached_tokens), which reaches usage and the metrics; reasoning_tokens is what
    was generated beyond the steps."""
    from transformers import AutoTokenizer

    body = {
        "question": "What is 12 + 30? Think step by step.",
        "seed": 7,
        "num_candidates": 2,
        "max_steps": 1,
    }
    first = httpx.post(server.url + "/solve", json=body, timeout=600)
    assert first.status_code == 200, first.text
    before = metric(server.url, "rationalyst_tokens_total", kind="cached")
    out = httpx.post(server.url + "/solve", json=body, timeout=600).json()
    u = out["usage"]
    assert [s["text"] for s in out["steps"]] == [s["text"] for s in first.json()["steps"]]
    assert 0 < u["cached_tokens"] <= u["agent_prompt_tokens"] + u["rationale_prompt_tokens"]
    assert (
        metric(server.url, "rationalyst_tokens_total", kind="cached") == before + u["cached_tokens"]
    )
    tok = AutoTokenizer.from_pretrained(default_model)
    chosen = len(
        tok("\n".join(s["text"] for s in out["steps"]), add_special_tokens=False)["input_ids"]
    )
    completion = u["agent_completion_tokens"] + u["rationale_tokens"]
    assert u["reasoning_tokens"] == completion - chosen > 0
