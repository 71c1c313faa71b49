"""Figures of the making pipeline on the CPU default model, in one run:

- extract: documents/s at --concurrency 1 and 8 (insert mode), and their ratio;
- filter: prompt tokens computed vs the ideal (system prompt + preceding once, the
  rationale and following text twice), prefix-cached scoring against the naive two
  full prefills; triples/s of each.

    .venv/bin/python benchmarks/making.py [--docs 16] [--boundaries 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from rationalyst.clients.datasets import default_data_dir
from rationalyst.making import extract, filter as filt
from rationalyst.making.documents import read_documents
from rationalyst.supervisor.models import build_default, default_cache_dir
from rationalyst.supervisor.vllm_engine import VLLMEngine


async def main(n_docs: int, boundaries: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="making-bench-"))
    src = tmp / "docs.jsonl"
    with open(default_data_dir() / "strategyqa.jsonl") as f, open(src, "w") as out:
        for _, line in zip(range(n_docs), f):
            r = json.loads(line)
            out.write(json.dumps({"id": r["id"], "question": r["question"],
                                  "solution": r["solution"]}) + "\n")
    docs = read_documents([str(src)])
    eng = VLLMEngine.load(str(build_default(default_cache_dir())), "default",
                          max_model_len=2048)
    cfg = extract.ExtractConfig(max_boundaries=boundaries)
    try:
        await extract.run(eng, docs[:2], tmp / "warm", cfg, 2, progress=False)  # warm-up
        rates = {}
        for c in (1, 8):
            out = tmp / f"c{c}"
            t0 = time.perf_counter()
            stats = await extract.run(eng, docs, out, cfg, c, progress=False)
            rates[c] = len(docs) / (time.perf_counter() - t0)
            print(f"extract --concurrency {c}: {rates[c]:.3f} docs/s "
                  f"({stats['triples']} triples, {stats['rationales_leak']} leaks)")
        print(f"extract speed-up, concurrency 8 vs 1: {rates[8] / rates[1]:.2f}x")

        triples = (tmp / "c8" / "triples.jsonl").read_text()
        for cached in (True, False):
            eng.score_from_prefix_cache = cached
            run = tmp / f"filter-{'cached' if cached else 'naive'}"
            run.mkdir()
            (run / "triples.jsonl").write_text(triples)
            t0 = time.perf_counter()
            s = await filt.run(eng, run, concurrency=8, progress=False)
            dt = time.perf_counter() - t0
            rows = [json.loads(x) for name in ("kept.jsonl", "rejected.jsonl")
                    for x in (run / name).read_text().splitlines()]
            computed = sum(r["computed_tokens"] for r in rows)
            ideal = sum(r["ideal_tokens"] for r in rows)
            print(f"filter {'prefix-cached' if cached else 'naive (2 full prefills)'}: "
                  f"{s['scored']} triples, {s['scored'] / dt:.2f} triples/s, "
                  f"{computed} tokens computed = {computed / ideal:.2f}x ideal ({ideal})")
    finally:
        await eng.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--docs", type=int, default=16)
    p.add_argument("--boundaries", type=int, default=3)
    a = p.parse_args()
    asyncio.run(main(a.docs, a.boundaries))
