"""The reference profile's prompts on the real few-shot splits, the request fields that
select it, `####` and letter answers (grading is test_grading_reference.py's). No engine
here: the real-engine checks are in test_profiles_engine.py."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from rationalyst.protocol import SolveRequest
from rationalyst.supervisor import profiles, prompts
from rationalyst.supervisor.answers import extract
from rationalyst.supervisor.settings import Settings
from rationalyst.supervisor.types import Problem

S = Settings()
FEWSHOT, BENCH = S.fewshot_dir, S.benchmark_dir
pytestmark = pytest.mark.skipif(
    not (FEWSHOT / "gsm8k_train.jsonl").exists(), reason="the shared few-shot splits are not here"
)


def _jsonl(path):
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def _shots(messages: list[dict]) -> list[tuple[str, list[str]]]:
    """(user, assistant turns) per user turn, the item's own last."""
    out: list[tuple[str, list[str]]] = []
    for m in messages:
        if m["role"] == "user":
            out.append((m["content"], []))
        elif m["role"] == "assistant":
            out[-1][1].append(m["content"])
    return out


def ref(question, task, choices=None, category=None) -> Problem:
    return Problem(
        question, task, tuple(choices) if choices else None, profile="reference", category=category
    )


def test_gsm8k_no_system_nine_train_shots_one_turn_per_line():
    msgs = prompts.agent_messages(ref("What is 2 + 3?", "math"), ["2 + 3 = 5."])
    assert msgs[0]["role"] == "user"  # no system prompt, as the reference
    shots = _shots(msgs)
    assert len(shots) == 10 and shots[-1] == ("Question: What is 2 + 3?\nAnswer:", ["2 + 3 = 5."])
    train = {
        f"Question: {it['question'].strip()}\nAnswer:": it
        for it in _jsonl(FEWSHOT / "gsm8k_train.jsonl")
    }
    for user, turns in shots[:-1]:
        item = train[user]  # every shot is a train item, verbatim
        lines = [ln for ln in item["solution"].split("\n") if ln.strip()]
        assert len(turns) == len(lines)  # one turn per solution line
        # The reference adds a period to every line without one, the answer line too.
        assert turns[-1] == f"The answer is: {lines[-1][4:].strip()}."
        assert not any("####" in t for t in turns)
    assert any("<<" in t for _, turns in shots[:-1] for t in turns)  # annotations kept
    # The draw is seeded: the same shots every time.
    assert prompts.agent_messages(ref("Other?", "math"), [])[:-1] == msgs[:-2]


def test_math_shots_are_math_train_items_outside_the_test_set():
    msgs = prompts.agent_messages(ref("Find $x$.", "math_boxed"), [])
    assert msgs[0]["role"] == "system" and "one sentence" in msgs[0]["content"]
    shots = _shots(msgs[1:])[:-1]
    assert len(shots) == 5
    tested = {" ".join(it["question"].split()) for it in _jsonl(BENCH / "math.jsonl")}
    for user, turns in shots:
        q = user.removeprefix("Question: ").removesuffix("\nAnswer:")
        assert " ".join(q.split()) not in tested  # none of the 5,000 evaluated items
        assert len(turns) >= 1 and "\\boxed" in " ".join(turns)


def test_arc_seven_handwritten_shots_one_turn_per_choice_golds_agree():
    msgs = prompts.agent_messages(ref("Which?", "multiple_choice", ["a", "b", "c", "d"]), [])
    assert msgs[0]["role"] == "system" and "each choice" in msgs[0]["content"]
    assert "one sentence" not in msgs[0]["content"]  # said only for MATH, ECQA, MMLU-Pro
    shots = _shots(msgs[1:])
    assert len(shots) == 8
    train = {it["id"]: it for it in _jsonl(FEWSHOT / "arc_challenge_train.jsonl")}
    for (user, turns), (item_id, _) in zip(shots, profiles.handwritten_shots.ARC):
        item = train[item_id]
        assert user.startswith("Question: " + item["question"]) and user.endswith("Answer: ")
        assert len(turns) == len(item["choices"]) + 1  # one per choice, then the answer
        assert extract("multiple_choice", turns[-1], item["choices"]) == item["answer"]


