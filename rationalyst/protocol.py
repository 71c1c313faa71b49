"""The wire format of POST /solve, with its names and defaults: one owner.

Depends only on pydantic, so the server, the supervisor, the clients and the CLI
all import it. To add a strategy, add its name to STRATEGIES in names.py (and its module and
registry line to supervisor/strategies/: docs/design.md); to add a request field,
add it to SolveOptions (it then reaches /solve, /v1 extra_body, the client and the
CLI flags) or to SolveRequest (/solve only), and to supervisor.types.SolveParams
under the same name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The names (names.py) and the response side (responses.py) are part of this wire format.
from rationalyst.names import (  # noqa: F401
    CATEGORIES,
    DATASET_TASKS,
    DATASETS,
    FINISH_REASONS,
    PRM_AGGREGATIONS,
    PROFILES,
    SCORERS,
    STEP_ENDS,
    STRATEGIES,
    SUPERVISED_MODELS,
    TASKS,
    FinishReason,
    PRMAggregation,
    Profile,
    ScorerName,
    StepEnd,
    StrategyName,
    Task,
)
from rationalyst.responses import (  # noqa: F401
    DONE_EVENT,
    ERROR_EVENT,
    STEP_EVENT,
    Candidate,
    ErrorBody,
    ErrorResponse,
    HealthResponse,
    ReplicaStatus,
    SolveResult,
    Step,
    Timings,
    Usage,
    WireModel,
)

# ---- defaults (the server's; clients send them unless told otherwise) -------------

DEFAULT_STRATEGY = "rationalyst"
DEFAULT_NUM_CANDIDATES = 3
DEFAULT_MAX_STEPS = 15
DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 1.0
DEFAULT_SCORE_DECAY = 1.0  # the reference's inference_no_length.py; 0.9 is inference.py

SEED_LIMIT = 2**31 - 1  # seeds are 0 <= seed < SEED_LIMIT
MAX_QUESTION_CHARS = 20_000
MAX_CHOICE_CHARS = 2_000
# Below this a temperature is greedy decoding (vLLM's _SAMPLING_EPS).
GREEDY_TEMPERATURE = 1e-5


def check_sampling(strategy: str, temperature: float, num_candidates: int) -> None:
    """Temperature 0 is greedy decoding: one candidate, nothing to choose between, and
    vLLM refuses n > 1 with it. Refused, naming `temperature`, rather than quietly run
    unsupervised (see docs/api.md)."""
    if strategy != "greedy" and num_candidates > 1 and temperature < GREEDY_TEMPERATURE:
        raise ValueError(
            f"temperature {temperature:g} is greedy decoding, which gives one candidate, "
            f"but strategy {strategy!r} samples num_candidates={num_candidates}: send a "
            "temperature above 0 (the default is 0.7), or use strategy 'greedy' (model "
            "'greedy' on /v1) for deterministic decoding"
        )


def pick_task(task: str | None, choices: Sequence[str] | None) -> str:
    """The task family of a request: multiple choice when choices are given, else math."""
    if task is None:
        return "multiple_choice" if choices else "math"
    if task == "multiple_choice" and not choices:
        raise ValueError("task 'multiple_choice' needs a 'choices' list")
    if task != "multiple_choice" and choices:
        raise ValueError(
            f"task {task!r} takes no 'choices'; drop them or use task 'multiple_choice'"
        )
    return task


def default_step_end(profile: str) -> str:
    """The reference profile ends a step with the turn, as the reference does."""
    return "turn" if profile == "reference" else "line"


def check_dataset(dataset: str | None, task: str | None) -> str | None:
    """The task family a dataset implies; a different `task` is refused."""
    if dataset is None:
        return task
    if dataset not in DATASET_TASKS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    implied = DATASET_TASKS[dataset]
    if task is not None and task != implied:
        raise ValueError(
            f"dataset {dataset!r} is task {implied!r}, not {task!r}; drop "
            "'task' or send the dataset's"
        )
    return implied


def check_category(
    profile: str, task: str | None, choices: Sequence[str] | None, category: str | None
) -> None:
    """`category` picks MMLU-Pro's examples: only with the reference profile and choices."""
    if category is None:
        return
    if profile != "reference":
        raise ValueError(
            "'category' is used only by profile 'reference'; add "
            '"profile": "reference" or drop it'
        )
    if not choices or (task not in (None, "multiple_choice")):
        raise ValueError(
            "'category' (an MMLU-Pro category) needs a multiple-choice question with 'choices'"
        )
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; choose from {', '.join(CATEGORIES)}")


