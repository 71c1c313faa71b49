"""Turn steps and the reference profile on real engines: the tiny model in-process for
the stop mechanics, a real server of the default model (small turn caps) for /solve per
dataset. One scripted-engine test checks the loop's budget arithmetic (max_tokens None)."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest

from harness import read_items, serve
from rationalyst.supervisor.engine import Engines, SampleParams
from rationalyst.supervisor.loop import solve_all
from rationalyst.supervisor.scripted_engine import ScriptedEngine
from rationalyst.supervisor.strategies.base import STEP_STOP
from rationalyst.supervisor.types import Problem, SolveParams

pytestmark = pytest.mark.vllm  # the real engine (the session `server`)


async def test_turn_steps_keep_newlines_and_end_at_end_of_turn(tiny_engine):
    """Real vLLM: the same seeded samples cut at the first newline (line) or kept
    whole across lines (turn), each turn ending at an end-of-turn id or the cap."""
    eot = tiny_engine.end_of_turn_ids
    assert tiny_engine.tokenizer.convert_tokens_to_ids("<|im_end|>") in eot
    prompt = tiny_engine.render([{"role": "user", "content": "Write three lines."}])
    common = dict(n=8, temperature=1.5, max_tokens=96, seed=5)
    turn = await tiny_engine.sample(
        prompt, SampleParams(stop=(), stop_token_ids=eot, **common), "turn"
    )
    line = await tiny_engine.sample(prompt, SampleParams(stop=STEP_STOP, **common), "line")
    assert any("\n" in c.text.strip() for c in turn.completions)  # multi-line turns
    assert not any("\n" in c.text for c in line.completions)
    for t, ln in zip(turn.completions, line.completions):
        assert t.text.startswith(ln.text)  # same draw; the line one is cut earlier
        assert t.finish_reason in ("stop", "length")
        if t.finish_reason == "stop":
            assert t.num_tokens < 96


async def test_turn_mode_passes_end_of_turn_ids_and_no_budget():
    """Scripted engine (loop logic only): turn steps send the end-of-turn ids and no
    newline stop, keep a multi-line candidate whole, and max_tokens None never ends the
    solve for budget."""
    eng = ScriptedEngine(steps=lambda prompt, n, seed: ["First line.\nSecond line."] * n)
    eng.end_of_turn_ids = (2, 7)
    problem = Problem("What is 2 + 3?", "math")
    params = SolveParams(
        strategy="rationalyst",
        num_candidates=2,
        max_steps=3,
        seed=1,
        step_end="turn",
        step_max_tokens=1000,
        rationale_max_tokens=1000,
        max_tokens=None,
    )
    result = await solve_all(problem, params, Engines(eng, eng, eng))
    assert result.finish_reason == "max_steps" and len(result.steps) == 3
    assert result.steps[0].text == "First line.\nSecond line."
    samples = [inputs["params"] for kind, _, inputs in eng.requests if kind == "sample"]
    assert all(p.stop == () and p.stop_token_ids == (2, 7) for p in samples)
    # The same solve under a small budget stops for it; lines cut at the newline.
    eng2 = ScriptedEngine(steps=lambda prompt, n, seed: ["First line.\nSecond line."] * n)
    tight = SolveParams(strategy="rationalyst", num_candidates=2, max_steps=3, seed=1, max_tokens=8)
    r2 = await solve_all(problem, tight, Engines(eng2, eng2, eng2))
    assert r2.finish_reason == "budget" and r2.steps[0].text == "First line."


# ---- /solve with the reference profile on the real default model ------------------
# One server for the module, with small turn caps: a turn step may run to 1,000 tokens
# (the reference's), and these tests check the protocol's semantics, not CPU speed (on
# a loaded 2-core machine each decoded token of a step costs about a second). Hence no
# deadline in the request either: a slow machine would end the solve with "timeout".
SMALL_TURN = 8


@pytest.fixture(scope="module")
def small_server(default_model, tmp_path_factory):
    with serve(
        tmp_path_factory.mktemp("ref") / "server.log", "--turn-max-tokens", str(SMALL_TURN)
    ) as url:
        yield SimpleNamespace(url=url)


def _dataset_requests() -> list[tuple[str, dict]]:
    gsm = read_items("gsm8k", 1)[0]
    arc = read_items("arc_challenge", 1)[0]
    mmlu = read_items("mmlu_pro", 1)[0]
    pw = read_items("proofwriter", 1)[0]
    csqa = read_items("commonsenseqa", 1)[0]
    hs = read_items("hellaswag", 1)[0]
    return [
        ("gsm8k", {"question": gsm["question"]}),
        ("math", {"question": "What is $1 + 2$?"}),
        ("commonsenseqa", {"question": csqa["question"], "choices": csqa["choices"]}),
        ("hellaswag", {"question": hs["question"], "choices": hs["choices"]}),
        ("arc_challenge", {"question": arc["question"], "choices": arc["choices"]}),
        (
            "mmlu_pro",
            {
                "question": mmlu["question"],
                "choices": mmlu["choices"],
                "category": mmlu["category"],
            },
        ),
        ("proofwriter", {"question": pw["question"]}),
    ]


@pytest.mark.vllm
@pytest.mark.parametrize(
    "dataset,fields", _dataset_requests(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_solve_reference_profile_per_dataset(small_server, dataset, fields):
    """A seeded solve per dataset under its own reference prompt: a whole-turn step
    (cut here at the small cap), its rationale and scored candidates. One step: the
    prompts are long (up to nine shots), and prefill is what a CPU pays for."""
    body = {
        **fields,
        "dataset": dataset,
        "profile": "reference",
        "max_tokens": None,
        "num_candidates": 2,
        "max_steps": 1,
        "seed": 14,
    }
    r = httpx.post(small_server.url + "/solve", json=body, timeout=600)  # a hang guard
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["finish_reason"] in ("answer", "max_steps"), (res["finish_reason"], res["timings"])
    assert len(res["steps"]) == 1
    step = res["steps"][0]
    assert step["rationale"] is not None and len(step["candidates"]) == 2
    assert all(c["score"] is not None for c in step["candidates"])
    # Turn steps: each candidate ran to the end of its turn or to the turn cap.
    assert 0 < res["usage"]["agent_completion_tokens"] <= 2 * SMALL_TURN


@pytest.mark.vllm
def test_unknown_dataset_is_a_4xx_listing_the_valid_ones(small_server):
    r = httpx.post(
        small_server.url + "/solve",
        json={"question": "q", "profile": "reference", "dataset": "ecqa"},
        timeout=60,
    )
    assert r.status_code == 422 and "choose from gsm8k, math, commonsenseqa" in r.text


@pytest.mark.vllm
def test_reference_profile_bad_category_is_a_clear_422(small_server):
    r = httpx.post(
        small_server.url + "/solve",
        json={
            "question": "q",
            "choices": ["a", "b"],
            "profile": "reference",
            "category": "cooking",
        },
        timeout=60,
    )
    assert r.status_code == 422 and "unknown category" in r.text


@pytest.mark.vllm
def test_v1_takes_profile_category_and_dataset_in_extra_body(small_server):
    """The official openai client: a reference-profile solve through /v1, and a
    category without the reference profile is a 400 naming the fix."""
    import openai

    with openai.OpenAI(
        base_url=small_server.url + "/v1", api_key="unused", max_retries=0, timeout=900
    ) as client:
        done = client.chat.completions.create(
            model="greedy",
            messages=[{"role": "user", "content": "What is 2 + 3?"}],
            extra_body={"profile": "reference", "max_steps": 1, "seed": 14},
        )
        assert done.choices[0].message.content
        assert done.model_extra["rationalyst"]["steps"]
        boxed = client.chat.completions.create(  # dataset 'math' implies math_boxed
            model="greedy",
            messages=[{"role": "user", "content": "What is $1 + 2$?"}],
            extra_body={"profile": "reference", "dataset": "math", "max_steps": 1, "seed": 14},
        )
        assert boxed.model_extra["rationalyst"]["steps"]
        with pytest.raises(openai.BadRequestError, match="unknown dataset"):
            client.chat.completions.create(
                model="rationalyst",
                messages=[{"role": "user", "content": "Q?"}],
                extra_body={"dataset": "ecqa"},
            )
        with pytest.raises(openai.BadRequestError, match="profile"):
            client.chat.completions.create(
                model="rationalyst",
                messages=[{"role": "user", "content": "Q?"}],
                extra_body={"choices": ["a", "b"], "category": "law"},
            )
