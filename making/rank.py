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
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rationalyst.supervisor import prompts
from rationalyst.supervisor.concurrency import gather_or_cancel
from rationalyst.supervisor.engine import Completion, Engine, Engines, Generation, decayed_mean
from rationalyst.supervisor.loop import step_seed
from rationalyst.supervisor.strategies import base as strategies
from rationalyst.supervisor.strategies.rationalyst import rationalyst
from rationalyst.supervisor.types import Problem, SolveParams, Timings, Usage

from . import prompts as making_prompts
from . import split
from .documents import InputError

# The items live in rank_items.py; `rank.load_items` etc. stay the way to reach them.
from .rank_items import Item, gsm8k_steps, load_items, math_steps  # noqa: F401
from .store import Appender, read_jsonl

SOURCES = ("none", "blank", "stand-in", "trained", "oracle")
DECAYS = (1.0, 0.9)
LEAK_THRESHOLD = 0.7  # extract's default: an oracle this close to the gold step leaks it


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

    async def sample(self, prompt, params, request_id, **_) -> Generation:
        return self._gen()

    async def generate(self, prompt, max_tokens, stop, request_id, **_) -> Generation:
        return self._gen()


class _Recording:
    """The real scorer, keeping what its last score call returned."""

    def __init__(self, real: Engine):
        self.real, self.last = real, None

    def __getattr__(self, name):
        return getattr(self.real, name)

    async def score(self, prefix, continuations, request_id, **kw):
        self.last = await self.real.score(prefix, continuations, request_id, **kw)
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


def _state(
    cfg: RankConfig, item: Item, k: int, item_seed: int, rid: str, decay: float = 1.0
) -> strategies.StepState:
    params = SolveParams(
        num_candidates=max(1, cfg.num_candidates - 1),
        temperature=cfg.temperature,
        seed=item_seed,
        step_max_tokens=cfg.step_max_tokens,
        rationale_max_tokens=cfg.rationale_max_tokens,
        max_tokens=None,
        step_end="turn" if cfg.profile == "reference" else "line",
        score_decay=decay,
    )
    problem = Problem(item.question, item.task, profile=cfg.profile)
    return strategies.StepState(
        problem,
        list(item.steps[:k]),
        params,
        step_seed(item_seed, k),
        1 << 30,
        Usage(),
        Timings(),
        rid,
        str(item.id),
    )  # its calls share a session: one replica


async def oracle_rationale(engine: Engine, cfg: RankConfig, state, gold: str) -> str:
    """The extraction prompt of `rationalyst extract --mode insert`, given the
    trajectory so far and the gold step as the next sentence."""
    so_far = prompts.trajectory(state.problem, state.steps)
    prompt = engine.render(making_prompts.insert_messages(so_far, gold))
    gen = await engine.generate(prompt, cfg.oracle_max_tokens, ["\n"], f"{state.request_id}-oracle")
    return split.clean_rationale(gen.completions[0].text)


async def trained_rationale(
    engine: Engine, cfg: RankConfig, item: Item, k: int, item_seed: int
) -> str:
    """The server's rationale call (strategies.write_rationale) on another checkpoint."""
    state = _state(cfg, item, k, item_seed, f"{item.id}-{k}-trained")
    return await strategies.write_rationale(state, Engines(engine, engine, engine))


async def _scored(engine: Engine, state, cands: list[str], rationale: str):
    """Scores (per decay) and computed tokens from the server's rationalyst strategy."""
    rec = _Recording(engine)
    engines = Engines(_Replay(engine, cands), _Replay(engine, [rationale]), rec)
    choice = await rationalyst(state, engines)
    got = [c.score for c in choice.candidates]
    lps = rec.last.token_logprobs
    # The strategy's own scores are the plain means of the recorded log-probs.
    if got != [decayed_mean(x, 1.0) for x in lps]:
        raise RuntimeError("rank: the replay lost the candidate order")
    return (
        {str(d): [decayed_mean(x, d) for x in lps] for d in DECAYS},
        state.usage.scored_tokens,
        [len(x) for x in lps],
    )