# ---- requests ---------------------------------------------------------------------


def check_question(question: str) -> str:
    """A question with some text (what /solve and /score both require)."""
    if not question.strip():
        raise ValueError("question must contain some text")
    return question


def check_choices(choices: list[str] | None) -> list[str] | None:
    if choices is not None and any(not c.strip() for c in choices):
        raise ValueError("every choice must contain some text")
    return choices


class StrictJSON(BaseModel):
    """A request body of exactly its declared JSON types: strict mode, so `true` is
    not 1 and "3" is not 3; but 2.0 is an integer, as JSON Schema has it."""

    model_config = ConfigDict(strict=True)

    @model_validator(mode="before")
    @classmethod
    def _whole_numbers(cls, data):
        if not isinstance(data, dict):
            return data
        ints = {n for n, f in cls.model_fields.items() if f.annotation in (int, int | None)}
        return {
            k: int(v) if k in ints and isinstance(v, float) and v.is_integer() else v
            for k, v in data.items()
        }


class SolveOptions(StrictJSON):
    """Supervision fields that /solve and /v1/chat/completions (as extra_body) share."""

    num_candidates: int = Field(
        DEFAULT_NUM_CANDIDATES, ge=1, le=16, description="candidate steps sampled per step"
    )
    max_steps: int = Field(DEFAULT_MAX_STEPS, ge=1, le=64, description="most reasoning steps")
    choices: list[Annotated[str, Field(max_length=MAX_CHOICE_CHARS)]] | None = Field(
        None, min_length=2, max_length=10, description="answer options, lettered A, B, ..."
    )
    task: Task | None = Field(
        None,
        description=("task family; default: multiple_choice when choices are given, else math"),
    )
    profile: Profile = Field(
        "generic",
        description=(
            "prompt profile: 'generic' (one prompt per task family) or 'reference' (the "
            "paper's per-dataset prompts: the `dataset`'s; without one, GSM8K for math, MATH "
            "for math_boxed, ARC for multiple_choice, MMLU-Pro's with a category, "
            "ProofWriter's for true_false)"
        ),
    )
    category: str | None = Field(
        None,
        description=(
            "MMLU-Pro category of the question (profile 'reference'): its examples are shown"
        ),
    )
    dataset: str | None = Field(
        None,
        description=(
            "the benchmark the question is from, one of " + ", ".join(DATASETS) + ": profile "
            "'reference' then uses that dataset's prompt (instead of one per task family), "
            "and the task family follows from it"
        ),
    )
    step_end: StepEnd | None = Field(
        None,
        description=(
            "where a step ends: 'line' (at a newline) or 'turn' (the agent's whole chat "
            "turn, up to its end-of-turn token); default: the profile's (generic: line, "
            "reference: turn)"
        ),
    )
    timeout_s: float | None = Field(
        None,
        gt=0,
        description=(
            "deadline of the solve in seconds (server maximum if unset); when it passes the "
            "steps so far come back with finish_reason 'timeout'"
        ),
    )
    score_decay: float = Field(
        DEFAULT_SCORE_DECAY,
        gt=0.0,
        le=1.0,
        description=(
            "candidate score = mean of decay**i * logp(token i) (rationalyst, explicit): "
            "1.0 the plain mean, 0.9 the reference's inference.py"
        ),
    )
    judge_reply: Literal["structured", "free_text"] = Field(
        "structured",
        description=(
            "judge: 'structured' (the verifier's reply forced to a reward 0-3: vLLM "
            "structured outputs in-process, response_format json_schema on an OpenAI-"
            "compatible verifier, with a fallback) or 'free_text' (the reference's reply, "
            "up to 1,000 tokens, parsed for its 'Reward:')"
        ),
    )
    prm_aggregation: PRMAggregation = Field(
        "last",
        description=(
            "prm: a candidate's score from the PRM's per-step probabilities of its "
            "trajectory: 'last' (its own step), 'min' or 'prod' over all steps"
        ),
    )

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str | None) -> str | None:
        check_dataset(v, None)
        return v

    @model_validator(mode="after")
    def _task_from_dataset(self):
        # Here, not in SolveRequest only: /v1's extra body needs the implied task too.
        self.task = check_dataset(self.dataset, self.task)
        if self.dataset == "mmlu_pro" and self.profile == "reference" and not self.category:
            raise ValueError(
                "dataset 'mmlu_pro' under profile 'reference' needs the "
                "question's 'category' (its examples are that category's)"
            )
        return self

    @field_validator("choices")
    @classmethod
    def _choices_not_blank(cls, v: list[str] | None) -> list[str] | None:
        return check_choices(v)


