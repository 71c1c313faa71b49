"""The wire format's names: strategies, tasks, profiles, datasets, finish reasons.

Imported through rationalyst.protocol as well; responses.py reads them too."""

from __future__ import annotations

from typing import Literal, get_args

STRATEGIES = ("rationalyst", "explicit", "random", "greedy", "judge", "prm")
PRM_AGGREGATIONS = ("last", "min", "prod")  # over a trajectory's step scores
TASKS = ("math", "math_boxed", "multiple_choice", "true_false")
# Prompt profiles: "generic" (one prompt per task family, for users' own questions) and
# "reference" (the paper's per-dataset prompts; see supervisor/profiles.py).
PROFILES = ("generic", "reference")
# Where a step ends: at a newline, or at the end of the agent's chat turn (the reference).
STEP_ENDS = ("line", "turn")
# The paper's seven datasets: `dataset` picks the reference profile's prompt for one of
# them (and implies its task family); see supervisor/profiles.py.
DATASET_TASKS = {
    "gsm8k": "math",
    "math": "math_boxed",
    "commonsenseqa": "multiple_choice",
    "hellaswag": "multiple_choice",
    "proofwriter": "true_false",
    "arc_challenge": "multiple_choice",
    "mmlu_pro": "multiple_choice",
}
DATASETS = tuple(DATASET_TASKS)
# MMLU-Pro's categories: the reference profile shows that category's own examples.
CATEGORIES = (
    "biology",
    "business",
    "chemistry",
    "computer science",
    "economics",
    "engineering",
    "health",
    "history",
    "law",
    "math",
    "other",
    "philosophy",
    "physics",
    "psychology",
)
StrategyName = Literal[STRATEGIES]  # type: ignore[valid-type]
# The strategies that score a candidate step (POST /score); greedy and random do not.
SCORERS = ("rationalyst", "explicit", "judge", "prm")
ScorerName = Literal[SCORERS]  # type: ignore[valid-type]
PRMAggregation = Literal[PRM_AGGREGATIONS]  # type: ignore[valid-type]
Profile = Literal[PROFILES]  # type: ignore[valid-type]
StepEnd = Literal[STEP_ENDS]  # type: ignore[valid-type]
Task = Literal[TASKS]  # type: ignore[valid-type]
# "length": the context ran out mid-solve; the steps so far come back. "stop": a stop
# string of the request (/v1's `stop`) appeared; the step is cut before it.
FinishReason = Literal["answer", "max_steps", "budget", "timeout", "length", "stop"]
FINISH_REASONS: tuple[str, ...] = get_args(FinishReason)

# The /v1 model name of each strategy; a strategy not listed is served under its own.
_CHAT_NAMES = {"explicit": "rationalyst-explicit"}
SUPERVISED_MODELS = {_CHAT_NAMES.get(s, s): s for s in STRATEGIES}
