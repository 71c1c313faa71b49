"""Metrics, auth, request ids and JSON access logs, through a real uvicorn on
127.0.0.1 serving a scripted fake engine (the engine is not under test here)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading

import httpx
import openai
import pytest
from httpx_sse import EventSource

from harness import ThreadServer, answering_engine, metric
from rationalyst.server.logs import json_handler
from rationalyst.supervisor.engine import EngineError
from rationalyst.supervisor.scripted_engine import ScriptedEngine


def test_metrics_move_with_requests():
    with ThreadServer(answering_engine()) as srv:
        assert metric(srv.url, "rationalyst_solve_seconds_count") == 0
        for _ in range(2):
            r = httpx.post(srv.url + "/solve", json={"question": "q", "num_candidates": 3})
            assert r.status_code == 200 and r.json()["finish_reason"] == "answer"
        bad = httpx.post(srv.url + "/solve", json={"question": "q", "num_candidates": 99})
        assert bad.status_code == 422
        m = lambda name, **lb: metric(srv.url, name, **lb)  # noqa: E731
        assert (
            m("rationalyst_requests_total", endpoint="/solve", strategy="rationalyst", status="200")
            == 2
        )
        assert m("rationalyst_requests_total", endpoint="/solve", status="422") == 1
        assert m("rationalyst_solve_seconds_count", strategy="rationalyst") == 2
        assert m("rationalyst_step_phase_seconds_count", phase="score") == 4
        assert m("rationalyst_step_phase_seconds_count", phase="total") == 4
        assert m("rationalyst_candidates_per_step_sum") == 12
        assert m("rationalyst_score_margin_count") >= 2  # the first steps differ in score
        assert m("rationalyst_tokens_total", kind="agent_completion") > 0
        assert m("rationalyst_tokens_total", kind="scored") > 0
        assert m("rationalyst_solves_in_flight") == 0


def test_engine_errors_are_counted_and_503():
    def broken(prompt, n, seed):
        raise EngineError("agent down")

    with ThreadServer(ScriptedEngine(steps=broken)) as srv:
        r = httpx.post(srv.url + "/solve", json={"question": "q"})
        assert r.status_code == 503 and "agent down" in r.json()["error"]["message"]
        assert metric(srv.url, "rationalyst_engine_errors_total") == 1
        assert metric(srv.url, "rationalyst_solves_in_flight") == 0


def test_client_gone_mid_stream_is_counted_as_aborted():
    gate = asyncio.Event()  # never set: the second step blocks until cancelled

    async def on_start(kind):
        if kind == "sample" and engine.calls["sample"] > 1:
            await gate.wait()

    engine = ScriptedEngine(on_start=on_start)
    with ThreadServer(engine) as srv:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            with c.stream("POST", "/solve", json={"question": "q", "stream": True}) as r:
                for event in EventSource(r).iter_sse():
                    if event.event == "step":
                        break  # leave after the first step
        for _ in range(300):  # bounded poll for the server to notice
            if metric(srv.url, "rationalyst_aborted_total") == 1:
                break
            threading.Event().wait(0.02)
        assert metric(srv.url, "rationalyst_aborted_total") == 1
        assert metric(srv.url, "rationalyst_solves_in_flight") == 0
        assert (
            "cancelled",
            next(
                rid for k, rid in engine.events if k == "sample_start" and rid.endswith("-1-sample")
            ),
        ) in engine.events


def test_request_id_echoed_or_generated_and_logged_as_json():
    stream = io.StringIO()
    handler = json_handler(stream)
    log = logging.getLogger("rationalyst.access")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        with ThreadServer(answering_engine()) as srv:
            given = httpx.get(srv.url + "/health", headers={"X-Request-ID": "abc-123"})
            made = httpx.post(srv.url + "/solve", json={"question": "q"})
    finally:
        log.removeHandler(handler)
    assert given.headers["x-request-id"] == "abc-123"
    rid = made.headers["x-request-id"]
    assert len(rid) == 32 and rid != "abc-123"
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    by_id = {x["request_id"]: x for x in lines}
    assert by_id["abc-123"]["path"] == "/health" and by_id["abc-123"]["status"] == 200
    assert by_id[rid]["path"] == "/solve" and by_id[rid]["strategy"] == "rationalyst"
    assert by_id[rid]["duration_ms"] >= 0 and by_id[rid]["level"] == "INFO"


@pytest.fixture(scope="module")
def locked():
    with ThreadServer(answering_engine(), api_keys=["k1", "k2"]) as srv:
        yield srv


@pytest.mark.parametrize(
    "headers, message",
    [
        ({}, "missing API key"),
        ({"Authorization": "Bearer nope"}, "invalid API key"),
        ({"Authorization": "Basic k1"}, "invalid API key"),
    ],
)
@pytest.mark.parametrize("path", ["/solve", "/v1/chat/completions"])
def test_auth_rejects_missing_or_wrong_keys(locked, headers, message, path):
    r = httpx.post(locked.url + path, json={"question": "q"}, headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    err = r.json()["error"]
    assert message in err["message"] and err["type"] == "authentication_error"
    assert set(err) == {"message", "type", "param", "code"}


def test_auth_accepts_each_key_and_leaves_probes_open(locked):
    for key in ("k1", "k2"):
        r = httpx.post(
            locked.url + "/solve",
            json={"question": "q"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 200
    assert httpx.get(locked.url + "/health").status_code == 200
    assert httpx.get(locked.url + "/metrics").status_code == 200
    assert httpx.get(locked.url + "/v1/models").status_code == 401


def test_auth_with_the_openai_sdk(locked):
    bad = openai.OpenAI(base_url=locked.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    good = openai.OpenAI(base_url=locked.url + "/v1", api_key="k2", max_retries=0)
    assert "rationalyst" in {m.id for m in good.models.list()}
