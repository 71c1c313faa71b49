"""Shutdown: SIGTERM drains a stream within the grace period, or cuts it cleanly
(a scripted server process).

Scripted engine, 127.0.0.1 only, bounded polling: see tests/harness.py."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx

from harness import LocalServer, asse_events, closing_line, scripted_server

STEP_SLOW = 0.3  # seconds per step: `random` only samples


async def _stream_then_sigterm(srv: LocalServer, max_steps: int):
    """Start a stream, SIGTERM after its first step, and watch new connections be
    refused. Returns (events after the signal, stream error or None, seconds from
    the signal to the end of the stream, seconds from the signal to a refusal)."""
    body = {"question": "q", "stream": True, "strategy": "random", "max_steps": max_steps}
    rest, ended = [], {}
    async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
        async with c.stream("POST", "/solve", json=body) as r:
            events = asse_events(r)
            assert (await anext(events))[0] == "step"
            srv.proc.send_signal(signal.SIGTERM)
            t_term = time.monotonic()

            async def read_rest():
                try:
                    async for e, d, _ in events:
                        rest.append((e, d))
                except httpx.HTTPError as exc:  # a cut stream
                    return exc
                finally:
                    ended["t"] = time.monotonic() - t_term

            reader = asyncio.create_task(read_rest())

            async def refused():
                try:  # a new connection each time
                    async with httpx.AsyncClient(timeout=5) as fresh:
                        await fresh.get(srv.url + "/health")
                    return False
                # Refused: no listener (ConnectError), or a connection that sat in
                # the backlog when the listener closed and was dropped unanswered.
                except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
                    return True

            t_refused = None
            for _ in range(200):  # bounded poll: up to ~10 s
                if await refused():
                    t_refused = time.monotonic() - t_term
                    break
                await asyncio.sleep(0.05)
            error = await asyncio.wait_for(reader, 30)
    return rest, error, ended["t"], t_refused


async def test_sigterm_lets_a_stream_finish_within_the_grace_period(tmp_path):
    grace, steps = 10.0, 5
    with scripted_server(tmp_path, {"shutdown_grace_s": grace}, sample_s=STEP_SLOW) as srv:
        rest, error, t_end, t_refused = await _stream_then_sigterm(srv, steps)
        assert error is None, f"{error!r}\n{srv.log_tail()}"
        assert [e for e, _ in rest] == ["step"] * (steps - 1) + ["done"]
        done = rest[-1][1]
        assert done["finish_reason"] == "max_steps" and len(done["steps"]) == steps
        assert t_end < grace
        # New connections were refused while that stream still ran.
        assert t_refused is not None and t_refused < t_end
        t0 = time.monotonic()
        rc, summary = closing_line(srv, timeout=grace + 10)
        assert rc == 0, srv.log_tail()
        assert time.monotonic() - t0 < 3, srv.log_tail()  # drained: no need to wait out the grace
        assert summary == {"cancelled": [], "in_flight": [], "aborted": 0.0}


async def test_sigterm_cuts_a_stream_longer_than_the_grace_period(tmp_path):
    grace = 1.0
    with scripted_server(tmp_path, {"shutdown_grace_s": grace}, sample_s=STEP_SLOW) as srv:
        rest, error, t_end, t_refused = await _stream_then_sigterm(srv, max_steps=40)
        seen = f"events {[e for e, _ in rest]}, error {error!r}, cut after {t_end:.2f} s"
        assert "done" not in [e for e, _ in rest] and 1 <= len(rest) < 39, seen
        # Cut: the connection closes mid-body (or, at worst, ends without `done`).
        assert error is None or isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError)), (
            seen
        )
        assert t_refused is not None
        # sse-starlette notices the signal within 0.5 s, then waits out the grace.
        assert grace <= t_end < grace + 3, seen
        t0 = time.monotonic()
        rc, summary = closing_line(srv, timeout=grace + 10)
        assert rc == 0, srv.log_tail()
        assert time.monotonic() - t0 < 3, srv.log_tail()  # out soon after, not 'grace + 5'
        # Cancelled cleanly: the step in flight (if the cut did not fall between two
        # steps) was cancelled in the engine, nothing is left there, the abort counted.
        assert summary["in_flight"] == [] and summary["aborted"] == 1, summary
        assert len(summary["cancelled"]) <= 1, summary
        assert all(rid.endswith("-sample") for rid in summary["cancelled"]), summary
