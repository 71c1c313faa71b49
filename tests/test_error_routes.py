"""One error taxonomy (supervisor/engine.py), mapped by each router to its own wire
format: /solve answers a refused parameter with 422 (as FastAPI's validation) and
other bad requests with 400; /v1 answers every bad request with OpenAI's 400; a
backend failure is a 503 on both. On the scripted engine."""

from __future__ import annotations

import httpx
import pytest

from harness import ThreadServer, answering_engine
from rationalyst.protocol import SUPERVISED_MODELS
from rationalyst.supervisor.engine import EngineError, InvalidParams
from rationalyst.supervisor.strategies import REGISTRY

V1 = {"model": "rationalyst", "messages": [{"role": "user", "content": "q"}]}


def failing(exc: Exception):
    engine = answering_engine()

    async def fail(kind):
        raise exc

    engine.on_start = fail
    return engine


@pytest.mark.parametrize(
    "exc, solve, v1",
    [
        (InvalidParams("top_p must be in (0, 1]", param="top_p"), 422, 400),
        (EngineError("the backend is down"), 503, 503),
    ],
)
def test_an_engine_error_gets_each_routers_status(exc, solve, v1):
    with ThreadServer(failing(exc)) as srv:
        r = httpx.post(srv.url + "/solve", json={"question": "q"}, timeout=30)
        assert r.status_code == solve, r.text
        r2 = httpx.post(srv.url + "/v1/chat/completions", json=V1, timeout=30)
        assert r2.status_code == v1, r2.text
        assert r.json() == r2.json()  # one body, two statuses
        if isinstance(exc, InvalidParams):
            assert r.json()["error"]["param"] == "top_p"


def test_timeout_over_the_maximum_is_422_on_solve_and_400_on_v1():
    with ThreadServer(answering_engine(), max_timeout_s=5) as srv:
        r = httpx.post(srv.url + "/solve", json={"question": "q", "timeout_s": 10})
        assert r.status_code == 422 and r.json()["error"]["param"] == "timeout_s"
        r = httpx.post(srv.url + "/v1/chat/completions", json={**V1, "timeout_s": 10})
        assert r.status_code == 400 and r.json()["error"]["param"] == "timeout_s"
        assert r.json()["error"]["message"] == "timeout_s must be at most 5 on this server, got 10"


def test_a_missing_prm_is_400_on_both():
    with ThreadServer(answering_engine()) as srv:
        r = httpx.post(srv.url + "/solve", json={"question": "q", "strategy": "prm"})
        assert r.status_code == 400 and "process reward model" in r.text
        r = httpx.post(srv.url + "/v1/chat/completions", json={**V1, "model": "prm"})
        assert r.status_code == 400 and "process reward model" in r.text


def test_v1_models_lists_the_registry_then_the_agent():
    # No reward model configured here, so `prm` is left out (issue 28).
    by_strategy = {s: m for m, s in SUPERVISED_MODELS.items()}
    with ThreadServer(answering_engine()) as srv:
        models = [m["id"] for m in httpx.get(srv.url + "/v1/models").json()["data"]]
    assert models == [*(by_strategy[s] for s in REGISTRY if s != "prm"), "scripted"]
