"""`random`: the reference baseline. N samples, one picked at random (seeded)."""

from __future__ import annotations

import random

from ..engine import Engines
from .base import StepChoice, StepState, candidates, choose, sample


async def random_choice(state: StepState, engines: Engines) -> StepChoice:
    """The reference baseline: N samples, one picked at random (seeded)."""
    cands = candidates(await sample(state, engines))
    live = [i for i, c in enumerate(cands) if c.text] or list(range(len(cands)))
    choose(cands, random.Random(state.seed).choice(live))
    return StepChoice(cands, None)
