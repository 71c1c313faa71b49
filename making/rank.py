"""`rationalyst rank`: how often the scorer ranks the gold next step first.

At each step k of a gold solution the candidates are the gold step plus N-1 steps the
agent samples at the same point (samples equal to the gold step, empty or repeated
are dropped). The same candidates are scored under several rationale sources:
- none: the agent's own mean log-prob under its own prompt (no rationale turn);
- blank: the scorer's prompt with an empty rationale (a control for the layout);
- stand-in: the rationale the server's rationale model writes (here the agent model);
- trained: the same call on a checkpoint from `rationalyst train` (--rationale-model);
- oracle: a rationale written *from the gold step* with the making pipeline's own
  extraction prompt (insert mode), so it is in the trained model's style.
Every source but `none` is scored by calling the server's `rationalyst` strategy
itself, with the candidates and the rationale replayed into it, so the prompt layout,
deduplication and prefix-cached scoring are the server's, not a copy.
"""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Awaitable, Callable, Sequence

from rationalyst.supervisor import profiles, prompts, strategies
from rationalyst.supervisor.concurrency import gather_or_cancel
from rationalyst.supervisor.engine import Completion, Engine, Engines, Generation, decayed_mean
from rationalyst.supervisor.loop import step_seed
from rationalyst.supervisor.types import Problem, SolveParams, Timings, Usage

from . import prompts as making_prompts
from . import split
from .store import Appender, read_jsonl

SOURCES = ("none", "blank", "stand-in", "trained", "oracle")
DECAYS = (1.0, 0.9)
LEAK_THRESHOLD = 0.7  # extract's default: an oracle this close to the gold step leaks it


# ---- gold steps ---------------------------------------------------------------------

_CALC = re.compile(r"<<[^<>]*>>")


def gsm8k_steps(solution: str) -> list[str]:
    """One step per line, calculator annotations removed; `#### x` becomes the
    agent prompt's answer line."""
    steps = []
    for line in solution.split("\n"):
        line = " ".join(_CALC.sub("", line).split())
        if not line:
            continue
        if line.startswith("####"):
            line = f"{prompts.ANSWER_PHRASE} {line[4:].strip().replace(',', '')}"
        steps.append(line)
    return steps


def math_steps(solution: str) -> list[str]:
    """Sentences, split as the reference profile splits MATH shots."""
    return list(profiles.sentences(solution))


@dataclass(frozen=True)
class Item:
    id: str
    dataset: str  # gsm8k | math
    task: str
    question: str
    steps: tuple[str, ...]


