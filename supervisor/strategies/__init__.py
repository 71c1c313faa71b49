"""Step strategies: one module per strategy, each a function of the same
(state, engines) that returns a StepChoice, in the style of search-and-learn's
strategy functions; `base` holds what they share.

REGISTRY is the one list of them. Its entries carry the function and what the rest of
the server needs to know about it: the engines it calls, and whether it writes a
rationale or asks a verifier. The loop, check_fits, /v1/models and the trace viewer
read it. A new strategy is one module here and one line below (docs/design.md has a
worked example); its name is also part of the wire format (rationalyst.protocol), which
the HTTP-only clients read, and import fails with a clear message until they match.
"""

from __future__ import annotations

from dataclasses import dataclass

from rationalyst import protocol

from . import explicit, greedy, judge, prm, random, rationalyst
from .base import Scorer, StepChoice, StepState, Strategy

__all__ = ["REGISTRY", "Scorer", "StepChoice", "StepState", "Strategy", "StrategySpec"]


@dataclass(frozen=True)
class StrategySpec:
    run: Strategy
    # The engines (Engines' roles) it calls: agent, rationale, scorer, judge, prm.
    models: tuple[str, ...] = ("agent",)
    rationale: bool = False  # writes a rationale each step (a turn's `rationale`)
    verifier: str | None = None  # rates candidates with a verifier: "judge" or "prm"
    # The message of the 400 when a model in `models` is not configured (None: always is).
    not_configured: str | None = None
    # How it scores a candidate next step, the function its step calls (POST /score
    # runs it alone); None: it does not score (greedy, random).
    score: Scorer | None = None


REGISTRY: dict[str, StrategySpec] = {
    "rationalyst": StrategySpec(
        rationalyst.rationalyst,
        ("agent", "rationale", "scorer"),
        rationale=True,
        score=rationalyst.score,
    ),
    "explicit": StrategySpec(
        explicit.explicit, ("agent", "rationale"), rationale=True, score=explicit.score
    ),
    "random": StrategySpec(random.random_choice),
    "greedy": StrategySpec(greedy.greedy),
    # The judge is the agent itself unless a judge endpoint is configured.
    "judge": StrategySpec(judge.judge, ("agent",), verifier="judge", score=judge.score),
    "prm": StrategySpec(
        prm.prm, ("agent", "prm"), verifier="prm", not_configured=prm.PRM_MISSING, score=prm.score
    ),
}

if tuple(REGISTRY) != protocol.STRATEGIES:
    raise ImportError(
        f"the strategy registry {tuple(REGISTRY)} and the wire format's "
        f"rationalyst.protocol.STRATEGIES {protocol.STRATEGIES} differ: a "
        "strategy needs its name in both, in the same order"
    )
if tuple(n for n, s in REGISTRY.items() if s.score) != protocol.SCORERS:
    raise ImportError(
        "the strategies with a scorer in the registry and the wire format's "
        f"rationalyst.protocol.SCORERS {protocol.SCORERS} differ"
    )
