"""Answer detection (when to stop) and extraction (what the answer is) per family."""

from __future__ import annotations

import re
from typing import Sequence

# GSM8K's own "#### 72" counts as the phrase too.
_PHRASE = re.compile(r"(?:the\s+(?:correct\s+)?answer\s+is|####)(?:\s+indeed)?\s*:?\s*", re.I)
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


def _after_phrase(text: str) -> str | None:
    matches = list(_PHRASE.finditer(text))
    return text[matches[-1].end():] if matches else None


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...}, with nested braces balanced."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j].strip()
    return None


def normalize_number(s: str) -> str | None:
    m = _NUMBER.search(s.replace("$", ""))
    if not m:
        return None
    num = m.group().replace(",", "")
    if num.lstrip("-").startswith("."):
        num = num.replace(".", "0.", 1)  # ".5" and "0.5" must compare equal
    if "." in num:
        num = num.rstrip("0").rstrip(".") or "0"
    return num


def extract(task: str, text: str, choices: Sequence[str] | None = None) -> str | None:
    """The answer stated in `text`, or None when nothing parses (never a guess)."""
    if task == "math_boxed":
        return last_boxed(text)
    tail = _after_phrase(text)
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
        return ("True", "False", "Unknown")["ABC".index(m.group(1))] if m else None
    raise ValueError(f"unknown task family {task!r}")
