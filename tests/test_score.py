"""POST /score on a scripted server (scripted engine and PRM: the loop logic is under
test, not a model): under every scorer, a candidate's score is the one the step loop
gave it in a seeded solve; a whole trajectory gets one score per step; bad requests
are the 422s /solve gives; the search-and-learn PRM adapter returns its shape."""

from __future__ import annotations

import zlib

import httpx
import pytest

from harness import ThreadServer, answering_engine, metric
from rationalyst.clients.client import RationalystClient
from rationalyst.clients.prm_adapter import RationalystPRM
from rationalyst.supervisor.prm import PRMScores

Q = "What is 3 + 4?"


def crc(text: str, mod: int) -> int:
    return zlib.crc32(text.encode()) % mod


def generate(prompt: str) -> str:
    # The agent as its own judge replies with a reward that depends on the trajectory;
    # anything else it generates is a rationale.
    return f"Reward: {crc(prompt, 4)}" if "strict verifier" in prompt else "rationale text"


class HashPRM:
    """A process reward model whose step scores are a function of the step's prefix."""

    async def score(self, question, trajectories, request_id, session=None):
        steps = [
            [crc("|".join([question, *t[: i + 1]]), 100) / 100 for i in range(len(t))]
            for t in trajectories
        ]
        return PRMScores(steps, 7 * len(trajectories))


@pytest.fixture(scope="module")
def srv():
    with ThreadServer(answering_engine(generate=generate), prm=HashPRM()) as s:
        yield s


def seeded_solve(srv, strategy: str) -> dict:
    r = httpx.post(
        srv.url + "/solve",
        json={"question": Q, "seed": 11, "num_candidates": 3, "strategy": strategy},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("strategy", ["rationalyst", "explicit", "judge", "prm"])
def test_score_matches_the_loop(srv, strategy):
    solve = seeded_solve(srv, strategy)
    assert len(solve["steps"]) == 2
    for k, step in enumerate(solve["steps"]):
        prefix = [s["text"] for s in solve["steps"][:k]]
        cands = [c["text"] for c in step["candidates"]]
        r = httpx.post(
            srv.url + "/score",
            json={"question": Q, "steps": prefix, "candidates": cands, "strategy": strategy},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["strategy"] == strategy and body["rationale"] == step["rationale"]
        got = [c["score"] for c in body["candidates"]]
        assert got == [c["score"] for c in step["candidates"]]
        assert any(s is not None for s in got)  # a real score, not all nulls
        if strategy == "judge":
            assert [c["reply"] for c in body["candidates"]] == [
                c["reply"] for c in step["candidates"]
            ]
        if strategy == "prm":
            assert [c["step_scores"] for c in body["candidates"]] == [
                c["step_scores"] for c in step["candidates"]
            ]


@pytest.mark.parametrize("strategy", ["rationalyst", "judge", "prm"])
def test_trajectory_gets_a_score_per_step(srv, strategy):
    solve = seeded_solve(srv, strategy)
    steps = [s["text"] for s in solve["steps"]]
    with RationalystClient(srv.url) as c:
        out = c.score(Q, steps, strategy=strategy)
    assert [s["index"] for s in out["steps"]] == [0, 1]
    chosen = [next(c["score"] for c in s["candidates"] if c["chosen"]) for s in solve["steps"]]
    assert [s["score"] for s in out["steps"]] == chosen
    u = out["usage"]
    if strategy == "rationalyst":
        assert u["scored_tokens"] > 0 and u["rationale_tokens"] > 0
        assert all(s["rationale"] == "rationale text" for s in out["steps"])
    else:
        assert u["verifier_prompt_tokens"] > 0
        assert all(s["rationale"] is None for s in out["steps"])


def test_score_tokens_reach_the_metrics(srv):
    def scored() -> float:
        return metric(srv.url, "rationalyst_tokens_total", kind="scored")

    before = scored()
    out = httpx.post(
        srv.url + "/score", json={"question": Q, "candidates": ["a b c"]}, timeout=60
    ).json()
    assert scored() == before + out["usage"]["scored_tokens"] > before


def test_bad_score_requests_are_422(srv):
    for body, param in (
        ({"question": Q}, "steps"),
        ({"question": Q, "candidates": []}, "candidates"),
        ({"question": " ", "steps": ["a"]}, "question"),
        ({"question": Q, "steps": ["a"], "task": "multiple_choice"}, "task"),
        ({"question": Q, "steps": ["a"], "choices": ["x", " "]}, "choices"),
        ({"question": Q, "steps": ["a"], "strategy": "greedy"}, "strategy"),
        ({"question": Q, "steps": ["a"], "bogus": 1}, "bogus"),
    ):
        r = httpx.post(srv.url + "/score", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["param"] == param, (body, r.text)


def test_prm_scorer_without_a_prm_is_the_solve_error():
    with ThreadServer(answering_engine()) as s:
        r = httpx.post(s.url + "/score", json={"question": Q, "steps": ["a"], "strategy": "prm"})
        solve = httpx.post(s.url + "/solve", json={"question": Q, "strategy": "prm"})
    assert r.status_code == solve.status_code == 400
    assert r.json()["error"]["message"] == solve.json()["error"]["message"]


def test_search_and_learn_prm_shape(srv):
    prm = RationalystPRM(srv.url)
    out = prm.score(
        [Q, Q],
        [["first step 0\nThe answer is: 7"], ["first step 0\n\nThe answer is: 8", "first step 1"]],
    )
    assert len(out) == 2 and [len(x) for x in out] == [1, 2]
    assert [len(s) for s in out[1]] == [2, 1]
    assert all(isinstance(v, float) for x in out for s in x for v in s)


@pytest.mark.vllm
def test_score_matches_the_loop_on_the_default_model(server):
    """The real engine (in-process vLLM, the default model): a seeded two-step
    rationalyst solve's candidates scored again by /score get the loop's rationales and
    scores (prefix-cached scoring both times)."""
    r = httpx.post(
        server.url + "/solve",
        json={"question": Q, "seed": 11, "max_steps": 2, "num_candidates": 3},
        timeout=300,
    )
    assert r.status_code == 200, r.text
    for k, step in enumerate(r.json()["steps"]):
        prefix = [s["text"] for s in r.json()["steps"][:k]]
        body = httpx.post(
            server.url + "/score",
            json={
                "question": Q,
                "steps": prefix,
                "candidates": [c["text"] for c in step["candidates"]],
            },
            timeout=300,
        ).json()
        assert body["rationale"] == step["rationale"]
        assert [c["score"] for c in body["candidates"]] == pytest.approx(
            [c["score"] for c in step["candidates"]], abs=1e-5
        )
