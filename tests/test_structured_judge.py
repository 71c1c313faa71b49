"""StructuredHTTPJudge: json_schema first, free text where refused, and it remembers;
free_text mode asks for the reference's room (no engine, no network)."""

from __future__ import annotations

import json

from rationalyst.supervisor.http_api import APIError
from rationalyst.supervisor.strategies.judge import (
    FREE_TEXT_MAX_TOKENS,
    REWARDS,
    StructuredHTTPJudge,
    chat_rating,
)

MSGS = [{"role": "user", "content": "Question: 1+1\n\nTrajectory:\nStep 1: 2"}]


def completion(text: str) -> dict:
    return {
        "choices": [{"message": {"content": text}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3},
    }


def judge_with(reply_for):
    j = StructuredHTTPJudge("http://127.0.0.1:9/v1", "gpt-4-turbo")
    bodies = []

    async def post_json(path, body, parse, what):
        bodies.append(body)
        return parse(reply_for(body))

    j.api.post_json = post_json
    return j, bodies


async def test_vllm_choice_is_tried_first_and_remembered():
    # A `vllm serve`: structured_outputs' choice constrains the reply.
    j, bodies = judge_with(
        lambda b: completion("Reward: 2") if "structured_outputs" in b else completion("no")
    )
    assert (await j.rate(MSGS, "r1")).reward == 2
    assert (await j.rate(MSGS, "r2")).reward == 2
    assert j.mode == "choice" and len(bodies) == 2
    assert all(b["structured_outputs"] == {"choice": REWARDS} for b in bodies)


async def test_json_schema_after_an_ignored_choice_is_used_and_remembered():
    # A server that ignores vLLM's field (free text comes back) but takes json_schema.
    j, bodies = judge_with(
        lambda b: (
            completion(json.dumps({"reward": 2})) if "response_format" in b else completion("no")
        )
    )
    r = await j.rate(MSGS, "r1")
    assert r.reward == 2 and r.prompt_tokens == 10  # the ignored try is counted too
    assert (await j.rate(MSGS, "r2")).reward == 2
    assert j.mode == "json_schema" and len(bodies) == 3
    assert "structured_outputs" in bodies[0] and "response_format" in bodies[2]


async def test_refused_structure_falls_back_to_text_and_remembers():
    def reply(b):
        if "response_format" in b or "structured_outputs" in b:
            raise APIError("the judge verifier answered HTTP 400: unsupported", 400)
        return completion("Reward: 3")

    j, bodies = judge_with(reply)
    assert (await j.rate(MSGS, "r1")).reward == 3
    assert j.mode == "text"
    n = len(bodies)
    assert (await j.rate(MSGS, "r2")).reward == 3
    assert len(bodies) == n + 1 and "response_format" not in bodies[-1]
    assert "structured_outputs" not in bodies[-1]


def test_cached_tokens_are_read_from_the_reply():
    data = completion("Reward: 1")
    data["usage"]["prompt_tokens_details"] = {"cached_tokens": 4}
    assert chat_rating(data).cached_tokens == 4


async def test_free_text_mode_has_the_reference_room():
    j, bodies = judge_with(lambda b: completion("Let me think... Reward: 1"))
    assert (await j.rate(MSGS, "r1", free_text=True)).reward == 1
    assert bodies[-1]["max_tokens"] == FREE_TEXT_MAX_TOKENS
    assert "response_format" not in bodies[-1]
