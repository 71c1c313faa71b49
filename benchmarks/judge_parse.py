"""Parse rate of the default model as a judge, before (free text, 16 tokens) and after
(structured replies), on the same items: each of the first N GSM8K questions with a
one-step trajectory, the gold solution's first line, and a wrong one (the next item's
first line).

In-process (the agent judges itself: AgentJudge against StructuredAgentJudge, vLLM
structured outputs):

    RATIONALYST_DATA_DIR=... .venv/bin/python benchmarks/judge_parse.py 12

Remote (an OpenAI-compatible verifier, e.g. a `vllm serve` of the default model
named gpt-4-turbo: HTTPJudge against StructuredHTTPJudge, which tries vLLM's
structured_outputs choice, then response_format json_schema, then free text):

    .venv/bin/python benchmarks/judge_parse.py 12 http://127.0.0.1:8001/v1 gpt-4-turbo
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from rationalyst.supervisor.models import default_cache_dir, resolve
from rationalyst.supervisor.strategies.judge import (
    AgentJudge,
    HTTPJudge,
    StructuredAgentJudge,
    StructuredHTTPJudge,
    judge_messages,
)

DATA = Path(os.environ.get("RATIONALYST_DATA_DIR", "../shared/data/benchmarks"))


async def rate_all(name: str, judge, cases: list) -> dict:
    ratings = await asyncio.gather(*(judge.rate(m, f"{name[:5]}-{i}") for i, m in enumerate(cases)))
    parsed = sum(r.reward is not None for r in ratings)
    print(f"{name}: {parsed}/{len(ratings)} replies hold a reward 0-3", flush=True)
    return {
        "parsed": parsed,
        "replies": len(ratings),
        "rewards": [r.reward for r in ratings],
        "mode": getattr(judge, "mode", None),
        "sample_replies": [r.reply for r in ratings[:3]],
    }


async def main(n: int, url: str | None, model: str) -> None:
    items = [json.loads(line) for line in open(DATA / "gsm8k.jsonl")][: n + 1]
    firsts = [it["solution"].split("\n")[0] for it in items]
    cases = [
        judge_messages(items[i]["question"], [step])
        for i in range(n)
        for step in (firsts[i], firsts[i + 1])
    ]
    out = {}
    if url:
        before, after = HTTPJudge(url, model), StructuredHTTPJudge(url, model)
        try:
            out["before (free text, 16 tokens)"] = await rate_all("before", before, cases)
            out["after (structured)"] = await rate_all("after", after, cases)
        finally:
            await before.close()
            await after.close()
    else:
        from rationalyst.supervisor.vllm_engine import VLLMEngine

        eng = VLLMEngine.load(resolve("default", default_cache_dir()), "default")
        try:
            out["before (free text, 16 tokens)"] = await rate_all("before", AgentJudge(eng), cases)
            out["after (structured choice)"] = await rate_all(
                "after", StructuredAgentJudge(eng), cases
            )
        finally:
            await eng.close()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        main(
            int(args[0]) if args else 12,
            args[1] if len(args) > 1 else None,
            args[2] if len(args) > 2 else "gpt-4-turbo",
        )
    )
