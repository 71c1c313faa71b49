"""Shutdown on the real engine: however the signal arrives (the main process alone, or
its whole process group, as systemd's KillMode=control-group and Ctrl+C send it), the
vLLM engine process keeps serving until the server's drain is over, so a stream in
flight finishes within the grace period or gets `shutting_down`, never `engine_error`.

`rationalyst serve` with the tiny model, in its own session (LocalServer's
start_new_session), so signalling its group never reaches pytest."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import pytest

from harness import asse_events, poll_until, serve

pytestmark = pytest.mark.vllm

GRACE_S = 6.0


def _server(tiny_model, tmp_path, grace: float = GRACE_S):
    env = {
        "RATIONALYST_AGENT_MODEL": str(tiny_model),
        "RATIONALYST_RATIONALE_MODEL": str(tiny_model),
        "RATIONALYST_STEP_MAX_TOKENS": "8",  # short steps: many of them in the grace
        "RATIONALYST_SHUTDOWN_GRACE_S": str(grace),
    }
    return serve(tmp_path / "server.log", env=env, start_timeout_s=240)


STREAM = {
    "question": "q",
    "stream": True,
    "strategy": "random",
    "num_candidates": 2,
    "max_steps": 64,
    "seed": 1,
}


async def _signal_during_a_stream(srv, send) -> list[tuple[str, dict, bool]]:
    """A /solve stream; `send()` the signal once its first step is out. Its events,
    each with whether it came after the signal."""
    seen, signalled = [], False
    async with httpx.AsyncClient(base_url=srv.url, timeout=GRACE_S + 60) as c:
        async with c.stream("POST", "/solve", json=STREAM) as r:
            assert r.status_code == 200
            async for event, data, _ in asse_events(r):
                seen.append((event, data, signalled))
                if not signalled:
                    send()
                    signalled = True
    return seen


def _check_stream(events: list, log: str) -> None:
    """It finished within the grace period, or got `shutting_down`; and the engine
    kept serving after the signal (before, a group signal gave `engine_error`)."""
    kinds = [e for e, _, _ in events]
    last, data, _ = events[-1]
    shown = f"{kinds} {data}\n{log}"
    assert kinds[:-1] == ["step"] * (len(kinds) - 1), shown
    assert last == "done" or (last == "error" and data["error"]["code"] == "shutting_down"), shown
    assert any(after for e, _, after in events if e == "step"), shown


def _check_clean_exit(srv, within: float) -> str:
    rc = srv.proc.wait(within)
    # The engine processes went with it: nothing is left in the group.
    poll_until(lambda: not _group_alive(srv.proc.pid), 10, "the process group to exit")
    log = srv.log_path.read_text(errors="replace")
    assert rc == 0, log[-3000:]
    assert "Traceback" not in log and "EngineDeadError" not in log, log[-3000:]
    return log


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.parametrize(
    "target,sig",
    [("main", signal.SIGTERM), ("group", signal.SIGTERM), ("group", signal.SIGINT)],
    ids=["sigterm-main", "sigterm-group", "sigint-group"],
)
async def test_a_signal_drains_streams_on_the_real_engine(tiny_model, tmp_path, target, sig):
    srv = _server(tiny_model, tmp_path)
    srv.start()
    try:
        pid = srv.proc.pid

        def send():
            (os.kill if target == "main" else os.killpg)(pid, sig)

        events = await _signal_during_a_stream(srv, send)
        log = _check_clean_exit(srv, GRACE_S + 30)
        _check_stream(events, log[-3000:])
        if target == "group":  # the engine saw the signal, and left it to the server
            assert f"{sig.name} ignored" in log, log[-3000:]
    finally:
        srv.kill()


async def test_a_second_signal_forces_a_quick_exit(tiny_model, tmp_path):
    grace = 120.0  # a drain that would outlast the test: only the second signal ends it
    srv = _server(tiny_model, tmp_path, grace)
    srv.start()
    try:
        async with httpx.AsyncClient(base_url=srv.url, timeout=60) as c:
            async with c.stream("POST", "/solve", json=STREAM) as r:
                events = asse_events(r)
                assert (await anext(events))[0] == "step"
                os.killpg(srv.proc.pid, signal.SIGTERM)
                poll_until(
                    lambda: (
                        "Waiting for connections to close"
                        in srv.log_path.read_text(errors="replace")
                    ),
                    30,
                    "the drain",
                )
                os.killpg(srv.proc.pid, signal.SIGTERM)
                t0 = time.monotonic()
                rc = await asyncio.to_thread(srv.proc.wait, 30)
        assert time.monotonic() - t0 < 20, srv.log_tail(40)
        assert rc == 0, srv.log_tail(40)
        poll_until(lambda: not _group_alive(srv.proc.pid), 10, "the process group to exit")
        assert "second signal: forcing the exit" in srv.log_path.read_text(errors="replace")
    finally:
        srv.kill()
