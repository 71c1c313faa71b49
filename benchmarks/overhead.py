"""Server overhead per step: the real HTTP server on an engine that returns at once.

A server process (this file with --serve) runs `rationalyst serve`'s code on a
scripted engine with zero latency, so all of a step's time is ours: the solve
loop, the SSE encoding, the middleware, uvicorn. This process drives it over
real HTTP with 1, 16 and 64 concurrent streamed `rationalyst` solves and reports:

- steps/s through the server (all streams together), and the ratio to 1 stream;
- per-step server overhead: the server process's CPU time per step, read from
  /proc. It is the figure that matters at load (the server is one asyncio
  thread, so steps/s at saturation is about 1000 / overhead_ms), and unlike wall
  time it does not count this client, which shares the machine's cores;
- the client-observed gap between consecutive step events (p50, p99).

Target: <= 1 ms per step at 64 concurrent streams.

Run from the repo root: .venv/bin/python benchmarks/overhead.py [--steps N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import statistics
import sys
import time
from pathlib import Path

import httpx
import psutil
from httpx_sse import EventSource

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rationalyst.cli.local_server import LocalServer  # noqa: E402

LEVELS = (1, 16, 64)
TARGET_MS = 1.0
CLIENTS = 16  # httpcore's pool does O(connections) work per event: spread the load


def serve(port: int) -> int:
    """The server process: our app and uvicorn, on an instant scripted engine."""
    from rationalyst.cli.serve_cmd import run_server
    from rationalyst.server.app import create_app
    from rationalyst.server.settings import ServerSettings as Settings
    from rationalyst.supervisor.backends import ModelInfo
    from rationalyst.supervisor.engine import Engines
    from rationalyst.supervisor.scripted_engine import ScriptedEngine

    settings = Settings(
        host="127.0.0.1",
        port=port,
        max_concurrent_solves=max(LEVELS),
        max_queued_solves=max(LEVELS),
    )
    engine = ScriptedEngine()  # its steps never state an answer: max_steps each
    info = ModelInfo("scripted", "scripted", "scripted", True)
    return run_server(create_app(settings, Engines(engine, engine, engine), info), settings)


async def stream_solve(client: httpx.AsyncClient, steps: int) -> list[float]:
    """One streamed solve; the arrival time of each step event."""
    body = {
        "question": "What is 3 + 4?",
        "stream": True,
        "strategy": "rationalyst",
        "num_candidates": 3,
        "max_steps": steps,
    }
    times, last = [], None
    async with client.stream("POST", "/solve", json=body) as r:
        r.raise_for_status()
        async for event in EventSource(r).aiter_sse():
            last = event.event
            if last == "step":
                times.append(time.perf_counter())
            elif last == "error":
                raise RuntimeError("error event")
    if last != "done" or len(times) != steps:
        raise RuntimeError(f"stream ended with {last!r} after {len(times)} steps")
    return times


async def level(url: str, proc: psutil.Process, concurrent: int, steps: int) -> dict:
    solves = max(20, 2 * concurrent)  # enough steps for the CPU clock's 10 ms ticks
    ctx = ssl.create_default_context()  # one, shared: each client would load its own
    clients = [
        httpx.AsyncClient(
            base_url=url, verify=ctx, timeout=60, limits=httpx.Limits(max_connections=concurrent)
        )
        for _ in range(min(CLIENTS, concurrent))
    ]
    gate = asyncio.Semaphore(concurrent)

    async def one(i: int) -> list[float]:
        async with gate:
            return await stream_solve(clients[i % len(clients)], steps)

    await asyncio.gather(*(one(i) for i in range(len(clients))))  # warm connections
    cpu0, t0 = sum(proc.cpu_times()[:2]), time.perf_counter()
    # Bounded: a hung stream fails the run instead of blocking it.
    runs = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(solves))), 300)
    wall, cpu = time.perf_counter() - t0, sum(proc.cpu_times()[:2]) - cpu0
    for c in clients:
        await c.aclose()
    total = solves * steps
    gaps = [(b - a) * 1e3 for t in runs for a, b in zip(t, t[1:])]
    q = statistics.quantiles(gaps, n=100, method="inclusive")
    return {
        "concurrent": concurrent,
        "solves": solves,
        "steps": total,
        "steps_per_s": total / wall,
        "cpu_ms_per_step": cpu * 1e3 / total,
        "gap_p50_ms": q[49],
        "gap_p99_ms": q[98],
    }


async def drive(url: str, pid: int, steps: int) -> list[dict]:
    proc = psutil.Process(pid)
    return [await level(url, proc, n, steps) for n in LEVELS]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=10, help="steps per solve [10]")
    p.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        return serve(args.serve)

    # The access log is real per-request work, so it stays on, written to /dev/null.
    server = LocalServer(
        Path(os.devnull), start_timeout_s=30, command=[sys.executable, __file__, "--serve"]
    )
    with server as url:
        rows = asyncio.run(drive(url, server.proc.pid, args.steps))

    print(
        f"streamed rationalyst solves, 3 candidates, {args.steps} steps each, "
        f"instant scripted engine, real uvicorn on 127.0.0.1 ({os.cpu_count()} cores)"
    )
    print(
        f"{'streams':>8} {'solves':>7} {'steps/s':>9} {'x 1 stream':>11} "
        f"{'server ms/step':>15} {'gap p50':>8} {'gap p99':>8}"
    )
    base = rows[0]["steps_per_s"]
    for r in rows:
        print(
            f"{r['concurrent']:>8} {r['solves']:>7} {r['steps_per_s']:>9.0f} "
            f"{r['steps_per_s'] / base:>11.2f} {r['cpu_ms_per_step']:>15.3f} "
            f"{r['gap_p50_ms']:>8.2f} {r['gap_p99_ms']:>8.2f}"
        )
    at_max = rows[-1]["cpu_ms_per_step"]
    ok = at_max <= TARGET_MS
    print(
        f"server overhead at {LEVELS[-1]} streams: {at_max:.3f} ms/step "
        f"{'<=' if ok else '>'} {TARGET_MS} ms target: {'PASS' if ok else 'FAIL'}"
    )
    print(json.dumps(rows))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