async def rank_step(engine: Engine, cfg: RankConfig, item: Item, k: int, item_seed: int) -> dict:
    """One gold step ranked under every source; None when no distinct sample is left."""
    rid = f"{item.id}-{k}"
    state = _state(cfg, item, k, item_seed, rid)
    gold = item.steps[k]
    gen = await strategies.sample(state, Engines(engine, engine, engine))
    cands, dropped = candidates(gold, [c.text for c in gen.completions])
    rec = {
        "item": item.id,
        "dataset": item.dataset,
        "k": k,
        "gold": cands[0],
        "candidates": cands,
        "dropped": dropped,
    }
    if len(cands) < 2:
        return {**rec, "skipped": "no distinct sample"}
    stand_in, oracle = await gather_or_cancel(
        strategies.write_rationale(state, Engines(engine, engine, engine)),
        oracle_rationale(engine, cfg, state, gold),
    )
    rationales = {"blank": "", "stand-in": stand_in, "oracle": oracle}
    none = await engine.score(
        engine.render(prompts.agent_messages(state.problem, state.steps)), cands, f"{rid}-none"
    )
    scores = {"none": {str(d): [decayed_mean(x, d) for x in none.token_logprobs] for d in DECAYS}}
    tokens = {"none": none.computed_tokens}
    lengths = [len(x) for x in none.token_logprobs]
    for src, r in rationales.items():
        st = _state(cfg, item, k, item_seed, f"{rid}-{src}")
        scores[src], tokens[src], lengths = await _scored(engine, st, cands, r)
    return {
        **rec,
        "rationales": rationales,
        "oracle_leak": split.is_leak(oracle, gold, LEAK_THRESHOLD),
        "candidate_tokens": lengths,
        "scores": scores,
        "scored_tokens": tokens,
        "top1": {src: {d: top1(v) for d, v in s.items()} for src, s in scores.items()},
    }


# ---- the run -------------------------------------------------------------------------

Opener = Callable[[], Awaitable[Engine]]


def _seed(cfg: RankConfig, index: int) -> int:
    return cfg.seed + index  # item i gets seed + i, as `rationalyst eval`


def _key(item_id: str, k: int) -> str:
    return f"{item_id}#{k}"


async def _phase(
    out: Path,
    walls: dict,
    name: str,
    open_engine: Opener,
    todo: list,
    work,
    concurrency: int,
    progress: bool,
) -> None:
    """Open one engine, run `work(engine, job)` over `todo`, close it; time it."""
    if not todo:
        return
    from tqdm import tqdm

    t0, eng = time.perf_counter(), await open_engine()
    jobs = iter(todo)
    bar = tqdm(total=len(todo), desc=name, unit="item", disable=not progress)

    async def worker():
        for job in jobs:  # one shared iterator: each job goes to one worker
            await work(eng, job)
            bar.update(1)

    try:
        await gather_or_cancel(*(worker() for _ in range(max(1, concurrency))))
    finally:
        bar.close()
        await eng.close()
        walls[name] = walls.get(name, 0) + time.perf_counter() - t0
        (out / "timing.json").write_text(json.dumps(walls, indent=1) + "\n")


async def run(
    items: list[Item],
    out: Path,
    cfg: RankConfig,
    open_agent: Opener,
    open_trained: Opener | None = None,
    concurrency: int = 4,
    progress: bool = True,
) -> dict:
    """Phase `rank` (the agent): sample, write the stand-in and oracle rationales, score
    those sources. With a trained model, on the same steps and candidates: phase
    `trained rationales` (that model), then `trained scoring` (the agent again). One
    engine at a time; every phase appends per item and resumes where it stopped, so a
    trained model can also be added to a finished run."""
    out.mkdir(parents=True, exist_ok=True)
    timing = out / "timing.json"
    walls = json.loads(timing.read_text()) if timing.exists() else {}
    seeds = {it.id: _seed(cfg, i) for i, it in enumerate(items)}
    done = {r["item"] for r in read_jsonl(out / "items.jsonl")}
    steps_app, items_app = Appender(out / "steps.jsonl"), Appender(out / "items.jsonl")

    async def rank_item(eng, it):
        rows = await gather_or_cancel(
            *(rank_step(eng, cfg, it, k, seeds[it.id]) for k in range(len(it.steps)))
        )
        steps_app.write(rows)  # steps first, then the record that marks the item done
        items_app.write([{"item": it.id, "steps": len(rows)}])

    try:
        await _phase(
            out,
            walls,
            "rank",
            open_agent,
            [it for it in items if it.id not in done],
            rank_item,
            concurrency,
            progress,
        )
    finally:
        steps_app.close()
        items_app.close()
    if open_trained is None:
        return walls
    await add_trained(items, out, cfg, open_agent, open_trained, walls, concurrency, progress)
    return walls