class SolveRequest(SolveOptions):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        min_length=1, max_length=MAX_QUESTION_CHARS, description="the question to solve"
    )
    strategy: StrategyName = Field(DEFAULT_STRATEGY, description="how each step is chosen")
    temperature: float = Field(DEFAULT_TEMPERATURE, ge=0.0, le=2.0)
    top_p: float = Field(DEFAULT_TOP_P, gt=0.0, le=1.0)
    seed: int | None = Field(
        None, ge=0, lt=SEED_LIMIT, description="repeat a solve exactly (default: random)"
    )
    max_tokens: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description=(
            "token budget over all generated tokens (steps and rationales); unset or "
            "null: the server default with profile 'generic', no budget with 'reference'"
        ),
    )
    stream: bool = False

    @field_validator("question")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        return check_question(v)

    @model_validator(mode="after")
    def _task_fits_choices(self) -> SolveRequest:
        self.task = pick_task(self.task, self.choices)
        check_category(self.profile, self.task, self.choices, self.category)
        check_sampling(self.strategy, self.temperature, self.num_candidates)
        return self


MAX_STEP_CHARS = 4_000
Steps = list[Annotated[str, Field(max_length=MAX_STEP_CHARS)]]


class ScoreRequest(StrictJSON):
    """POST /score: candidate next steps, or a whole trajectory, scored by a strategy's
    scorer. Its question, choices and task are checked as /solve's are."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    steps: Steps = Field(default_factory=list, max_length=64, description="the trajectory so far")
    candidates: Steps | None = Field(
        None,
        min_length=1,
        max_length=16,
        description=(
            "candidate next steps; unset: score every step of `steps` after its own prefix"
        ),
    )
    strategy: ScorerName = Field(
        DEFAULT_STRATEGY,
        description=(
            "whose scorer: rationalyst (log-prob under the rationale), explicit (the agent's "
            "own log-prob with the rationale in its prompt), judge (the verifier's reward "
            "0-3), prm (the process reward model's aggregated step probability)"
        ),
    )
    task: Task | None = None
    choices: list[Annotated[str, Field(max_length=MAX_CHOICE_CHARS)]] | None = Field(
        None, min_length=2, max_length=10
    )
    score_decay: float = Field(DEFAULT_SCORE_DECAY, gt=0.0, le=1.0)
    judge_reply: Literal["structured", "free_text"] = "structured"
    prm_aggregation: PRMAggregation = "last"

    @field_validator("question")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        return check_question(v)

    @field_validator("choices")
    @classmethod
    def _choices_not_blank(cls, v: list[str] | None) -> list[str] | None:
        return check_choices(v)

    @model_validator(mode="after")
    def _task_fits_choices(self) -> ScoreRequest:
        self.task = pick_task(self.task, self.choices)
        if self.candidates is None and not self.steps:
            raise ValueError("steps: send candidates, or steps to score")
        return self
