"""Supervised solves per minute at 1, 4 and 8 concurrent solves, in-process and on a
remote `vllm serve`; and remote scoring from the prefix cache against full prefill.

Part 1, throughput: the first K GSM8K items solved with `rationalyst` (N = 3,
temperature 0.7, at most --max-steps steps, item i with seed 14 + i), K at a time for
each concurrency level, each level from an empty prefix cache. Solves call the
engine with no lock, so vLLM batches their requests. Reported: solves/min and steps/s
per level, as ratios to one solve at a time. First the in-process engine (the
default model, or RATIONALYST_AGENT_MODEL), then the same model behind a `vllm serve`
started here as the compose `split` profile starts it (plus --block-size 32 and
VLLM_SERVER_DEV_MODE=1, for the CPU block size and the cache reset between runs).

Part 2, remote scoring: every scoring call the remote concurrency-1 run made
(prefix = trajectory + rationale, its distinct candidates), replayed two ways, each
from an empty prefix cache: naive (one /v1/completions request, full prefill per
candidate) and cached (/inference/v1/generate: prime, then N requests that read the
cache). Tokens computed against the ideal (prefix once + candidates), the largest
log-prob difference, wall times. Targets: cached <= 1.2x ideal, |diff| <= 1e-3.

The machine is shared, so compare ratios within one run, not figures across runs.
Run from the repo root: .venv/bin/python benchmarks/throughput.py [--solves 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from cost import Counting, replay_call, replay_totals  # noqa: E402

from rationalyst.cli.local_server import LocalServer  # noqa: E402
from rationalyst.clients import datasets  # noqa: E402
from rationalyst.supervisor.backends import load_engines  # noqa: E402
from rationalyst.supervisor.engine import Engines  # noqa: E402
from rationalyst.supervisor.loop import solve_all  # noqa: E402
from rationalyst.supervisor.models import resolve  # noqa: E402
from rationalyst.supervisor.settings import Settings  # noqa: E402
from rationalyst.supervisor.types import Problem, SolveParams  # noqa: E402

SEED = 14
LEVELS = (1, 4, 8)
CACHED_TARGET, DIFF_TARGET = 1.2, 1e-3


async def run_level(
    engines: Engines, problems: list[Problem], level: int, max_steps: int, tag: str
) -> dict:
    """All problems, `level` at a time; wall time of the whole batch."""
    sem = asyncio.Semaphore(level)
    steps = 0

    async def one(i: int, problem: Problem) -> None:
        nonlocal steps
        async with sem:
            params = SolveParams(strategy="rationalyst", seed=SEED + i, max_steps=max_steps)
            result = await solve_all(problem, params, engines, f"{tag}-{level}-{i}")
            steps += len(result.steps)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i, p) for i, p in enumerate(problems)))
    wall = time.perf_counter() - t0
    return {
        "level": level,
        "solves": len(problems),
        "steps": steps,
        "wall_s": wall,
        "solves_per_min": len(problems) * 60 / wall,
        "steps_per_s": steps / wall,
    }


async def throughput(
    engines: Engines, problems, max_steps: int, tag: str, reset, after_first=lambda: None
) -> list:
    rows = []
    for level in LEVELS:
        await reset()
        rows.append(await run_level(engines, problems, level, max_steps, tag))
        if level == LEVELS[0]:
            after_first()
        print(
            f"  {tag}: {level} at a time: {rows[-1]['solves_per_min']:.2f} solves/min", flush=True
        )
    return rows


async def replay_scoring(engine, calls, reset) -> dict:
    tot, max_diff = replay_totals(), 0.0
    for i, (prefix, conts) in enumerate(calls):
        max_diff = max(max_diff, await replay_call(engine, i, prefix, conts, reset, tot))
    engine.score_from_prefix_cache = True
    return {
        **tot,
        "calls": len(calls),
        "max_diff": max_diff,
        "garbage_retries": engine.garbage_retries,
    }


def vllm_serve(model: str, log: Path) -> LocalServer:
    env = ["env", "VLLM_CPU_KVCACHE_SPACE=1", "TORCHDYNAMO_DISABLE=1", "VLLM_SERVER_DEV_MODE=1"]
    return LocalServer(
        log,
        900,
        [
            *env,
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            model,
            "--host",
            "127.0.0.1",
            "--dtype",
            "float32",
            "--enforce-eager",
            "--seed",
            "0",
            "--max-model-len",
            "2048",
            "--enable-prefix-caching",
            "--block-size",
            "32",
            "--enable-scale-out",
            "--enable-prompt-tokens-details",
            "--port",
        ],
    )


def print_levels(name: str, rows: list) -> None:
    base = rows[0]["solves_per_min"]
    print(f"\n### {name}\n")
    print("| concurrent solves | solves | steps | wall s | solves/min | steps/s | x 1 |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['level']} | {r['solves']} | {r['steps']} | {r['wall_s']:.1f} "
            f"| {r['solves_per_min']:.2f} | {r['steps_per_s']:.2f} "
            f"| {r['solves_per_min'] / base:.2f} |"
        )


def report(local: list, remote: list, sc: dict) -> bool:
    if local:
        print_levels("in-process engine", local)
    print_levels("remote engine (vllm serve, scoring from its prefix cache)", remote)
    naive_x, cached_x = sc["naive"] / sc["ideal"], sc["cached"] / sc["ideal"]
    print(f"\n### Remote scoring: {sc['calls']} scoring calls, each from an empty cache\n")
    print("| way | tokens computed | x ideal | wall s (all calls) |")
    print("|---|---:|---:|---:|")
    print(f"| ideal (prefix once + candidates) | {sc['ideal']} | 1.00 | |")
    print(
        f"| naive (/v1/completions, full prefill) | {sc['naive']} | {naive_x:.2f} "
        f"| {sc['naive_s']:.2f} |"
    )
    print(
        f"| cached (/inference/v1/generate) | {sc['cached']} | {cached_x:.2f} "
        f"| {sc['cached_s']:.2f} |"
    )
    print(
        f"\ncached/naive: tokens {sc['cached'] / sc['naive']:.2f}, wall time "
        f"{sc['cached_s'] / sc['naive_s']:.2f}; largest log-prob difference "
        f"{sc['max_diff']:.2e}; requests retried because vLLM could not encode the "
        f"garbage at cached positions: {sc['garbage_retries']} (counted in the tokens)"
    )
    ok = cached_x <= CACHED_TARGET and sc["max_diff"] <= DIFF_TARGET
    print(
        f"targets: cached <= {CACHED_TARGET}x ideal, |diff| <= {DIFF_TARGET}: "
        f"{'PASS' if ok else 'FAIL'}"
    )
    for name, rows in (("in-process", local), ("remote", remote)):
        if rows:
            print(
                f"{name}: {LEVELS[-1]} concurrent solves = "
                f"{rows[-1]['solves_per_min'] / rows[0]['solves_per_min']:.2f}x one at a "
                "time"
            )
    print(json.dumps({"in_process": local, "remote": remote, "remote_scoring": sc}))
    return ok


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--solves", type=int, default=8, help="GSM8K items per level [8]")
    p.add_argument("--max-steps", type=int, default=4, help="steps per solve at most [4]")
    p.add_argument("--data-dir", help="benchmark folder [as `rationalyst eval`]")
    p.add_argument("--skip-in-process", action="store_true")
    args = p.parse_args()
    bench = datasets.get("gsm8k")
    problems = []
    for item in datasets.load_items(bench, args.data_dir, args.solves):
        req = bench.request(item)
        problems.append(Problem(req["question"], req["task"], req["choices"]))
    settings = Settings()
    if settings.agent_url or settings.rationale_model != settings.agent_model:
        sys.exit("throughput.py measures one model serving all three roles, started here")

    local: list = []
    if not args.skip_in_process:
        engines, _ = await load_engines(settings)
        try:
            local = await throughput(
                engines, problems, args.max_steps, "local", engines.agent.llm.reset_prefix_cache
            )
        finally:
            await engines.close()

    model = resolve(settings.agent_model, settings.cache_dir)
    log = Path(os.environ.get("TMPDIR", "/tmp")) / "throughput-vllm-serve.log"
    with vllm_serve(model, log) as url:

        async def reset() -> None:
            httpx.post(url + "/reset_prefix_cache", timeout=60).raise_for_status()

        remote_settings = settings.model_copy(update={"agent_url": url, "rationale_url": url})
        engines, _ = await load_engines(remote_settings)
        try:
            counter = Counting(engines.agent)
            counted = Engines(counter, counter, counter)
            calls: list = []
            remote = await throughput(
                counted,
                problems,
                args.max_steps,
                "remote",
                reset,
                lambda: calls.extend(counter.score_calls),
            )
            sc = await replay_scoring(engines.scorer, calls, reset)  # one at a time's
        finally:
            await engines.close()
    return 0 if report(local, remote, sc) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
