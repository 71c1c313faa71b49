"""Answer-text parsing shared by the supervisor (answers.py) and `rationalyst eval`'s
reference grading (clients/grading.py).

Only the pieces both read the same way live here; where the two rules differ (which
number pattern, what may follow the phrase) each caller passes its own.
(Not named numbers.py: a module beside protocol.py must not shadow the stdlib's.)
"""

from __future__ import annotations

import re

# GSM8K's own "#### 72" counts as the phrase too.
ANSWER_PHRASE = r"the\s+(?:correct\s+)?answer\s+is|####"
# ProofWriter's answers, in the order of its letters A/B/C.
TRUTH_VALUES = ("True", "False", "Unknown")


def after_last(pattern: re.Pattern[str], text: str) -> str | None:
    """The text after the last match of `pattern`, or None when it does not occur."""
    matches = list(pattern.finditer(text))
    return text[matches[-1].end() :] if matches else None


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
                return text[i + 1 : j].strip()
    return None


def first_number(pattern: re.Pattern[str], text: str) -> str | None:
    """The first match of `pattern` in `text`, read without `$` signs and thousands commas."""
    m = pattern.search(text.replace("$", ""))
    return m.group().replace(",", "") if m else None
