"""Grading modes of `rationalyst eval`.

- `lenient` (ours): the server's own `answer` field, matched by the rules in
  datasets.py (numbers compared as numbers, a restated option text accepted, ...).
- `reference`: the prediction re-read from the solve's steps by the reference code's
  parsing rules, as documented in ../shared/RATIONALYST.md, so accuracies compare with
  the paper's:
  - GSM8K: the text after the last answer phrase (`The answer is`, `####`); if it has
    an `=`, only the text after the first `=`; its first number, cut at the decimal
    point (so `18.9` reads as `18`);
  - MATH: the last `\\boxed{}` anywhere in the trajectory, not only in the last step;
  - multiple choice and ProofWriter: strict letters. The text after the phrase must
    begin with the letter itself (`B`, `(B)`, `B)`, `B.`); an option's text, or a
    letter later in the sentence, is no answer. ProofWriter's letters A/B/C read as
    True/False/Unknown (the words themselves are accepted too, for the generic profile).
"""

from __future__ import annotations

import re

from rationalyst.answer_text import ANSWER_PHRASE, TRUTH_VALUES, after_last, first_number, last_boxed

GRADINGS = ("reference", "lenient")

_PHRASE = re.compile(ANSWER_PHRASE, re.I)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d*)?")
_STRICT_LETTER = re.compile(r"[\s:]*\(?([A-Z])(?:\)|\.|:|\s|$)")
_WORD = re.compile(r"[\s:]*(true|false|unknown)\b", re.I)


def _tail(steps: list[str]) -> str | None:
    """The text after the last answer phrase of the last step that has one."""
    for text in reversed(steps):
        tail = after_last(_PHRASE, text)
        if tail is not None:
            return tail
    return None


def gsm8k_number(tail: str) -> str | None:
    if "=" in tail:
        tail = tail.split("=", 1)[1]
    num = first_number(_NUMBER, tail)
    if num is None:
        return None
    return num.split(".")[0] or None


def strict_letter(tail: str, n_choices: int) -> str | None:
    m = _STRICT_LETTER.match(tail)
    if m and ord(m.group(1)) - 65 < n_choices:
        return m.group(1)
    return None


def reference_prediction(task: str, steps: list[str], choices: list[str] | None) -> str | None:
    """The answer the reference's parsing would read from these steps (None: none)."""
    if task == "math_boxed":
        return last_boxed(" ".join(steps))
    tail = _tail(steps)
    if tail is None:
        return None
    if task == "math":
        return gsm8k_number(tail)
    if task == "multiple_choice":
        return strict_letter(tail, len(choices) if choices else 10)
    if task == "true_false":
        letter = strict_letter(tail, 3)
        if letter:
            return TRUTH_VALUES[ord(letter) - 65]
        m = _WORD.match(tail)
        return m.group(1).capitalize() if m else None
    raise ValueError(f"unknown task family {task!r}")


def prediction(grading: str, task: str, trace: dict, choices: list[str] | None) -> str | None:
    """The prediction a solve's response gives under a grading mode."""
    if grading == "lenient":
        return trace.get("answer")
    return reference_prediction(task, [s.get("text", "") for s in trace.get("steps", [])],
                                choices)
