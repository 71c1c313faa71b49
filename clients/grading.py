"""Grading modes of `rationalyst eval`.

- `lenient` (ours): the server's own `answer` field, matched by the rules in
  datasets.py (numbers compared as numbers, a restated option text accepted, ...).
- `reference`: the answer re-read from the steps the way the reference's
  inference_no_length.py reads it, quirks included, and compared with the gold it
  normalises the same way, by string equality (its extract_result.py):
  - the text read is its trajectory `Question: ...\\nAnswer: s1 s2 ...` (`####` in a
    step becomes `The answer is:`), checked after each step, of at most 14 steps (its
    15-round loop never reads the 15th);
  - answer phrases, tried in this order, case-sensitive: `the answer is`, `The correct
    answer is`, `The answer is`, `The answer is indeed`, `the correct answer is
    indeed`, `The correct answer is indeed`; the text read is what follows the FIRST
    occurrence of the phrase, up to its next occurrence; a phrase whose text reads as
    empty passes to the next phrase;
  - GSM8K: that text; after the first `=` (up to a second one); a final `.` dropped;
    cut at its first `.` (`18.9` -> `18`, `$1.50` -> `1`); the first run of digits,
    `.`, `,` and `-` (commas dropped; a lone `,` reads as empty); no number at all ->
    the text itself, which is then wrong;
  - MATH: the phrase is `boxed`; the last `\\boxed{...}` of the whole trajectory
    (after a `\\boxed ` with a space: up to the next `$`), through MATH's
    `strip_string`, which is skipped when it fails;
  - ARC, CommonsenseQA, ProofWriter (and HellaSwag, StrategyQA, ours): the first word
    after `replace(": ", "")`, so `B` and `: B` are B but `(B)`, `B.` and `B)` are
    not; ARC's gold is its original key, so the items keyed 1-4 are never right;
    ProofWriter's gold is its letter;
  - MMLU-Pro: the first `answer is (X)` anywhere in the trajectory once any phrase
    is there; failing that the reference guesses a random letter. We guess too, seeded
    by the item's seed (the reference's guesses depend on task order), and mark the
    record `guessed`, so accuracy matches in expectation and guesses can be counted.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

GRADINGS = ("reference", "lenient")
ROUNDS_READ = 14
END_PHRASES = (
    "the answer is",
    "The correct answer is",
    "The answer is",
    "The answer is indeed",
    "the correct answer is indeed",
    "The correct answer is indeed",
)
_LETTERS = "ABCDEFGHIJ"
_MMLU = re.compile(r"answer is \(?\([A-J]\)?\)")
_MMLU_2 = re.compile(r"\.*\[aA\]nswer:\s*\([A-J]\)")  # as written: matches "[aA]nswer:"
_RUN = re.compile(r"(-?[0-9.,]+)")


class Guess(str):
    """A letter the reference would have guessed (MMLU-Pro, nothing parsed)."""


# ---- the reference's normalisers, in our words -------------------------------------


def reference_number(text: str) -> str:
    if "=" in text:
        text = text.split("=")[1].strip()
    if text.endswith("."):
        text = text[:-1]
    if "." in text:
        text = text.split(".")[0]
    m = _RUN.search(text)
    return m.group().replace(",", "") if m else text


def first_word(text: str) -> str:
    return text.strip().replace(": ", "").split(" ")[0]


def last_boxed(text: str) -> str | None:
    """`\\boxed{...}` (or `\\fbox{...}`) with its braces, the last one; after a
    `\\boxed ` with a space, the rest up to the next `$`."""
    if "\\boxed " in text:
        return "\\boxed " + text.split("\\boxed ")[-1].split("$")[0]
    at = text.rfind("\\boxed")
    if at < 0:
        at = text.rfind("\\fbox")
        if at < 0:
            return None
    depth = 0
    for i in range(at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[at : i + 1]
    return None


def unbox(s: str) -> str:
    """Raises (as the reference's asserts do) when `s` is not one boxed answer."""
    if "\\boxed " in s:
        if not s.startswith("\\boxed "):
            raise ValueError(s)
        return s[len("\\boxed ") :]
    if not (s.startswith("\\boxed{") and s.endswith("}")):
        raise ValueError(s)
    return s[len("\\boxed{") : -1]


def _fix_fracs(s: str) -> str:
    parts = s.split("\\frac")
    out = parts[0]
    for sub in parts[1:]:
        out += "\\frac"
        if sub[0] == "{":  # an empty part raises IndexError, as the reference does
            out += sub
        elif len(sub) < 2:
            return s
        elif sub[1] != "{":
            out += "{" + sub[0] + "}{" + sub[1] + "}" + sub[2:]
        else:
            out += "{" + sub[0] + "}" + sub[1:]
    return out


def _fix_sqrt(s: str) -> str:
    if "\\sqrt" not in s:
        return s
    parts = s.split("\\sqrt")
    return parts[0] + "".join(
        "\\sqrt" + p if p[0] == "{" else "\\sqrt{" + p[0] + "}" + p[1:] for p in parts[1:]
    )


def _fix_a_slash_b(s: str) -> str:
    if len(s.split("/")) != 2:
        return s
    a, b = s.split("/")
    a, b = int(a), int(b)  # a ValueError escapes, as in the reference
    return f"\\frac{{{a}}}{{{b}}}" if s == f"{a}/{b}" else s


def strip_string(s: str) -> str:
    """MATH's answer normalisation (Hendrycks et al.), step for step; raises where it does."""
    for old, new in (
        ("\n", ""),
        ("\\!", ""),
        ("\\\\", "\\"),
        ("tfrac", "frac"),
        ("dfrac", "frac"),
        ("\\left", ""),
        ("\\right", ""),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("\\$", ""),
    ):
        s = s.replace(old, new)
    if "\\text{ " in s:
        parts = s.split("\\text{ ")
        if len(parts) != 2:
            raise ValueError(s)
        s = parts[0]
    s = s.replace("\\%", "").replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    if len(s.split("=")) == 2 and len(s.split("=")[0]) <= 2:
        s = s.split("=")[1]
    s = _fix_fracs(_fix_sqrt(s).replace(" ", ""))
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _fix_a_slash_b(s)


def math_answer(text: str) -> str:
    boxed = last_boxed(text)
    if boxed is None:
        raise ValueError("no box")
    res = unbox(boxed)
    try:
        return strip_string(res)
    except (ValueError, IndexError):
        return res


# ---- reading a trajectory ------------------------------------------------------------


def _read(dataset: str, previous: str, guess: Callable[[], str]) -> str | None:
    terms = ("boxed",) if dataset == "math" else END_PHRASES
    for term in terms:
        if term not in previous:
            continue
        text = (
            previous
            if dataset in ("math", "mmlu_pro")
            else previous.split(term)[1].replace("\n", " ").strip()
        )
        try:
            if dataset == "math":
                norm = math_answer(text)
            elif dataset == "gsm8k":
                norm = reference_number(text)
            elif dataset == "mmlu_pro":
                m = _MMLU.search(text) or _MMLU_2.search(text)
                norm = m.group().split("(")[1][0] if m else guess()
            else:
                norm = first_word(text)
        except (ValueError, IndexError):
            continue  # the reference prints "Error" and tries the next phrase
        if norm:
            return norm
    return None


def question_turn(question: str, choices: list[str] | None) -> str:
    text = "Question: " + question
    if choices:
        text += "\nChoices: " + " ".join(f"{chr(65 + i)} - {c}" for i, c in enumerate(choices))
    return text + "\nAnswer:"


def reference_prediction(
    dataset: str, question: str, choices: list[str] | None, steps: list[str], seed: int = 0
) -> str | None:
    """What the reference would read from these steps (None: nothing; a Guess: its
    random letter for MMLU-Pro)."""
    previous = question_turn(question, choices)
    rng = random.Random(seed)
    for step in steps[:ROUNDS_READ]:
        previous += " " + step.replace("####", "The answer is:")
        found = _read(dataset, previous, lambda: Guess(rng.choice(_LETTERS)))
        if found is not None:
            return found
    return None


def reference_gold(dataset: str, item: dict) -> str:
    """The gold answer as the reference normalises it."""
    if dataset == "gsm8k":
        return reference_number(str(item["answer"]))
    if dataset == "math":
        try:
            return math_answer(item.get("solution") or "")
        except (ValueError, IndexError):  # the reference would stop here; keep going
            return str(item["answer"])
    if dataset == "arc_challenge":
        return str(item.get("answer_key_original") or item["answer"])
    return str(item["answer"])


def prediction(
    grading: str, dataset: str, trace: dict, item_request: dict, seed: int = 0
) -> str | None:
    """The prediction a solve's response gives under a grading mode."""
    if grading == "lenient":
        return trace.get("answer")
    return reference_prediction(
        dataset,
        item_request["question"],
        item_request["choices"],
        [s.get("text", "") for s in trace.get("steps", [])],
        seed,
    )
