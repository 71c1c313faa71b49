"""Parse rate of the default model as its own judge, before (free text, 16 tokens,
verifiers.AgentJudge) and after (vLLM structured outputs, StructuredAgentJudge), on
the same items: each of the first N GSM8K questions with a one-step trajectory, the
gold solution's first line, and a wrong one (the next item's first line).

    RATIONALYST_DATA_DIR=... .venv/bin/python benchmarks/judge_parse.py 12
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from rationalyst.supervisor.models import default_cache_dir, resolve
from rationalyst.supervisor.strategies.judge import StructuredAgentJudge
from rationalyst.supervisor.verifiers import AgentJudge, judge_messages
from rationalyst.supervisor.vllm_engine import VLLMEngine

DATA = Path(os.environ.get("RATIONALYST_DATA_DIR", "../shared/data/benchmarks"))


async def main(n: int) -> None:
    items = [json.loads(line) for line in open(DATA / "gsm8k.jsonl")][:n + 1]
    firsts = [it["solution"].split("\n")[0] for it in items]
    cases = [judge_messages(items[i]["question"], [step])
             for i in range(n) for step in (firsts[i], firsts[i + 1])]
    eng = VLLMEngine.load(resolve("default", default_cache_dir()), "default")
    try:
        out = {}
        for name, judge in (("before (free text, 16 tokens)", AgentJudge(eng)),
                            ("after (structured choice)", StructuredAgentJudge(eng))):
            ratings = await asyncio.gather(*(judge.rate(m, f"{name[:5]}-{i}")
                                             for i, m in enumerate(cases)))
            parsed = sum(r.reward is not None for r in ratings)
            out[name] = {"parsed": parsed, "replies": len(ratings),
                         "rewards": [r.reward for r in ratings],
                         "sample_replies": [r.reply for r in ratings[:3]]}
            print(f"{name}: {parsed}/{len(ratings)} replies hold a reward 0-3", flush=True)
        print(json.dumps(out, indent=1))
    finally:
        await eng.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 12))
