"""Question/answer items as the server renders them for RATIONALYST.

The server's rationale call reads `prompts.trajectory(problem, steps)`: the question's
user turn ("Question: q\\n[Choices: A - ... B - ...\\n]Answer:") and the agent's steps
joined by a space. `rationalyst extract` builds its question/answer prefixes with that
same function, so what training conditions on is what the server sends, by construction.
A worked solution becomes steps the way the agent writes them: GSM8K as the profile
splits it (one line per step, no calculator annotations, "#### 18" as the server's
answer line); other solutions one sentence per step, never cut inside display maths or
code (split.sentences).
"""

from __future__ import annotations

from collections.abc import Sequence

from rationalyst.protocol import DATASET_TASKS
from rationalyst.supervisor import profiles, prompts
from rationalyst.supervisor.types import Problem

from . import split


def dataset_of(item_id: str, solution: str, dataset: str | None = None) -> str | None:
    """The item's benchmark: the input's `dataset` field, else its id's prefix
    ("gsm8k-train-12", "math-test-4"), else GSM8K when the solution ends "#### x"."""
    if dataset:
        return dataset
    head = item_id.split("-", 1)[0].lower()
    if head in DATASET_TASKS:
        return head
    return "gsm8k" if "####" in solution else None


def qa_problem(
    question: str, choices: Sequence[str] | None = None, dataset: str | None = None
) -> Problem:
    """The Problem the server would build for the item. A known dataset takes the
    reference profile (its own layout: ProofWriter, HellaSwag); other items the generic
    one. Both render GSM8K, MATH and multiple-choice questions alike."""
    choices = tuple(choices) if choices else None
    if dataset in DATASET_TASKS:
        return Problem(
            question, DATASET_TASKS[dataset], choices, profile="reference", dataset=dataset
        )
    return Problem(question, "multiple_choice" if choices else "math", choices)


def qa_steps(solution: str, dataset: str | None = None) -> tuple[str, ...]:
    """A worked solution as the agent's steps."""
    if dataset == "gsm8k":
        return profiles.gsm8k_steps(solution, calculator=False)
    return tuple(s.strip() for s in split.sentences(solution.strip()) if s.strip())


def render_qa(
    question: str, solution: str, choices: Sequence[str] | None = None, dataset: str | None = None
) -> str:
    """The whole item as the server's trajectory after its last step."""
    return prompts.trajectory(qa_problem(question, choices, dataset), qa_steps(solution, dataset))


def qa_boundaries(problem: Problem, steps: Sequence[str]) -> list[tuple[str, str]]:
    """(trajectory so far, next step) where the server asks for a rationale: after the
    question, then between steps; never inside the question."""
    return [(prompts.trajectory(problem, steps[:i]), steps[i]) for i in range(len(steps))]
