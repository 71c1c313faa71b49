"""Answer detection (when to stop) and extraction (what the answer is) per family."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rationalyst.answer_text import (
    ANSWER_PHRASE,
    TRUTH_VALUES,
    after_last,
    first_number,
    last_boxed,
)

_PHRASE = re.compile(rf"(?:{ANSWER_PHRASE})(?:\s+indeed)?\s*:?\s*", re.I)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_LETTER = re.compile(r"\(?\b([A-J])\b\)?")
_TRUTH = re.compile(r"\b(true|false|unknown)\b", re.I)
# ProofWriter's reference layout answers with a letter: A) True B) False C) Unknown.
_TRUTH_LETTER = re.compile(r"\s*\(?([ABC])\s*(?:\)|\.|$)")


def has_answer(task: str, text: str, choices: Sequence[str] | None = None) -> bool:
    """Whether a step states a final answer that parses, so the loop can stop after it.

    A phrase with nothing parseable after it ("the answer is not given.") is a
    normal step: stopping there would end the solve with no answer.
    """
    return extract(task, text, choices) is not None


def normalize_number(s: str) -> str | None:
    num = first_number(_NUMBER, s)
    if num is None:
        return None
    if num.lstrip("-").startswith("."):
        num = num.replace(".", "0.", 1)  # ".5" and "0.5" must compare equal
    if "." in num:
        num = num.rstrip("0").rstrip(".") or "0"
    return num


def extract(task: str, text: str, choices: Sequence[str] | None = None) -> str | None:
    """The answer stated in `text`, or None when nothing parses (never a guess)."""
    if task == "math_boxed":
        return last_boxed(text) or None  # an empty \boxed{} states no answer
    tail = after_last(_PHRASE, text)
    if tail is None:
        return None
    if task == "math":
        return normalize_number(tail)
    if task == "multiple_choice":
        n = len(choices) if choices else 10
        for m in _LETTER.finditer(tail):
            if ord(m.group(1)) - 65 < n:
                return m.group(1)
        # Some agents restate the option's text instead of its letter.
        low = tail.strip().lower().rstrip(".")
        for i, c in enumerate(choices or ()):
            if c and low.startswith(c.strip().lower().rstrip(".")):
                return chr(65 + i)
        return None
    if task == "true_false":
        m = _TRUTH.search(tail)
        if m:
            return m.group(1).capitalize()
        m = _TRUTH_LETTER.match(tail)
        return TRUTH_VALUES["ABC".index(m.group(1))] if m else None
    raise ValueError(f"unknown task family {task!r}")