def test_mmlu_pro_category_names_the_system_prompt_and_picks_its_examples():
    law = prompts.agent_messages(ref("Q?", "multiple_choice", list("abcd"), "law"), [])
    assert "about law" in law[0]["content"] and "one sentence" in law[0]["content"]
    shots = _shots(law[1:])[:-1]
    val = [it for it in _jsonl(FEWSHOT / "mmlu_pro_validation.jsonl") if it["category"] == "law"]
    assert len(shots) == 5
    val = [val[i] for i in profiles.MMLU_ORDER]  # the reference's seeded order
    for (user, turns), item in zip(shots, val):
        assert user.startswith("Question: " + item["question"].strip())
        # "A: " dropped; split on ". " as the reference, which drops those periods
        assert turns[0] == "Let's think step by step"
        assert turns[-1] == f"The answer is ({item['answer']})."
        assert len(turns) > 2  # the chain of thought, a sentence per turn
    bio = prompts.agent_messages(ref("Q?", "multiple_choice", list("abcd"), "biology"), [])
    assert "about biology" in bio[0]["content"] and _shots(bio[1:])[0] != shots[0]


def test_proofwriter_layout_letters_and_golds_agree():
    dev = {it["id"]: it for it in _jsonl(BENCH / "proofwriter_dev.jsonl")}
    item = next(iter(dev.values()))
    msgs = prompts.agent_messages(ref(item["question"], "true_false"), [])
    assert msgs[0]["role"] == "system"
    shots = _shots(msgs[1:])
    assert len(shots) == 4
    statement = item["statement_prompt"].split("? ", 1)[1]
    assert shots[-1][0] == (
        "Question: Based on the context information, is the following statement true, "
        f"false, or unknown? {statement}\nContext: {item['context']}\n"
        "Choices: A) True B) False C) Unknown\nAnswer: "
    )  # the reference's trailing space
    for (user, turns), (item_id, _) in zip(shots, profiles.handwritten_shots.PROOFWRITER):
        gold = dev[item_id]
        assert f"Context: {gold['context']}" in user
        assert user.endswith("Choices: A - True B - False C - Unknown\nAnswer: ")
        assert turns[-1] == f"The answer is: {gold['answer']}"
        assert extract("true_false", turns[-1]) == gold["choices"][ord(gold["answer"]) - 65]
    # The trajectory RATIONALYST reads uses the same layout.
    assert prompts.trajectory(ref(item["question"], "true_false"), ["s1"]).startswith(
        "Question: Based on the context information"
    )


def test_generic_profile_is_unchanged():
    msgs = prompts.agent_messages(Problem("What is 2 + 3?", "math"), [])
    assert msgs[0]["role"] == "system" and "one sentence" in msgs[0]["content"]
    assert len(_shots(msgs[1:])) == 3


def test_missing_split_names_the_setting(tmp_path):
    profiles.configure(tmp_path, tmp_path)
    try:
        with pytest.raises(profiles.ProfileDataMissing, match="RATIONALYST_FEWSHOT_DIR"):
            prompts.agent_messages(ref("What is 2 + 3?", "math"), [])
    finally:
        profiles.configure(FEWSHOT, BENCH)


def test_request_fields_and_their_errors():
    r = SolveRequest(question="q", choices=["a", "b"], profile="reference", category="law")
    assert (r.profile, r.category, r.step_end, r.max_tokens) == ("reference", "law", None, None)
    assert SolveRequest(question="q").profile == "generic"
    for bad, word in [
        ({"category": "law", "choices": ["a", "b"]}, "profile"),
        ({"profile": "reference", "category": "law"}, "choices"),
        (
            {"profile": "reference", "category": "cooking", "choices": ["a", "b"]},
            "unknown category",
        ),
        ({"profile": "other"}, "profile"),
        ({"step_end": "word"}, "step_end"),
    ]:
        with pytest.raises(ValidationError, match=word):
            SolveRequest(question="q", **bad)


def test_hashes_and_letters_are_answers():
    assert extract("math", "48 + 24 = <<48+24=72>>72 clips.\n#### 72") == "72"
    assert extract("math", "#### no number here") is None  # no answer: the solve goes on
    assert extract("true_false", "The answer is: B") == "False"
    assert extract("true_false", "The answer is: C) Unknown") == "Unknown"
    assert extract("true_false", "The answer is: A cat.") is None
