"""What turning vLLM-CPU's chunked prefill off costs, on the reference profile's load.

On the CPU the server schedules whole prompts only (`VLLMEngine.engine_args`): vLLM-CPU
crashed ("CPU Generator does not use offset") when it prefilled seeded requests in
chunks. This measures the price on the workload that needs it: K concurrent agent
steps on the reference profile's long few-shot GSM8K prompts (n=3 samples of up to
64 tokens, as a solve's step) beside K greedy 64-token generations (as its
rationales), on the default model, once with chunked prefill off (the server) and
once on. The requests carry no seed, so the chunked run does not hit the crash.
Each configuration gets a fresh engine and runs the same requests `--rounds` times
after one warm-up round with a cold prefix cache every round. It prints wall time,
tokens and tokens/s per round, and the ratio off / on.

Run from the repo root: .venv/bin/python benchmarks/chunked_prefill.py [--k 8]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from rationalyst.clients import datasets
from rationalyst.supervisor.engine import SampleParams
from rationalyst.supervisor.models import build_default, default_cache_dir
from rationalyst.supervisor.prompts import agent_messages, rationale_messages
from rationalyst.supervisor.types import Problem
from rationalyst.supervisor.vllm_engine import VLLMEngine

STEP = SampleParams(n=3, temperature=0.7, max_tokens=64)


def problems(k: int) -> list[Problem]:
    bench = datasets.get("gsm8k")
    out = []
    for item in datasets.load_items(bench, None, k):  # the default data folder
        req = bench.request(item, "reference")
        out.append(Problem(req["question"], req["task"], None, profile="reference"))
    return out


async def one_round(eng: VLLMEngine, probs: list[Problem], tag: str) -> tuple[float, int]:
    await eng.llm.reset_prefix_cache()
    t0 = time.perf_counter()
    steps = [
        eng.sample(eng.render(agent_messages(p, [])), STEP, f"{tag}-s{i}")
        for i, p in enumerate(probs)
    ]
    rats = [
        eng.generate(eng.render(rationale_messages(p, [])), 64, (), f"{tag}-r{i}")
        for i, p in enumerate(probs)
    ]
    gens = await asyncio.gather(*steps, *rats)
    wall = time.perf_counter() - t0
    return wall, sum(g.prompt_tokens + g.completion_tokens for g in gens)


async def measure(chunked: bool, probs: list[Problem], rounds: int) -> dict:
    args = VLLMEngine.engine_args(str(build_default(default_cache_dir())), max_model_len=4096)
    if chunked:  # vLLM's own scheduling (its defaults), which the server turns off on CPU
        args.enable_chunked_prefill = type(args).enable_chunked_prefill
        args.max_num_batched_tokens = type(args).max_num_batched_tokens
    eng = VLLMEngine.from_args(args, "default")
    try:
        await one_round(eng, probs, "warm")
        walls, tokens = [], 0
        for r in range(rounds):
            wall, tokens = await one_round(eng, probs, f"r{r}")
            walls.append(wall)
    finally:
        await eng.close()
    wall = statistics.median(walls)
    return {"wall_s": wall, "tokens": tokens, "tokens_per_s": tokens / wall, "walls": walls}


async def main(k: int, rounds: int) -> None:
    probs = problems(k)
    rows = {}
    for chunked in (False, True):
        rows[chunked] = await measure(chunked, probs, rounds)
        r = rows[chunked]
        print(
            f"chunked prefill {'on ' if chunked else 'off'}: median {r['wall_s']:.2f} s "
            f"per round ({', '.join(f'{w:.2f}' for w in r['walls'])}), {r['tokens']} "
            f"prompt + completion tokens, {r['tokens_per_s']:.0f} tokens/s"
        )
    print(f"wall time, off / on: {rows[False]['wall_s'] / rows[True]['wall_s']:.2f}x")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=8, help="concurrent problems per round")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    asyncio.run(main(a.k, a.rounds))
