"""Load: 200 concurrent streams against a scripted server process end with `done`
or a clear 429 (figures printed).

Scripted engine, 127.0.0.1 only, bounded polling: see tests/harness.py."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import statistics
import time

import httpx
import pytest

from harness import asse_events, metric, scripted_server

N_LOAD = 200
LATENCY = {"sample_s": 0.003, "generate_s": 0.002, "score_s": 0.001}
# rationalyst: sampling and the rationale run side by side, then scoring.
STEP_S = max(LATENCY["sample_s"], LATENCY["generate_s"]) + LATENCY["score_s"]
LOAD_STEPS = 6
LOAD_CLIENTS = 20


@pytest.mark.parametrize("name, running, queued", [("all fit", 50, 150), ("overflow", 8, 16)])
async def test_load_200_concurrent_streams(tmp_path, name, running, queued):
    settings = {"max_concurrent_solves": running, "max_queued_solves": queued}
    body = {"question": "q", "stream": True, "max_steps": LOAD_STEPS, "num_candidates": 3}

    async def one(client: httpx.AsyncClient) -> dict:
        async with client.stream("POST", "/solve", json=body) as r:
            if r.status_code == 429:
                await r.aread()
                return {
                    "status": 429,
                    "retry_after": r.headers.get("retry-after"),
                    "error": r.json()["error"],
                }
            assert r.status_code == 200, await r.aread()
            events = [ev async for ev in asse_events(r)]
        return {"status": 200, "events": events}

    with scripted_server(tmp_path, settings, **LATENCY) as srv:
        # httpcore's pool does O(connections) work per request event, so one pool of
        # 200 connections makes the client the bottleneck: 20 clients of 10 each
        # (sharing one SSL context, which each client would otherwise load).
        ssl_context = ssl.create_default_context()
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=srv.url,
                        verify=ssl_context,
                        timeout=httpx.Timeout(60),
                        limits=httpx.Limits(max_connections=N_LOAD // LOAD_CLIENTS + 1),
                    )
                )
                for _ in range(LOAD_CLIENTS)
            ]
            t0 = time.perf_counter()
            # The failure guard: a lost or hung stream fails here, not by blocking.
            results = await asyncio.wait_for(
                asyncio.gather(*(one(clients[i % LOAD_CLIENTS]) for i in range(N_LOAD))), timeout=90
            )
            wall = time.perf_counter() - t0
        done = [r for r in results if r["status"] == 200]
        busy = [r for r in results if r["status"] == 429]
        assert len(done) + len(busy) == N_LOAD  # none lost
        gaps, inside = [], []  # client-observed, and the server's own step time
        for r in done:
            kinds = [e for e, _, _ in r["events"]]
            assert kinds == ["step"] * LOAD_STEPS + ["done"], kinds
            assert r["events"][-1][1]["finish_reason"] == "max_steps"
            times = [t for e, _, t in r["events"] if e == "step"]
            gaps += [(b - a - STEP_S) * 1e3 for a, b in zip(times, times[1:])]
            inside += [d["elapsed_ms"] - STEP_S * 1e3 for e, d, _ in r["events"] if e == "step"]
        for r in busy:
            assert r["retry_after"] and int(r["retry_after"]) > 0
            assert r["error"]["type"] == "rate_limit_error" and r["error"]["code"] == "server_busy"
        if name == "all fit":
            assert not busy
        else:
            assert busy and len(done) >= running + queued
        # The server counted the same, and nothing is left running or queued.
        assert metric(
            srv.url, "rationalyst_requests_total", endpoint="/solve", status="200"
        ) == len(done)
        assert metric(
            srv.url, "rationalyst_requests_total", endpoint="/solve", status="429"
        ) == len(busy)
        assert metric(srv.url, "rationalyst_solves_in_flight") == 0
        assert metric(srv.url, "rationalyst_queue_depth") == 0

    q = statistics.quantiles(gaps, n=100, method="inclusive")
    q_in = statistics.quantiles(inside, n=100, method="inclusive")
    print(
        f"\nload [{name}]: {N_LOAD} concurrent streams, max_concurrent_solves={running}, "
        f"max_queued_solves={queued}, {LOAD_STEPS} steps x 3 candidates, engine "
        f"sample/generate/score = {LATENCY['sample_s'] * 1e3:g}/"
        f"{LATENCY['generate_s'] * 1e3:g}/{LATENCY['score_s'] * 1e3:g} ms "
        f"({STEP_S * 1e3:g} ms per step): {len(done)} done, {len(busy)} x 429 in "
        f"{wall:.2f} s = {len(done) / wall:.0f} solves/s, {N_LOAD / wall:.0f} requests/s; "
        f"step overhead p50 {q[49]:.2f} ms, p99 {q[98]:.2f} ms (inside the solve loop: "
        f"p50 {q_in[49]:.2f} ms, p99 {q_in[98]:.2f} ms)"
    )
