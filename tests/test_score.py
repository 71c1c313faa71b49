"""POST /score on a scripted server: a candidate's score is the one the step loop gave
it in a seeded solve; a whole trajectory gets one score per step; the search-and-learn
PRM adapter returns that shape."""

from __future__ import annotations

import httpx
import pytest

from harness import ThreadServer, answering_engine
from rationalyst.clients.client import RationalystClient
from rationalyst.clients.prm_adapter import RationalystPRM

Q = "What is 3 + 4?"


@pytest.fixture(scope="module")
def srv():
    with ThreadServer(answering_engine()) as s:
        yield s


def test_score_matches_the_loop(srv):
    solve = httpx.post(srv.url + "/solve", json={"question": Q, "seed": 11,
                                                 "num_candidates": 3}, timeout=60).json()
    assert len(solve["steps"]) == 2
    for k, step in enumerate(solve["steps"]):
        prefix = [s["text"] for s in solve["steps"][:k]]
        cands = [c["text"] for c in step["candidates"]]
        r = httpx.post(srv.url + "/score", json={"question": Q, "steps": prefix,
                                                 "candidates": cands}, timeout=60)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["rationale"] == step["rationale"]
        assert [c["score"] for c in body["candidates"]] == \
            [c["score"] for c in step["candidates"]]


def test_trajectory_gets_a_score_per_step(srv):
    solve = httpx.post(srv.url + "/solve", json={"question": Q, "seed": 11,
                                                 "num_candidates": 3}, timeout=60).json()
    steps = [s["text"] for s in solve["steps"]]
    with RationalystClient(srv.url) as c:
        out = c.score(Q, steps)
    assert [s["index"] for s in out["steps"]] == [0, 1]
    chosen = [next(c["score"] for c in s["candidates"] if c["chosen"])
              for s in solve["steps"]]
    assert [s["score"] for s in out["steps"]] == chosen
    assert out["usage"]["scored_tokens"] > 0


def test_bad_score_requests_are_422(srv):
    for body in ({"question": Q}, {"question": Q, "candidates": []},
                 {"question": Q, "steps": ["a"], "strategy": "judge"},
                 {"question": Q, "steps": ["a"], "bogus": 1}):
        r = httpx.post(srv.url + "/score", json=body)
        assert r.status_code == 422, (body, r.text)
        assert "error" in r.json()


def test_search_and_learn_prm_shape(srv):
    prm = RationalystPRM(srv.url)
    out = prm.score([Q, Q], [["first step 0\nThe answer is: 7"],
                             ["first step 0\n\nThe answer is: 8", "first step 1"]])
    assert len(out) == 2 and [len(x) for x in out] == [1, 2]
    assert [len(s) for s in out[1]] == [2, 1]
    assert all(isinstance(v, float) for x in out for s in x for v in s)
