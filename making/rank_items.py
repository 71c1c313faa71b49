"""The items of `rationalyst rank`: gold solutions split into steps the way the agent
writes them (GSM8K lines, MATH sentences), and which test items are drawn."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from rationalyst.supervisor import profiles, prompts

_CALC = re.compile(r"<<[^<>]*>>")


def gsm8k_steps(solution: str) -> list[str]:
    """One step per line, calculator annotations removed; `#### x` becomes the
    agent prompt's answer line."""
    steps = []
    for line in solution.split("\n"):
        line = " ".join(_CALC.sub("", line).split())
        if not line:
            continue
        if line.startswith("####"):
            line = f"{prompts.ANSWER_PHRASE} {line[4:].strip().replace(',', '')}"
        steps.append(line)
    return steps


def math_steps(solution: str) -> list[str]:
    """Sentences, split as the reference profile splits MATH shots."""
    return list(profiles.sentences(solution))


@dataclass(frozen=True)
class Item:
    id: str
    dataset: str  # gsm8k | math
    task: str
    question: str
    steps: tuple[str, ...]


def load_items(data_dir: Path, gsm8k: int, math: int, seed: int, max_steps: int) -> list[Item]:
    """The first `gsm8k` GSM8K test items (file order: no selection), and `math` MATH
    test items outside MATH-500 (and outside the reference profile's MATH shots),
    drawn with `seed` from those with short, figure-free solutions."""
    items = []
    with open(data_dir / "gsm8k.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()][:gsm8k]
    for r in rows:
        items.append(
            Item(
                r["id"],
                "gsm8k",
                "math",
                r["question"],
                tuple(gsm8k_steps(r["solution"])[:max_steps]),
            )
        )
    if math:
        pool = profiles.math_pool(data_dir)
        shots = {
            it["id"] for it in random.Random(profiles.SHOT_SEED).sample(pool, profiles.MATH_SHOTS)
        }
        pool = [it for it in pool if it["id"] not in shots]
        drawn = [
            Item(
                r["id"],
                "math",
                "math_boxed",
                r["question"],
                tuple(math_steps(r["solution"])[:max_steps]),
            )
            for r in random.Random(seed).sample(pool, min(math, len(pool)))
        ]
        # Interleaved, so that a run cut short still holds both datasets.
        every = max(1, len(items) // len(drawn))
        mixed = []
        for i, it in enumerate(items):
            mixed.append(it)
            if (i + 1) % every == 0 and drawn:
                mixed.append(drawn.pop(0))
        items = mixed + drawn
    return [it for it in items if it.steps]
