"""The judge against a real OpenAI-compatible verifier: a `vllm serve` of the default
model under the name gpt-4-turbo, as RATIONALYST_JUDGE_URL (issue 27). The same server
is also the agent (RATIONALYST_AGENT_URL), so the test runs one vLLM, not two.

A seeded two-step judge solve: every candidate of every step gets a reward, each reply
one of the choices vLLM's structured outputs allowed; /score's judge scorer gives the
loop's rewards; the server reports its prefix-cache hits (usage cached_tokens)."""

from __future__ import annotations

import httpx
import pytest

from harness import serve, vllm_server
from rationalyst.supervisor.strategies.judge import REWARDS

pytestmark = pytest.mark.vllm

Q = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many "
    "clips in May. How many clips did Natalia sell altogether in April and May?"
)


@pytest.fixture(scope="module")
def vllm_serve(default_model, tmp_path_factory):
    srv = vllm_server(
        default_model,
        tmp_path_factory.mktemp("judge") / "vllm.log",
        "--enable-prompt-tokens-details",
        served="gpt-4-turbo",
    )
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def judged(vllm_serve, default_model, tmp_path_factory):
    """Our server with the agent and the judge both on the module's `vllm serve`."""
    srv = serve(
        tmp_path_factory.mktemp("judged") / "server.log",
        "--step-max-tokens",
        "24",
        start_timeout_s=120,
        env={
            "RATIONALYST_AGENT_URL": vllm_serve.url,
            "RATIONALYST_RATIONALE_URL": vllm_serve.url,
            "RATIONALYST_JUDGE_URL": vllm_serve.url + "/v1",
            "RATIONALYST_JUDGE_MODEL": "gpt-4-turbo",
        },
    )
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def solve(judged) -> dict:
    r = httpx.post(
        judged.url + "/solve",
        json={"question": Q, "strategy": "judge", "seed": 5, "num_candidates": 3, "max_steps": 2},
        timeout=300,
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_every_candidate_of_a_judge_solve_gets_a_reward(solve):
    assert len(solve["steps"]) == 2, solve["finish_reason"]
    cands = [c for s in solve["steps"] for c in s["candidates"]]
    assert len(cands) == 6
    assert all(c["score"] in (0, 1, 2, 3) for c in cands), [c["reply"] for c in cands]
    # The replies are exactly the allowed choices: structured outputs were used.
    assert all(c["reply"] in REWARDS for c in cands), [c["reply"] for c in cands]
    u = solve["usage"]
    assert u["verifier_unparsed"] == 0 and u["verifier_completion_tokens"] > 0


def test_remote_prefix_cache_hits_are_in_usage(solve):
    # The second step's prompts extend the first's, and the judge prompts share their
    # system message: the server read some of them from its prefix cache.
    u = solve["usage"]
    assert 0 < u["cached_tokens"] < u["agent_prompt_tokens"] + u["verifier_prompt_tokens"]


def test_score_gives_the_loops_rewards(judged, solve):
    for k, step in enumerate(solve["steps"]):
        prefix = [s["text"] for s in solve["steps"][:k]]
        r = httpx.post(
            judged.url + "/score",
            json={
                "question": Q,
                "steps": prefix,
                "strategy": "judge",
                "candidates": [c["text"] for c in step["candidates"]],
            },
            timeout=300,
        )
        assert r.status_code == 200, r.text
        assert [c["score"] for c in r.json()["candidates"]] == [
            c["score"] for c in step["candidates"]
        ]


def test_a_vllm_serve_agent_judging_itself_replies_structured(vllm_serve, solve, tmp_path_factory):
    # No judge URL: the remote agent is its own verifier, through the completions
    # route's structured outputs (RemoteEngine.generate_choice).
    with serve(
        tmp_path_factory.mktemp("self") / "server.log",
        start_timeout_s=120,
        env={"RATIONALYST_AGENT_URL": vllm_serve.url, "RATIONALYST_RATIONALE_URL": vllm_serve.url},
    ) as url:
        step = solve["steps"][0]
        r = httpx.post(
            url + "/score",
            json={
                "question": Q,
                "strategy": "judge",
                "candidates": [c["text"] for c in step["candidates"]],
            },
            timeout=300,
        )
    assert r.status_code == 200, r.text
    assert all(c["reply"] in REWARDS for c in r.json()["candidates"]), r.text
