"""Token and time cost of each strategy, and of scoring, on the real engine.

Part 1 runs every strategy over the same first N GSM8K items, one solve at a time
(so wall time is a solve's own) and each from an empty prefix cache (so the order
of the runs does not matter), in-process on the default model (or
RATIONALYST_AGENT_MODEL / RATIONALYST_RATIONALE_MODEL). Per solve it reports the
tokens prefilled (prompt tokens not read from the prefix cache; scoring counted
apart), decoded (agent steps + rationales) and scored (prompt tokens the scorer
really prefilled), the wall time, and each as a ratio to `greedy`. `judge` has
the agent judge its own candidates (its verifier calls are counted as the agent's
prefill and decode, and apart as "verifier"); `prm` runs when RATIONALYST_PRM_MODEL
names a PRM checkpoint (in-process, pooling runner).

Part 2 replays the scoring calls that part 1's rationalyst solves made (prefix =
trajectory + rationale, 1-3 distinct candidates), each from an empty prefix cache,
two ways:
- naive: one prompt-logprobs request per candidate; vLLM skips its prefix cache
  for those, so each prefills the whole prefix again;
- cached (what the server does): prefill the prefix once, then the N requests
  read it from the cache and only the positions past it are used.
It reports the tokens each computes against the ideal (prefix once + candidates),
the largest log-prob difference between the two, and their wall times.
Targets: cached <= 1.2x ideal, |diff| <= 1e-3.

Part 3 (--profiles N): the rationalyst strategy on the first N GSM8K and N ARC items
twice, with the generic profile's line steps (64 tokens, 2,048-token budget) and with
the reference profile's turn steps (up to 1,000 tokens each, no budget): tokens and
wall time per solve, and their ratios (reference / generic).

Run from the repo root: .venv/bin/python benchmarks/cost.py [--items 20]
    [--profiles N] [--only-profiles]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.progress import Progress

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rationalyst.clients import datasets  # noqa: E402
from rationalyst.supervisor.backends import load_engines  # noqa: E402
from rationalyst.supervisor.engine import Engines, Generation, SampleParams, Scores  # noqa: E402
from rationalyst.supervisor.loop import solve_all  # noqa: E402
from rationalyst.supervisor.settings import Settings  # noqa: E402
from rationalyst.supervisor.types import Problem, SolveParams  # noqa: E402

STRATEGIES = ("greedy", "random", "explicit", "rationalyst", "judge")
SEED = 14  # the reference scripts' seed
CACHED_TARGET, DIFF_TARGET = 1.2, 1e-3


class Counting:
    """Wraps an engine and tallies what each call costs. The wrapped engine is
    the real one; this only reads the token counts it reports."""

    def __init__(self, inner):
        self.inner = inner
        self.name, self.max_model_len = inner.name, inner.max_model_len
        self.score_calls: list[tuple[str, list[str]]] = []
        self.reset()

    def reset(self) -> None:
        self.prefilled = self.decoded = self.scored = 0

    def __getattr__(self, attr):  # render, count_tokens, stream, check, close
        return getattr(self.inner, attr)

    def _add(self, gen: Generation) -> Generation:
        self.prefilled += gen.prompt_tokens - gen.cached_tokens
        self.decoded += gen.completion_tokens
        return gen

    async def sample(self, prompt: str, params: SampleParams, request_id: str, **kw):
        return self._add(await self.inner.sample(prompt, params, request_id, **kw))

    async def generate(
        self, prompt: str, max_tokens: int, stop: Sequence[str], request_id: str, **kw
    ):
        return self._add(await self.inner.generate(prompt, max_tokens, stop, request_id, **kw))

    async def score(
        self, prefix: str, continuations: Sequence[str], request_id: str, **kw
    ) -> Scores:
        self.score_calls.append((prefix, list(continuations)))
        scores = await self.inner.score(prefix, continuations, request_id, **kw)
        self.scored += scores.computed_tokens
        return scores


async def strategy_costs(
    engines: Engines, counter: Counting, items: list[dict], bench
) -> dict[str, dict]:
    rows = {}
    with Progress() as bar:
        for strategy in STRATEGIES + (("prm",) if engines.prm else ()):
            task = bar.add_task(f"{strategy:>11}", total=len(items))
            tally = {"prefilled": [], "decoded": [], "scored": [], "verifier": [], "wall_s": []}
            for i, item in enumerate(items):
                req = bench.request(item)
                problem = Problem(req["question"], req["task"], req["choices"])
                params = SolveParams(strategy=strategy, seed=SEED + i)
                counter.reset()
                await counter.inner.llm.reset_prefix_cache()  # each solve starts cold
                t0 = time.perf_counter()
                result = await solve_all(problem, params, engines, f"{strategy}-{i}")
                tally["wall_s"].append(time.perf_counter() - t0)
                u = result.usage
                tally["verifier"].append(u.verifier_prompt_tokens + u.verifier_completion_tokens)
                for kind in ("prefilled", "decoded", "scored"):
                    tally[kind].append(getattr(counter, kind))
                bar.advance(task)
            rows[strategy] = {k: statistics.mean(v) for k, v in tally.items()}
    return rows


PROFILE_RUNS = {  # the server's settings for each (see server/solve.py)
    "generic, line": dict(
        profile="generic",
        step_end="line",
        step_max_tokens=64,
        rationale_max_tokens=64,
        max_tokens=2048,
    ),
    "reference, turn": dict(
        profile="reference",
        step_end="turn",
        step_max_tokens=1000,
        rationale_max_tokens=1000,
        max_tokens=None,
    ),
}


async def profile_costs(engines: Engines, counter: Counting, n: int, data_dir) -> dict:
    """rationalyst per profile on the same items, one solve at a time, cold cache."""
    rows: dict[str, dict] = {}
    with Progress() as bar:
        for name in ("gsm8k", "arc_challenge"):
            bench = datasets.get(name)
            items = datasets.load_items(bench, data_dir, n)
            for label, run in PROFILE_RUNS.items():
                task = bar.add_task(f"{name} {label}", total=len(items))
                tally = {
                    k: [] for k in ("prefilled", "decoded", "scored", "steps", "answered", "wall_s")
                }
                for i, item in enumerate(items):
                    req = bench.request(item, run["profile"])
                    problem = Problem(
                        req["question"],
                        req["task"],
                        tuple(req["choices"]) if req["choices"] else None,
                        profile=req["profile"],
                        category=req.get("category"),
                    )
                    params = SolveParams(
                        strategy="rationalyst",
                        seed=SEED + i,
                        **{k: v for k, v in run.items() if k != "profile"},
                    )
                    counter.reset()
                    await counter.inner.llm.reset_prefix_cache()
                    t0 = time.perf_counter()
                    result = await solve_all(problem, params, engines, f"{label}-{i}")
                    tally["wall_s"].append(time.perf_counter() - t0)
                    tally["steps"].append(len(result.steps))
                    tally["answered"].append(result.answer is not None)
                    for kind in ("prefilled", "decoded", "scored"):
                        tally[kind].append(getattr(counter, kind))
                    bar.advance(task)
                rows[f"{name} | {label}"] = {k: statistics.mean(v) for k, v in tally.items()}
    return rows


def profile_report(rows: dict, n: int) -> None:
    print(f"\n## rationalyst per profile: first {n} items of each, one solve at a time\n")
    print(
        "| dataset | profile, steps | prefilled | decoded | scored | steps | answered "
        "| wall s | all tokens x | wall x |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, r in rows.items():
        base = rows[key.split(" | ")[0] + " | generic, line"]
        every = r["prefilled"] + r["decoded"] + r["scored"]
        base_every = base["prefilled"] + base["decoded"] + base["scored"]
        print(
            f"| {key} | {r['prefilled']:.0f} | {r['decoded']:.0f} | {r['scored']:.0f} "
            f"| {r['steps']:.1f} | {r['answered']:.2f} | {r['wall_s']:.1f} "
            f"| {every / base_every:.2f} | {r['wall_s'] / base['wall_s']:.2f} |"
        )
    print(json.dumps({"profiles": rows}))


def replay_totals() -> dict:
    return {"ideal": 0, "naive": 0, "cached": 0, "naive_s": 0.0, "cached_s": 0.0}


async def replay_call(engine, i: int, prefix: str, conts: list[str], reset, tot: dict) -> float:
    """Score one call naive, then cached, each after `reset()` empties the prefix cache;
    add tokens and seconds to `tot`; return the largest log-prob difference of the two."""
    tot["ideal"] += engine.count_tokens(prefix) + sum(map(engine.count_tokens, conts))
    got = {}
    for way in ("naive", "cached"):
        engine.score_from_prefix_cache = way == "cached"
        await reset()
        t0 = time.perf_counter()
        got[way] = await engine.score(prefix, conts, f"replay-{way}-{i}")
        tot[f"{way}_s"] += time.perf_counter() - t0
        tot[way] += got[way].computed_tokens
    diff = 0.0
    for a, b in zip(got["naive"].token_logprobs, got["cached"].token_logprobs):
        assert len(a) == len(b)
        diff = max([diff, *(abs(x - y) for x, y in zip(a, b))])
    return diff


async def scoring_costs(engine, calls: list[tuple[str, list[str]]]) -> dict:
    """Each call naive and cached, from an empty prefix cache; the same tokens."""
    tot, max_diff = replay_totals(), 0.0
    with Progress() as bar:
        task = bar.add_task("    scoring", total=len(calls))
        for i, (prefix, conts) in enumerate(calls):
            max_diff = max(
                max_diff,
                await replay_call(engine, i, prefix, conts, engine.llm.reset_prefix_cache, tot),
            )
            bar.advance(task)
    engine.score_from_prefix_cache = True
    return {**tot, "calls": len(calls), "max_diff": max_diff}


def report(rows: dict, sc: dict, n_items: int, model: str) -> bool:
    print(
        f"\n## Cost per solve: {n_items} GSM8K items, {model}, N=3, temperature 0.7, "
        f"15 steps max, one solve at a time\n"
    )
    g = rows["greedy"]
    print(
        "| strategy | prefilled | decoded | scored | verifier | wall s | prefilled x "
        "| decoded x | all tokens x | wall x |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    g_all = g["prefilled"] + g["decoded"] + g["scored"]
    for name, r in rows.items():
        # The judge's tokens are the agent's own (in prefilled/decoded); the PRM's are not.
        every = (
            r["prefilled"] + r["decoded"] + r["scored"] + (r["verifier"] if name == "prm" else 0)
        )
        print(
            f"| {name} | {r['prefilled']:.0f} | {r['decoded']:.0f} | {r['scored']:.0f} "
            f"| {r['verifier']:.0f} | {r['wall_s']:.2f} | {r['prefilled'] / g['prefilled']:.2f} "
            f"| {r['decoded'] / g['decoded']:.2f} | {every / g_all:.2f} "
            f"| {r['wall_s'] / g['wall_s']:.2f} |"
        )
    naive_x, cached_x = sc["naive"] / sc["ideal"], sc["cached"] / sc["ideal"]
    print(
        f"\n## Scoring: {sc['calls']} scoring calls from the rationalyst solves, "
        f"each from an empty prefix cache\n"
    )
    print("| way | tokens computed | x ideal | wall s (all calls) |")
    print("|---|---:|---:|---:|")
    print(f"| ideal (prefix once + candidates) | {sc['ideal']} | 1.00 | |")
    print(
        f"| naive (N prompt-logprob requests) | {sc['naive']} | {naive_x:.2f} "
        f"| {sc['naive_s']:.2f} |"
    )
    print(
        f"| cached (prime, then N requests) | {sc['cached']} | {cached_x:.2f} "
        f"| {sc['cached_s']:.2f} |"
    )
    print(
        f"\ncached/naive: tokens {sc['cached'] / sc['naive']:.2f}, wall time "
        f"{sc['cached_s'] / sc['naive_s']:.2f}; largest log-prob difference "
        f"{sc['max_diff']:.2e}"
    )
    ok = cached_x <= CACHED_TARGET and sc["max_diff"] <= DIFF_TARGET
    print(
        f"targets: cached <= {CACHED_TARGET}x ideal, |diff| <= {DIFF_TARGET}: "
        f"{'PASS' if ok else 'FAIL'}"
    )
    print(json.dumps({"strategies": rows, "scoring": sc}))
    return ok


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--items", type=int, default=20, help="GSM8K items [20]")
    p.add_argument("--data-dir", help="benchmark folder [as `rationalyst eval`]")
    p.add_argument(
        "--profiles",
        type=int,
        default=0,
        metavar="N",
        help="part 3: N GSM8K and N ARC items per profile [0: skip]",
    )
    p.add_argument("--only-profiles", action="store_true", help="run part 3 alone")
    args = p.parse_args()
    bench = datasets.get("gsm8k")
    items = datasets.load_items(bench, args.data_dir, args.items)
    engines, info = await load_engines(Settings())
    if len({id(engines.agent), id(engines.rationale), id(engines.scorer)}) != 1:
        sys.exit("cost.py measures one in-process model serving all three roles")
    if not hasattr(engines.scorer, "llm"):
        sys.exit("cost.py needs the in-process vLLM engine (no RATIONALYST_*_URL)")
    counter = Counting(engines.agent)
    counted = Engines(counter, counter, counter, prm=engines.prm)
    ok = True
    try:
        if not args.only_profiles:
            rows = await strategy_costs(counted, counter, items, bench)
            sc = await scoring_costs(engines.scorer, counter.score_calls)
            ok = report(rows, sc, len(items), info.agent)
        if args.profiles:
            profile_report(
                await profile_costs(counted, counter, args.profiles, args.data_dir), args.profiles
            )
    finally:
        await engines.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
