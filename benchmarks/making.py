"""Figures of the making pipeline on the CPU default model, in one run:

- extract: documents/s at --concurrency 1 and 8 (insert mode), and their ratio;
- filter: prompt tokens computed vs the ideal (system prompt + preceding once, the
  rationale and following text twice), prefix-cached scoring against the naive two
  full prefills; triples/s of each;
- memory: peak RSS of a shard process that validates and streams its share of
  --memory-docs synthetic input documents (the shard reader only, no model), at
  --shard 0/1 and 0/8, against reading every document into a list (the old reader).

    .venv/bin/python benchmarks/making.py [--docs 16] [--boundaries 3]
        [--memory-docs 100000] [--only extract|memory]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rationalyst.clients.datasets import default_data_dir
from rationalyst.making import extract
from rationalyst.making import filter as filt
from rationalyst.making.documents import read_documents
from rationalyst.supervisor.models import build_default, default_cache_dir
from rationalyst.supervisor.vllm_engine import VLLMEngine


async def main(n_docs: int, boundaries: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="making-bench-"))
    src = tmp / "docs.jsonl"
    with open(default_data_dir() / "strategyqa.jsonl") as f, open(src, "w") as out:
        for _, line in zip(range(n_docs), f):
            r = json.loads(line)
            out.write(
                json.dumps({"id": r["id"], "question": r["question"], "solution": r["solution"]})
                + "\n"
            )
    docs = read_documents([str(src)])
    eng = VLLMEngine.load(str(build_default(default_cache_dir())), "default", max_model_len=2048)
    cfg = extract.ExtractConfig(max_boundaries=boundaries)
    try:
        await extract.run(eng, docs[:2], tmp / "warm", cfg, 2, progress=False)  # warm-up
        rates = {}
        for c in (1, 8):
            out = tmp / f"c{c}"
            t0 = time.perf_counter()
            stats = await extract.run(eng, docs, out, cfg, c, progress=False)
            rates[c] = len(docs) / (time.perf_counter() - t0)
            print(
                f"extract --concurrency {c}: {rates[c]:.3f} docs/s "
                f"({stats['triples']} triples, {stats['rationales_leak']} leaks)"
            )
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
            rows = [
                json.loads(x)
                for name in ("kept.jsonl", "rejected.jsonl")
                for x in (run / name).read_text().splitlines()
            ]
            computed = sum(r["computed_tokens"] for r in rows)
            ideal = sum(r["ideal_tokens"] for r in rows)
            print(
                f"filter {'prefix-cached' if cached else 'naive (2 full prefills)'}: "
                f"{s['scored']} triples, {s['scored'] / dt:.2f} triples/s, "
                f"{computed} tokens computed = {computed / ideal:.2f}x ideal ({ideal})"
            )
    finally:
        await eng.close()


# One shard process: how it reads its input, then its peak RSS (MiB) and documents.
# /proc's VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's RSS.
SHARD = """
import sys
from rationalyst.making import documents

def mib(key):
    line = next(x for x in open("/proc/self/status") if x.startswith(key))
    return int(line.split()[1]) / 1024

path, how, i, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
base = mib("VmRSS")
if how == "stream":  # what `rationalyst extract` does now: validate, then stream
    documents.scan([path], (i, n))
    count = sum(1 for _ in documents.iter_documents([path], (i, n)))
elif how == "list":  # the old reader: every document in memory, then the share
    docs = [d for d in documents.iter_documents([path])][i::n]
    count = len(docs)
print(base, mib("VmHWM"), count)
"""


def memory(n_docs: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="making-mem-"))
    src = tmp / "docs.jsonl"
    sentence = "The committee reviewed the proposal and asked for three more estimates. "
    with open(src, "w") as f:  # about 1,000 characters a document
        for k in range(n_docs):
            f.write(json.dumps({"id": f"doc-{k}", "text": f"{k}. " + sentence * 14}) + "\n")
    size = src.stat().st_size / 2**20
    print(f"memory: {n_docs:,} synthetic documents, {size:.0f} MiB of JSONL")
    rows = {}
    for how, shard in (("stream", (0, 1)), ("stream", (0, 8)), ("list", (0, 1)), ("list", (0, 8))):
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", SHARD, str(src), how, *map(str, shard)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        base, peak, count = float(out[0]), float(out[1]), int(out[2])
        rows[how, shard] = peak - base
        print(
            f"  {how:6s} --shard {shard[0]}/{shard[1]}: {int(count):,} documents, peak RSS "
            f"{peak:.0f} MiB ({peak - base:+.0f} MiB over the imports), "
            f"{time.perf_counter() - t0:.1f} s"
        )
    print(
        f"  list / stream, --shard 0/1: {rows['list', (0, 1)] / rows['stream', (0, 1)]:.1f}x "
        f"the memory over the imports; stream 0/8 / stream 0/1: "
        f"{rows['stream', (0, 8)] / rows['stream', (0, 1)]:.2f}x"
    )


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--docs", type=int, default=16)
    p.add_argument("--boundaries", type=int, default=3)
    p.add_argument("--memory-docs", type=int, default=100_000)
    p.add_argument("--only", choices=("extract", "memory"), default=None)
    a = p.parse_args()
    if a.only != "extract":
        memory(a.memory_docs)
    if a.only != "memory":
        asyncio.run(main(a.docs, a.boundaries))
