"""Disconnect storm: 50 clients gone mid-stream; their engine requests are
cancelled, the counters are right, no asyncio task is left behind.

Scripted engine, 127.0.0.1 only, bounded polling: see tests/harness.py."""

from __future__ import annotations

import asyncio

import httpx

from harness import LoopServer, asse_events, blocking_engine, metric, poll, step_of

N_STORM = 50


async def test_disconnect_storm_cancels_everything():
    gate = asyncio.Event()  # never set: the 2nd step of every solve blocks
    engine = blocking_engine(gate, from_step=1)
    with LoopServer(engine, max_concurrent_solves=N_STORM) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as warm:
            r = await warm.post("/solve", json={"question": "q", "stream": True, "max_steps": 1})
            assert "event: done" in r.text  # the stream machinery is up (and its tasks)
        await poll(lambda: srv.requests_running() == 0, what="warm-up request to end")
        before = srv.tasks()
        engine.events.clear()

        first_steps, drop = 0, asyncio.Event()

        async def client(c: httpx.AsyncClient):
            nonlocal first_steps
            async with c.stream("POST", "/solve", json={"question": "q", "stream": True}) as r:
                assert r.status_code == 200
                # Held, not dropped: a finalized reader would close the stream early.
                events = asse_events(r)
                assert (await anext(events))[0] == "step"
                first_steps += 1
                await drop.wait()
            # leaving the block closed the connection with the body unread
            await events.aclose()

        limits = httpx.Limits(max_connections=N_STORM, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=srv.url, timeout=30, limits=limits) as c:
            clients = [asyncio.create_task(client(c)) for _ in range(N_STORM)]
            # Every solve sent its step and now waits in the engine: sample + rationale.
            await poll(
                lambda: first_steps == N_STORM and len(engine.in_flight) == 2 * N_STORM,
                what="all streams in flight",
            )
            drop.set()
            await asyncio.wait_for(asyncio.gather(*clients), 30)

        await poll(
            lambda: (
                not engine.in_flight
                and srv.requests_running() == 0
                and metric(srv.url, "rationalyst_aborted_total") == N_STORM
            ),
            what="the server to notice every disconnect",
        )
        started = {rid for kind, rid in engine.events if kind.endswith("_start")}
        cancelled = {rid for kind, rid in engine.events if kind == "cancelled"}
        ended = {rid for kind, rid in engine.events if kind.endswith("_end")}
        # Each solve's step-1 requests, and nothing else, were cancelled.
        assert cancelled == {rid for rid in started if step_of(rid)[1] == 1}
        assert len(cancelled) == 2 * N_STORM
        assert len({step_of(rid)[0] for rid in cancelled}) == N_STORM
        assert started == cancelled | ended and not engine.in_flight
        assert metric(srv.url, "rationalyst_solves_in_flight") == 0
        assert metric(srv.url, "rationalyst_queue_depth") == 0
        # No task left behind: what runs on the server loop is what ran before.
        await poll(lambda: not (srv.tasks() - before), what="solve tasks to go away")
        assert srv.tasks() - before == set()
