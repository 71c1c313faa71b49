"""Schemathesis against /openapi.json: generated requests, valid and invalid, get
no 5xx and every response is as declared.

Scripted engine, 127.0.0.1 only, bounded polling: see tests/harness.py."""

from __future__ import annotations

import collections

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis import checks as st_checks

from harness import ThreadServer, answering_engine


@pytest.fixture(scope="module")
def api():
    with ThreadServer(answering_engine()) as srv:
        yield srv, schemathesis.openapi.from_url(srv.url + "/openapi.json")


# Not positive_data_acceptance: the server checks more than JSON Schema can say
# (non-blank question and choices, a user message with text, n == 1, timeout_s under
# this server's maximum, the model name), and answers those with a clear 4xx.
CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
    st_checks.response_headers_conformance,
    st_checks.negative_data_rejection,
]


@pytest.mark.parametrize(
    "method, path, mode",
    [
        ("POST", "/solve", "positive"),
        ("POST", "/solve", "negative"),
        ("POST", "/v1/chat/completions", "positive"),
        ("POST", "/v1/chat/completions", "negative"),
        ("GET", "/v1/models", "positive"),
        ("GET", "/health", "positive"),
        ("POST", "/score", "positive"),
        ("POST", "/score", "negative"),
    ],
)
def test_schemathesis_no_5xx_and_responses_match_the_schema(api, method, path, mode):
    """Generated requests (valid and invalid) over real HTTP. Streams (`stream: true`)
    are included: their 200 is declared as text/event-stream, whose body has no JSON
    schema to check, so for them the status and content type are what is checked."""
    srv, schema = api
    seen = collections.Counter()
    chat = path == "/v1/chat/completions" and mode == "positive"

    # Random model names and messages almost never reach a solve; for a share of
    # the chat cases, name a served model and put a real question last.
    @given(
        case=schema[path][method].as_strategy(generation_mode=GenerationMode(mode)),
        model=st.sampled_from([None, "rationalyst", "random", "greedy", "scripted"]),
        question=st.booleans(),
    )
    @settings(
        max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def run(case, model, question):
        if chat and model:
            case.body["model"] = model
            case.body.pop("n", None)  # n must be 1: a solve is one choice
            if question:
                case.body["messages"] = [
                    *case.body["messages"],
                    {"role": "user", "content": "What is 3 + 4?"},
                ]
        r = case.call_and_validate(base_url=srv.url, timeout=30, checks=CHECKS)
        seen[r.status_code] += 1

    run()
    print(f"\nschemathesis {method} {path} {mode}: statuses {dict(seen)}")
    assert not [s for s in seen if s >= 500]
    if mode == "positive" and path != "/v1/models" and path != "/health":
        assert seen[200] > 0  # the generated cases did reach the solve
