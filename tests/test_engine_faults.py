"""Fault injection: an engine failure mid-solve, /health degraded, then recovery.

Scripted engine, 127.0.0.1 only, bounded polling: see tests/harness.py."""

from __future__ import annotations

import httpx

from harness import LoopServer, asse_events, metric, step_of
from rationalyst.supervisor.engine import EngineError
from rationalyst.supervisor.scripted_engine import ScriptedEngine


def flaky_engine() -> tuple[ScriptedEngine, dict]:
    """Two steps to an answer. With `crash` armed, the 2nd step's sampling fails and
    the engine goes down (calls fail, check() fails) until the test recovers it."""
    state = {"crash": False}

    def steps(prompt, n, seed):
        if not engine.healthy:
            raise EngineError("CUDA error: device lost")
        if "zq-first" not in prompt:
            return [f"zq-first {i}" for i in range(n)]
        if state["crash"]:
            state["crash"] = False
            engine.healthy = False
            raise EngineError("CUDA error: device lost")
        return ["The answer is: 7"] * n

    engine = ScriptedEngine(steps=steps)
    return engine, state


async def test_engine_failure_mid_solve_then_recovery():
    engine, state = flaky_engine()
    with LoopServer(engine) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:

            async def health(status: int, word: str) -> dict:
                r = await c.get("/health")
                assert r.status_code == status and r.json()["status"] == word, r.text
                return r.json()

            await health(200, "ready")
            # JSON: a 503 with the engine's message.
            state["crash"] = True
            r = await c.post("/solve", json={"question": "q"})
            assert r.status_code == 503, r.text
            err = r.json()["error"]
            assert err["type"] == "engine_error" and "CUDA error: device lost" in err["message"]
            assert any(k == "sample_end" and step_of(rid)[1] == 0 for k, rid in engine.events)
            down = await health(503, "degraded")
            assert "scripted is down" in down["errors"][0]
            chat = await c.post(
                "/v1/chat/completions",
                json={"model": "rationalyst", "messages": [{"role": "user", "content": "q"}]},
            )
            assert chat.status_code == 503 and "device lost" in chat.json()["error"]["message"]
            assert metric(srv.url, "rationalyst_engine_errors_total") == 2

            engine.healthy = True  # recovered
            await health(200, "ready")
            r = await c.post("/solve", json={"question": "q"})
            assert r.status_code == 200 and r.json()["answer"] == "7"

            # Stream: the first step arrives, then an `error` event, and no `done`.
            state["crash"] = True
            async with c.stream("POST", "/solve", json={"question": "q", "stream": True}) as r:
                events = [(e, d) for e, d, _ in [x async for x in asse_events(r)]]
            assert [e for e, _ in events] == ["step", "error"], events
            assert events[0][1]["text"].startswith("zq-first")
            assert events[1][1]["error"]["type"] == "engine_error"
            assert "CUDA error: device lost" in events[1][1]["error"]["message"]
            await health(503, "degraded")
            assert metric(srv.url, "rationalyst_engine_errors_total") == 3
            assert metric(srv.url, "rationalyst_solves_in_flight") == 0

            engine.healthy = True
            await health(200, "ready")
            async with c.stream("POST", "/solve", json={"question": "q", "stream": True}) as r:
                kinds = [e async for e, _, _ in asse_events(r)]
            assert kinds == ["step", "step", "done"]
