"""One renderer: the text the server sends RATIONALYST before each step is the text
`rationalyst extract` gives training as the preceding text, for a GSM8K, a MATH, a
multiple-choice and a plain-text item.

Server path: the real step loop (rationalyst strategy) on a scripted engine whose agent
writes the item's gold steps; the rationale calls' prompts are recorded. Training path:
the same item as an input JSONL line, read by `read_documents` and extracted in insert
mode on a scripted engine; each triple's preceding text is rendered as `train` renders
it (prompts.rationale_chat). The scripted engine stands in for the models only: both
paths run the real code that builds the text."""

import asyncio
import json

import pytest

from rationalyst.making import extract
from rationalyst.making.documents import read_documents
from rationalyst.making.render import render_qa
from rationalyst.protocol import pick_task
from rationalyst.supervisor import prompts
from rationalyst.supervisor.engine import Engines
from rationalyst.supervisor.loop import solve_all
from rationalyst.supervisor.scripted_engine import ScriptedEngine
from rationalyst.supervisor.types import Problem, SolveParams

GSM8K = {
    "id": "gsm8k-test-7",
    "question": "A shop has 3 boxes of 6 eggs. How many eggs?",
    "choices": None,
    "solution": "Each box has 6 eggs, so 3 boxes have 3*6=<<3*6=18>>18 eggs.\n#### 18",
}
MATH = {
    "id": "math-test-9",
    "question": "What is $2^3$?  Give a number.",
    "choices": None,
    "solution": "We have $2^3 = 2 \\cdot 2 \\cdot 2$. That is $\\boxed{8}$.",
}
CHOICE = {
    "id": "mc-1",
    "question": "Which one is a metal?",
    "choices": ["wood", "iron", "glass"],
    "solution": "Wood and glass are not metals. Iron is a metal. The answer is: B",
}
PLAIN = {
    "id": "sqa-3",
    "question": "Can a cat fly?",
    "choices": None,
    "solution": "No. Cats have no wings.  Nothing else lifts them into the air.",
}
# What the server receives for each: the dataset a benchmark client names, if any.
DATASET = {"gsm8k-test-7": "gsm8k", "math-test-9": "math"}


def server_prompts(item: dict, steps: list[str]) -> list[str]:
    """The rationale prompts of a real solve whose agent writes `steps`."""
    eng = ScriptedEngine(steps=lambda prompt, n, seed: [steps[_step_no(eng)]] * n)
    dataset = DATASET.get(item["id"])
    # Built as server/solve.py builds it from a /solve request.
    problem = Problem(
        question=item["question"].strip(),
        task=pick_task(None, item["choices"])
        if not dataset
        else {"gsm8k": "math", "math": "math_boxed"}[dataset],
        choices=tuple(item["choices"]) if item["choices"] else None,
        profile="reference" if dataset else "generic",
        dataset=dataset,
    )
    params = SolveParams(
        strategy="rationalyst", num_candidates=2, max_steps=len(steps), seed=1, max_tokens=None
    )
    result = asyncio.run(solve_all(problem, params, Engines(eng, eng, eng)))
    assert [s.text for s in result.steps] == steps
    return [inputs["prompt"] for kind, _, inputs in eng.requests if kind == "generate"]


def _step_no(eng: ScriptedEngine) -> int:
    return eng.calls["sample"] - 1  # this sample call's number (one per step)


def training_prompts(item: dict, tmp_path) -> tuple[list[str], list[str]]:
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(item) + "\n")
    docs = read_documents([str(path)])
    eng = ScriptedEngine(generate=lambda p: "Think it through.")
    asyncio.run(extract.run(eng, docs, tmp_path / "run", extract.ExtractConfig(), progress=False))
    rows = [json.loads(x) for x in (tmp_path / "run/triples.jsonl").read_text().splitlines()]
    return (
        [eng.render(prompts.rationale_chat(r["preceding"])) for r in rows],
        [r["following"] for r in rows],
    )


@pytest.mark.parametrize("item", [GSM8K, MATH, CHOICE, PLAIN], ids=lambda it: it["id"])
def test_server_and_training_render_the_same_trajectories(item, tmp_path):
    train, steps = training_prompts(item, tmp_path)
    assert len(train) >= 2  # after the question, then between steps
    assert train == server_prompts(item, steps)


def test_gsm8k_is_normalised_as_the_server_writes_it(tmp_path):
    _, steps = training_prompts(GSM8K, tmp_path)
    assert steps == ["Each box has 6 eggs, so 3 boxes have 3*6=18 eggs.", "The answer is: 18."]
    text = render_qa(GSM8K["question"], GSM8K["solution"], dataset="gsm8k")
    assert "<<" not in text and "####" not in text
    assert text.endswith(
        "Answer: Each box has 6 eggs, so 3 boxes have 3*6=18 eggs. The answer is: 18."
    )


def test_multiple_choice_items_get_the_servers_choices_line():
    text = render_qa(CHOICE["question"], CHOICE["solution"], CHOICE["choices"])
    assert text.startswith(
        "Question: Which one is a metal?\n"
        "Choices: A - wood B - iron C - glass\nAnswer: Wood and glass"
    )