def load_items(data_dir: Path, gsm8k: int, math: int, seed: int,
               max_steps: int) -> list[Item]:
    """The first `gsm8k` GSM8K test items (file order: no selection), and `math` MATH
    test items outside MATH-500 (and outside the reference profile's MATH shots),
    drawn with `seed` from those with short, figure-free solutions."""
    items = []
    with open(data_dir / "gsm8k.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()][:gsm8k]
    for r in rows:
        items.append(Item(r["id"], "gsm8k", "math", r["question"],
                          tuple(gsm8k_steps(r["solution"])[:max_steps])))
    if math:
        pool = profiles.math_pool(data_dir)
        shots = {it["id"] for it in random.Random(profiles.SHOT_SEED).sample(
            pool, profiles.MATH_SHOTS)}
        pool = [it for it in pool if it["id"] not in shots]
        for r in random.Random(seed).sample(pool, min(math, len(pool))):
            items.append(Item(r["id"], "math", "math_boxed", r["question"],
                              tuple(math_steps(r["solution"])[:max_steps])))
    return [it for it in items if it.steps]


# ---- candidates and bookkeeping ------------------------------------------------------

def _norm(text: str) -> str:
    return " ".join(text.split())


def candidates(gold: str, samples: Sequence[str]) -> tuple[list[str], dict[str, int]]:
    """[gold, *distinct samples]: samples equal to the gold step (up to whitespace),
    empty or repeated are dropped, and counted."""
    out, seen = [_norm(gold)], {_norm(gold)}
    dropped = {"equal_gold": 0, "duplicate": 0, "empty": 0}
    for s in samples:
        t = _norm(s)
        if not t:
            dropped["empty"] += 1
        elif t == out[0]:
            dropped["equal_gold"] += 1
        elif t in seen:
            dropped["duplicate"] += 1
        else:
            seen.add(t)
            out.append(t)
    return out, dropped


def top1(scores: Sequence[float], gold: int = 0) -> float:
    """1 when the gold candidate scores strictly highest, 1/(1+t) when it ties with t
    others (the chance of winning a random tie-break), else 0."""
    g = scores[gold]
    others = [s for i, s in enumerate(scores) if i != gold]
    if any(s > g for s in others):
        return 0.0
    return 1.0 / (1 + sum(s == g for s in others))


# ---- engines replayed into the server's strategy --------------------------------------

class _Replay:
    """An engine whose sample/generate return fixed text (this step's candidates, or a
    rationale) and that renders and counts with the real engine, so that the server's
    `rationalyst` strategy scores exactly these candidates under this rationale."""

    def __init__(self, real: Engine, texts: Sequence[str]):
        self.real, self.texts = real, list(texts)
        self.name, self.max_model_len = real.name, real.max_model_len
        self.end_of_turn_ids = getattr(real, "end_of_turn_ids", ())

    def render(self, messages, add_generation_prompt: bool = True) -> str:
        return self.real.render(messages, add_generation_prompt)

    def count_tokens(self, text: str) -> int:
        return self.real.count_tokens(text)

    def _gen(self) -> Generation:
        return Generation([Completion(t, self.real.count_tokens(t)) for t in self.texts], 0)

    async def sample(self, prompt, params, request_id) -> Generation:
        return self._gen()

    async def generate(self, prompt, max_tokens, stop, request_id) -> Generation:
        return self._gen()


class _Recording:
    """The real scorer, keeping what its last score call returned."""

    def __init__(self, real: Engine):
        self.real, self.last = real, None

    def __getattr__(self, name):
        return getattr(self.real, name)

    async def score(self, prefix, continuations, request_id):
        self.last = await self.real.score(prefix, continuations, request_id)
        return self.last


# ---- one step ------------------------------------------------------------------------

@dataclass(frozen=True)
class RankConfig:
    num_candidates: int = 4  # the gold step + 3 samples
    temperature: float = 0.7
    seed: int = 14
    profile: str = "generic"
    step_max_tokens: int = 64
    rationale_max_tokens: int = 64
    oracle_max_tokens: int = 48  # extract's default


def _state(cfg: RankConfig, item: Item, k: int, item_seed: int, rid: str,
           decay: float = 1.0) -> strategies.StepState:
    params = SolveParams(num_candidates=max(1, cfg.num_candidates - 1),
                         temperature=cfg.temperature, seed=item_seed,
                         step_max_tokens=cfg.step_max_tokens,
                         rationale_max_tokens=cfg.rationale_max_tokens, max_tokens=None,
                         step_end="turn" if cfg.profile == "reference" else "line",
                         score_decay=decay)
    problem = Problem(item.question, item.task, profile=cfg.profile)
    return strategies.StepState(problem, list(item.steps[:k]), params,
                                step_seed(item_seed, k), 1 << 30, Usage(), Timings(), rid)


async def oracle_rationale(engine: Engine, cfg: RankConfig, state, gold: str) -> str:
    """The extraction prompt of `rationalyst extract --mode insert`, given the
    trajectory so far and the gold step as the next sentence."""
    so_far = prompts.trajectory(state.problem, state.steps)
    prompt = engine.render(making_prompts.insert_messages(so_far, gold))
    gen = await engine.generate(prompt, cfg.oracle_max_tokens, ["\n"],
                                f"{state.request_id}-oracle")
    return split.clean_rationale(gen.completions[0].text)


async def trained_rationale(engine: Engine, cfg: RankConfig, item: Item, k: int,
                            item_seed: int) -> str:
    """The server's rationale call (strategies._rationale) on another checkpoint."""
    state = _state(cfg, item, k, item_seed, f"{item.id}-{k}-trained")
    return await strategies._rationale(state, Engines(engine, engine, engine))


async def _scored(engine: Engine, state, cands: list[str], rationale: str):
    """Scores (per decay) and computed tokens from the server's rationalyst strategy."""
    rec = _Recording(engine)
    engines = Engines(_Replay(engine, cands), _Replay(engine, [rationale]), rec)
    choice = await strategies.rationalyst(state, engines)
    got = [c.score for c in choice.candidates]
    lps = rec.last.token_logprobs
    # The strategy's own scores are the plain means of the recorded log-probs.
    assert got == [decayed_mean(x, 1.0) for x in lps], "replay lost the candidate order"
    return ({str(d): [decayed_mean(x, d) for x in lps] for d in DECAYS},
            state.usage.scored_tokens, [len(x) for x in lps])


async def rank_step(engine: Engine, cfg: RankConfig, item: Item, k: int, item_seed: int,
                    trained: str | None) -> dict | None:
    """One gold step ranked under every source; None when no distinct sample is left."""
    rid = f"{item.id}-{k}"
    state = _state(cfg, item, k, item_seed, rid)
    gold = item.steps[k]
    gen = await strategies._sample(state, Engines(engine, engine, engine))
    cands, dropped = candidates(gold, [c.text for c in gen.completions])
    rec = {"item": item.id, "dataset": item.dataset, "k": k, "gold": cands[0],
           "candidates": cands, "dropped": dropped}
    if len(cands) < 2:
        return {**rec, "skipped": "no distinct sample"}
    stand_in, oracle = await gather_or_cancel(
        strategies._rationale(state, Engines(engine, engine, engine)),
        oracle_rationale(engine, cfg, state, gold))
    rationales = {"blank": "", "stand-in": stand_in, "oracle": oracle}
    if trained is not None:
        rationales["trained"] = trained
    none = await engine.score(engine.render(prompts.agent_messages(state.problem,
                                                                   state.steps)),
                              cands, f"{rid}-none")
    scores = {"none": {str(d): [decayed_mean(x, d) for x in none.token_logprobs]
                       for d in DECAYS}}
    tokens = {"none": none.computed_tokens}
    lengths = [len(x) for x in none.token_logprobs]
    for src, r in rationales.items():
        st = _state(cfg, item, k, item_seed, f"{rid}-{src}")
        scores[src], tokens[src], lengths = await _scored(engine, st, cands, r)
    return {**rec, "rationales": rationales,
            "oracle_leak": split.is_leak(oracle, gold, LEAK_THRESHOLD),
            "candidate_tokens": lengths, "scores": scores, "scored_tokens": tokens,
            "top1": {src: {d: top1(v) for d, v in s.items()} for src, s in scores.items()}}


# ---- the run -------------------------------------------------------------------------

Opener = Callable[[], Awaitable[Engine]]


def _seed(cfg: RankConfig, index: int) -> int:
    return cfg.seed + index  # item i gets seed + i, as `rationalyst eval`


async def _each_item(items, done: set[str], work, concurrency: int, desc: str,
                     progress: bool) -> None:
    from tqdm import tqdm

    pending = iter([(i, it) for i, it in enumerate(items) if it.id not in done])
    bar = tqdm(total=len(items), initial=len(done & {it.id for it in items}), desc=desc,
               unit="item", disable=not progress)

    async def worker():
        for i, it in pending:
            await work(i, it)
            bar.update(1)

    try:
        await gather_or_cancel(*(worker() for _ in range(max(1, concurrency))))
    finally:
        bar.close()


async def run(items: list[Item], out: Path, cfg: RankConfig, open_agent: Opener,
              open_trained: Opener | None = None, concurrency: int = 4,
              progress: bool = True) -> dict:
    """Phase 1 (if a trained model): its rationales for every gold prefix. Phase 2: the
    agent samples, writes the stand-in and oracle rationales, and scores every source.
    One engine at a time; both phases append per item and resume where they stopped."""
    out.mkdir(parents=True, exist_ok=True)
    walls = json.loads((out / "timing.json").read_text()) if (out / "timing.json").exists() \
        else {}
    trained: dict[str, str] = {}
    if open_trained is not None:
        path = out / "trained_rationales.jsonl"
        trained = {r["key"]: r["rationale"] for r in read_jsonl(path)}
        done = {it.id for it in items if all(f"{it.id}#{k}" in trained
                                             for k in range(len(it.steps)))}
        if len(done) < len(items):
            t0, eng, app = time.perf_counter(), await open_trained(), Appender(path)
            try:
                async def work(i, it):
                    outs = await gather_or_cancel(*(trained_rationale(
                        eng, cfg, it, k, _seed(cfg, i)) for k in range(len(it.steps))))
                    rows = [{"key": f"{it.id}#{k}", "rationale": r}
                            for k, r in enumerate(outs)]
                    app.write(rows)
                    trained.update({r["key"]: r["rationale"] for r in rows})
                await _each_item(items, done, work, concurrency, "trained rationales",
                                 progress)
            finally:
                app.close()
                await eng.close()
            walls["trained_s"] = walls.get("trained_s", 0) + time.perf_counter() - t0
    path = out / "steps.jsonl"
    done = {r["item"] for r in read_jsonl(out / "items.jsonl")}
    t0, eng = time.perf_counter(), await open_agent()
    steps_app, items_app = Appender(path), Appender(out / "items.jsonl")
    try:
        async def work(i, it):
            rows = await gather_or_cancel(*(rank_step(
                eng, cfg, it, k, _seed(cfg, i),
                trained.get(f"{it.id}#{k}") if open_trained else None)
                for k in range(len(it.steps))))
            steps_app.write(rows)  # steps first, then the record that marks the item done
            items_app.write([{"item": it.id, "steps": len(rows)}])
        await _each_item(items, done, work, concurrency, "rank", progress)
    finally:
        steps_app.close()
        items_app.close()
        await eng.close()
        walls["agent_s"] = walls.get("agent_s", 0) + time.perf_counter() - t0
        (out / "timing.json").write_text(json.dumps(walls, indent=1) + "\n")
    return walls


def config_record(cfg: RankConfig, **extra) -> dict:
    return {**asdict(cfg), **extra}
