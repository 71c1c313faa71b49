"""Pipeline overhead of the rationalyst step loop, on a scripted engine.

Latencies are injected (sample 100 ms, rationale 80 ms, score 20 ms), so the
critical path of one step is max(sample, rationale) + score = 120 ms. The loop
should stay within 1.1x of it; a loop that ran the calls one after another
would take 200 ms (1.67x). The sequential variant is timed too, by making the
engine serialize all its methods through one lock.

Run from the repo root: .venv/bin/python benchmarks/pipeline.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rationalyst.supervisor.engine import Engines  # noqa: E402
from rationalyst.supervisor.loop import solve_all  # noqa: E402
from rationalyst.supervisor.scripted_engine import ScriptedEngine  # noqa: E402
from rationalyst.supervisor.types import Problem, SolveParams  # noqa: E402

SAMPLE_S, RATIONALE_S, SCORE_S = 0.100, 0.080, 0.020
CRITICAL_MS = (max(SAMPLE_S, RATIONALE_S) + SCORE_S) * 1e3
SEQUENTIAL_MS = (SAMPLE_S + RATIONALE_S + SCORE_S) * 1e3
SOLVES, STEPS = 3, 10
PROBLEM = Problem(question="What is 3 + 4?", task="math")


def engine(serialize: bool) -> ScriptedEngine:
    # One engine per solve: the lock then models a sequential loop, not a global one.
    return ScriptedEngine(
        sample_s=SAMPLE_S,
        generate_s=RATIONALE_S,
        score_s=SCORE_S,
        lock=asyncio.Lock() if serialize else None,
    )


async def run(serialize: bool) -> tuple[list[float], float]:
    params = SolveParams(strategy="rationalyst", max_steps=STEPS, seed=0)
    t0 = time.perf_counter()
    results = await asyncio.gather(
        *(solve_all(PROBLEM, params, Engines(*[engine(serialize)] * 3)) for _ in range(SOLVES))
    )
    wall_ms = (time.perf_counter() - t0) * 1e3
    for r in results:  # the default script never states an answer
        assert r.finish_reason == "max_steps" and len(r.steps) == STEPS, r.finish_reason
    return [s.elapsed_ms for r in results for s in r.steps], wall_ms


def report(label: str, step_ms: list[float], wall_ms: float) -> float:
    mean = statistics.mean(step_ms)
    ratio = mean / CRITICAL_MS
    print(
        f"{label:>10}: per-step mean {mean:6.1f} ms  min {min(step_ms):6.1f}  "
        f"max {max(step_ms):6.1f}  wall {wall_ms:7.1f} ms  ratio {ratio:.3f}"
    )
    return ratio


async def main() -> int:
    print(
        f"{SOLVES} concurrent solves x {STEPS} steps, rationalyst; sample "
        f"{SAMPLE_S * 1e3:.0f} ms, rationale {RATIONALE_S * 1e3:.0f} ms, "
        f"score {SCORE_S * 1e3:.0f} ms"
    )
    print(
        f"critical path {CRITICAL_MS:.0f} ms/step; sequential would be "
        f"{SEQUENTIAL_MS:.0f} ms ({SEQUENTIAL_MS / CRITICAL_MS:.2f}x)"
    )
    ratio = report("pipelined", *await run(serialize=False))
    report("sequential", *await run(serialize=True))
    ok = ratio <= 1.1
    print(
        f"pipelined ratio {ratio:.3f} {'<=' if ok else '>'} 1.1 target: {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
