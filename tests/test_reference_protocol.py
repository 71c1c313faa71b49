"""The paper's protocol per dataset (issue 24): the reference's own GSM8K draw, ECQA's
structure, our HellaSwag protocol, the `dataset` request field and its errors, and
`rationalyst prompts` (its committed renderings included). No engine here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from rationalyst.cli import prompts_cmd
from rationalyst.clients import datasets
from rationalyst.protocol import DATASETS, SolveRequest
from rationalyst.server.openai_protocol import ChatCompletionRequest
from rationalyst.supervisor import handwritten_shots, profiles, prompts
from rationalyst.supervisor.settings import Settings

REPO = Path(__file__).resolve().parents[1]
S = Settings()


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


def _shots(msgs: list[dict]) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for m in msgs:
        if m["role"] == "user":
            out.append((m["content"], []))
        elif m["role"] == "assistant" and out:
            out[-1][1].append(m["content"])
    return out


def test_gsm8k_shots_are_the_reference_draw_in_drawn_order():
    np.random.seed(14)  # the reference's call, on the 7,473 train items in source order
    drawn = np.random.choice(profiles.GSM8K_TRAIN_SIZE, 9, replace=False)
    assert (
        tuple(int(i) for i in drawn)
        == profiles.GSM8K_DRAW
        == (4396, 675, 1062, 3312, 7420, 932, 6625, 3489, 364)
    )
    train = {it["id"]: it for it in _jsonl(S.fewshot_dir / "gsm8k_train.jsonl")}
    wanted = [train[f"gsm8k-train-{i}"]["question"] for i in drawn]
    out = prompts_cmd.build(prompts_cmd.PromptsOptions(dataset="gsm8k"))
    users = [m["content"] for m in out["agent"] if m["role"] == "user"]
    assert out["agent"][0]["role"] == "user"  # no system prompt
    assert users[:-1] == [f"Question: {q.strip()}\nAnswer:" for q in wanted]
    assert out["step_end"] == "turn" and out["caps"]["max_tokens"] is None


def test_mmlu_order_is_the_reference_draw_of_five():
    np.random.seed(14)
    assert tuple(int(i) for i in np.random.choice(5, 5, replace=False)) == profiles.MMLU_ORDER


def test_ecqa_structure_one_turn_per_choice_answer_last():
    msgs = prompts.agent_messages(_problem("commonsenseqa", list("abcde")), [])
    assert msgs[0]["role"] == "system" and "ONE" not in msgs[0]["content"]
    data = _jsonl(profiles.SHOTS_DIR / "commonsenseqa_train.jsonl")
    dev = {it["id"] for it in _jsonl(S.benchmark_dir / "commonsenseqa.jsonl")}
    shots = _shots(msgs[1:])[:-1]
    assert len(shots) == len(data) == 8
    for (user, turns), item in zip(shots, data):
        assert item["id"] not in dev  # train items, outside the 1,221 evaluated
        assert user == profiles.question_text(item["question"], item["choices"])
        assert len(turns) == len(item["choices"]) + 1
        at = ord(item["answer"]) - 65
        assert turns[at] == " ".join(item["positives"])
        assert [t for i, t in enumerate(turns[:-1]) if i != at] == item["negatives"]
        assert turns[-1] == f" The answer is: {item['answer']}"  # the reference's space


def test_hellaswag_is_ours_turn_steps_shots_left_out_of_the_evaluation():
    msgs = prompts.agent_messages(_problem("hellaswag", list("abcd")), [])
    shots = _shots(msgs[1:])[:-1]
    assert len(shots) == len(handwritten_shots.HELLASWAG) == 4
    bench = datasets.get("hellaswag")
    assert bench.exclude == profiles.HELLASWAG_SHOT_IDS
    items = {it["id"]: it for it in _jsonl(S.benchmark_dir / "hellaswag.jsonl")}
    for (user, turns), (item_id, _) in zip(shots, handwritten_shots.HELLASWAG):
        assert turns[-1] == f"The answer is: {items[item_id]['answer']}"
        assert len(turns) == 5 and user.startswith("Question: Which ending")
    evaluated = {it["id"] for it in datasets.load_items(bench, S.benchmark_dir)}
    assert len(evaluated) == 10042 - 4 and not evaluated & bench.exclude


def test_math_shots_are_train_problems_and_the_eval_can_run_all_5000():
    assert datasets.get("math_full").file == "math.jsonl"
    assert datasets.get("math_full").request({"question": "q"}, "reference")["dataset"] == "math"
    tested = {" ".join(it["question"].split()) for it in _jsonl(S.benchmark_dir / "math.jsonl")}
    shots = _jsonl(profiles.SHOTS_DIR / "math_train.jsonl")
    assert len(shots) == 5 and not {" ".join(s["question"].split()) for s in shots} & tested


def _problem(dataset: str, choices=None, question: str = "Q?"):
    req = SolveRequest(
        question=question,
        choices=choices,
        profile="reference",
        dataset=dataset,
        category="law" if dataset == "mmlu_pro" else None,
    )
    from rationalyst.supervisor.types import Problem

    return Problem(
        req.question,
        req.task,
        tuple(choices) if choices else None,
        profile="reference",
        category=req.category,
        dataset=dataset,
    )


def test_dataset_field_implies_the_task_and_refuses_mismatches():
    assert SolveRequest(question="q", dataset="math").task == "math_boxed"
    assert SolveRequest(question="q", dataset="proofwriter").task == "true_false"
    with pytest.raises(ValidationError, match="unknown dataset 'ecqa'; choose from gsm8k"):
        SolveRequest(question="q", dataset="ecqa")
    with pytest.raises(ValidationError, match="dataset 'gsm8k' is task 'math'"):
        SolveRequest(question="q", dataset="gsm8k", task="math_boxed")
    with pytest.raises(ValidationError, match="needs a 'choices' list"):
        SolveRequest(question="q", dataset="hellaswag")
    with pytest.raises(ValidationError, match="needs the question's 'category'"):
        SolveRequest(question="q", choices=["a", "b"], dataset="mmlu_pro", profile="reference")
    # /v1's extra body: the same field, the task follows from it there too.
    chat = ChatCompletionRequest(
        model="rationalyst", dataset="math", messages=[{"role": "user", "content": "q"}]
    )
    assert chat.task == "math_boxed"
    with pytest.raises(ValidationError, match=", ".join(DATASETS)):
        ChatCompletionRequest(
            model="rationalyst", dataset="nope", messages=[{"role": "user", "content": "q"}]
        )


def test_scorer_prompt_asks_for_text_consistent_with_rationales():
    system = prompts.scorer_messages(_problem("gsm8k"), [], "r")[0]["content"]
    assert "agrees with the rationales and with the text that comes before" in system


def test_committed_renderings_match_the_command():
    for name in DATASETS:
        committed = json.loads((REPO / "docs/reference-prompts" / f"{name}.json").read_text())
        assert committed == prompts_cmd.build(prompts_cmd.PromptsOptions(dataset=name)), name


def test_prompts_cli_flags_come_from_the_model():
    run = [sys.executable, "-m", "rationalyst.cli", "prompts"]
    bad = subprocess.run(
        [*run, "--dataset", "gsm8k", "--index", "-1"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "--index" in bad.stderr
    ok = subprocess.run(
        [*run, "--dataset", "proofwriter", "--index", "2", "--profile", "generic"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert "step_end=line" in ok.stdout and "<candidate step>" in ok.stdout


def test_shot_files_ship_as_package_data():
    text = (REPO / "pyproject.toml").read_text()
    assert '"rationalyst.supervisor" = ["shots/*.jsonl", "shots/*.md"]' in text
    assert (profiles.SHOTS_DIR / "SOURCES.md").exists()


def test_eval_sends_the_dataset_and_takes_score_decay():
    from rationalyst.cli import eval_cmd, flags, main

    args = main.parser(["eval"]).parse_args(["eval", "--dataset", "gsm8k", "--score-decay", "0.9"])
    assert eval_cmd.request_fields(flags.options(args)) == {"score_decay": 0.9}
    item = {"id": "x", "question": "q", "choices": ["a", "b"], "category": "law"}
    assert datasets.get("mmlu_pro").request(item, "reference")["dataset"] == "mmlu_pro"
    assert datasets.get("commonsenseqa").request(item, "reference")["profile"] == "reference"
    assert "dataset" not in datasets.get("strategyqa").request(
        {"question": "q", "answer": "yes"}, "reference"
    )
