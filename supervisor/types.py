"""Plain data shared by the loop, the strategies and the server.

The step and result objects are the wire models of rationalyst.protocol: the loop
fills them in place, and the server sends them as they are."""

from __future__ import annotations

from dataclasses import dataclass

from rationalyst.protocol import (
    DEFAULT_MAX_STEPS,
    DEFAULT_NUM_CANDIDATES,
    DEFAULT_SCORE_DECAY,
    DEFAULT_STRATEGY,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    STRATEGIES,
    Candidate,
    FinishReason,
    Step,
    Timings,
    Usage,
)
from rationalyst.protocol import SolveResult as Result

__all__ = [
    "STRATEGIES",
    "Candidate",
    "FinishReason",
    "Problem",
    "Result",
    "SolveParams",
    "Step",
    "Timings",
    "Usage",
]


@dataclass(frozen=True)
class Problem:
    question: str
    task: str  # a family name from rationalyst.protocol.TASKS
    choices: tuple[str, ...] | None = None
    # A caller's system message (OpenAI proxy), kept at the head of the agent's prompt.
    system: str | None = None
    # Prompt profile ("generic" or "reference") and, for MMLU-Pro, the category.
    profile: str = "generic"
    category: str | None = None
    # The benchmark the question is from (rationalyst.protocol.DATASETS): the reference
    # profile's prompt is that dataset's.
    dataset: str | None = None


@dataclass(frozen=True)
class SolveParams:
    strategy: str = DEFAULT_STRATEGY
    num_candidates: int = DEFAULT_NUM_CANDIDATES
    max_steps: int = DEFAULT_MAX_STEPS
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    seed: int | None = None
    step_max_tokens: int = 64
    rationale_max_tokens: int = 64
    # Token budget over everything the solve generates (agent steps + rationales);
    # None: no budget (the reference profile's default).
    max_tokens: int | None = 2048
    # "line": a step ends at a newline; "turn": at the agent's end of turn.
    step_end: str = "line"
    # Wall-clock deadline of the whole solve; when it passes, the steps so far are
    # returned with finish_reason "timeout".
    timeout_s: float | None = None
    # Candidate score = mean of score_decay**i * logp_i (1.0: the plain mean).
    score_decay: float = DEFAULT_SCORE_DECAY
    # prm: how a trajectory's step probabilities make the candidate's score.
    prm_aggregation: str = "last"
    # judge: "structured" (the reply's shape forced) or "free_text" (the reference's)
    judge_reply: str = "structured"
    # Stop strings (/v1's `stop`): the solve ends at the first step whose text (joined
    # to the steps before it as /v1's content is) holds one, the step cut before it.
    stop: tuple[str, ...] = ()
