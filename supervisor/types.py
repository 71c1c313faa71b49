"""Plain data shared by the loop, the strategies and the server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FinishReason = Literal["answer", "max_steps", "budget", "timeout"]
STRATEGIES = ("rationalyst", "explicit", "random", "greedy")


@dataclass(frozen=True)
class Problem:
    question: str
    task: str  # a family name from supervisor.prompts.TASKS
    choices: tuple[str, ...] | None = None
    # A caller's system message (OpenAI proxy), kept at the head of the agent's prompt.
    system: str | None = None


@dataclass(frozen=True)
class SolveParams:
    strategy: str = "rationalyst"
    num_candidates: int = 3
    max_steps: int = 15
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int | None = None
    step_max_tokens: int = 64
    rationale_max_tokens: int = 64
    # Token budget over everything the solve generates (agent steps + rationales).
    max_tokens: int = 2048
    # Wall-clock deadline of the whole solve; when it passes, the steps so far are
    # returned with finish_reason "timeout".
    timeout_s: float | None = None


@dataclass
class Candidate:
    text: str
    score: float | None = None
    chosen: bool = False


@dataclass
class Timings:
    sample_ms: float = 0.0
    rationale_ms: float = 0.0
    score_ms: float = 0.0
    total_ms: float = 0.0


@dataclass
class Step:
    index: int
    text: str
    rationale: str | None
    candidates: list[Candidate]
    elapsed_ms: float
    timings: Timings = field(default_factory=Timings)  # this step's share, per phase

    def to_dict(self) -> dict:
        # By hand: dataclasses.asdict deep-copies every field, and was the largest
        # share of the server's per-step CPU time (benchmarks/overhead.py).
        return {**vars(self), "candidates": [dict(vars(c)) for c in self.candidates],
                "timings": dict(vars(self.timings))}


@dataclass
class Usage:
    agent_prompt_tokens: int = 0
    agent_completion_tokens: int = 0
    rationale_tokens: int = 0
    scored_tokens: int = 0

    @property
    def generated(self) -> int:
        return self.agent_completion_tokens + self.rationale_tokens


@dataclass
class Result:
    strategy: str
    seed: int
    answer: str | None
    finish_reason: FinishReason
    steps: list[Step] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    timings: Timings = field(default_factory=Timings)

    def to_dict(self) -> dict:
        return {**vars(self), "steps": [s.to_dict() for s in self.steps],
                "usage": dict(vars(self.usage)), "timings": dict(vars(self.timings))}