async def add_trained(
    items, out, cfg, open_agent, open_trained, walls, concurrency, progress
) -> None:
    done = {r["item"] for r in read_jsonl(out / "items.jsonl")}
    by_id = {it.id: it for it in items}
    seeds = {it.id: _seed(cfg, i) for i, it in enumerate(items)}
    steps = [
        r
        for r in read_jsonl(out / "steps.jsonl")
        if r["item"] in done and r["item"] in by_id and "skipped" not in r
    ]
    check_golds(steps, by_id)
    rat_path, score_path = out / "trained_rationales.jsonl", out / "trained_scores.jsonl"
    rats = {r["key"]: r["rationale"] for r in read_jsonl(rat_path)}

    def jobs(have) -> list[list[dict]]:
        per: dict[str, list[dict]] = {}
        for r in steps:
            if _key(r["item"], r["k"]) not in have:
                per.setdefault(r["item"], []).append(r)
        return list(per.values())

    app = Appender(rat_path)

    async def rationales(eng, rows):
        outs = await gather_or_cancel(
            *(trained_rationale(eng, cfg, by_id[r["item"]], r["k"], seeds[r["item"]]) for r in rows)
        )
        new = [{"key": _key(r["item"], r["k"]), "rationale": t} for r, t in zip(rows, outs)]
        app.write(new)
        rats.update({n["key"]: n["rationale"] for n in new})

    try:
        await _phase(
            out,
            walls,
            "trained rationales",
            open_trained,
            jobs(rats),
            rationales,
            concurrency,
            progress,
        )
    finally:
        app.close()
    scored = {r["key"] for r in read_jsonl(score_path)}
    app = Appender(score_path)

    async def score(eng, rows):
        async def one(r):
            it, key = by_id[r["item"]], _key(r["item"], r["k"])
            st = _state(cfg, it, r["k"], seeds[it.id], f"{key}-trained")
            sc, tok, _ = await _scored(eng, st, r["candidates"], rats[key])
            return {"key": key, "rationale": rats[key], "scores": sc, "scored_tokens": tok}

        app.write(await gather_or_cancel(*(one(r) for r in rows)))

    try:
        await _phase(
            out, walls, "trained scoring", open_agent, jobs(scored), score, concurrency, progress
        )
    finally:
        app.close()


def check_golds(steps: list[dict], by_id: dict[str, Item]) -> None:
    """The trained rationale reads an item's steps before k: they must be the ones the
    run ranked, or its rationales would not belong to the recorded candidates."""
    changed = [
        _key(r["item"], r["k"])
        for r in steps
        if r["item"] in by_id
        and (
            r["k"] >= len(by_id[r["item"]].steps)
            or _norm(by_id[r["item"]].steps[r["k"]]) != r["gold"]
        )
    ]
    if changed:
        raise InputError(
            f"{len(changed)} gold steps differ from the run's (first: "
            f"{changed[0]}): the items changed since; use another --out"
        )


def drop_trained(out: Path) -> None:
    """Forget the trained source (its rationales, scores and phase times), so that
    another checkpoint takes its place on the same steps."""
    for name in ("trained_rationales.jsonl", "trained_scores.jsonl"):
        (out / name).unlink(missing_ok=True)
    timing = out / "timing.json"
    if timing.exists():
        walls = {
            k: v for k, v in json.loads(timing.read_text()).items() if not k.startswith("trained")
        }
        timing.write_text(json.dumps(walls, indent=1) + "\n")


def merge_trained(out: Path, steps: list[dict]) -> list[dict]:
    """Step records with the trained source's scores folded in, where scored."""
    extra = {r["key"]: r for r in read_jsonl(out / "trained_scores.jsonl")}
    for s in steps:
        t = extra.get(_key(s["item"], s["k"]))
        if t is not None and "scores" in s:
            s["rationales"]["trained"] = t["rationale"]
            s["scores"]["trained"] = t["scores"]
            s["scored_tokens"]["trained"] = t["scored_tokens"]
            s["top1"]["trained"] = {d: top1(v) for d, v in t["scores"].items()}
    return steps


def config_record(cfg: RankConfig, **extra) -> dict:
    return {**asdict(cfg), **extra}
