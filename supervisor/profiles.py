"""The reference profile: the paper's per-dataset agent prompts, rebuilt.

Structure follows the reference's inference_no_length.py (see ../shared/RATIONALYST.md,
"Per-dataset agent prompts"); the instructions are in our own words. Few-shot examples
are data, read at run time from the datasets' own splits (Settings.fewshot_dir and
Settings.benchmark_dir), each solution line or sentence one assistant turn:
- GSM8K (`math`): no system prompt; 9 train items drawn with seed 14; calculator
  annotations kept; `#### x` becomes `The answer is: x`.
- MATH (`math_boxed`): 5 items of math.jsonl that are not in MATH-500 (there is no
  MATH train split here), drawn with seed 14 from those with short solutions (at most
  500 characters, no [asy] figure) so that five fit a small model's context.
- ARC (`multiple_choice`): 7 hand-written shots judging one choice per turn.
- MMLU-Pro (`multiple_choice` with a `category`): that category's 5 validation
  items with their chain of thought.
- ProofWriter (`true_false`): its own layout, letter answers, 3 hand-written shots.
CommonsenseQA and other multiple-choice sets without a split here use the generic
profile (the eval harness sends `profile: generic` for them).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from . import handwritten_shots
from .engine import EngineError
from .settings import Settings
from .types import Problem

SHOT_SEED = 14  # the reference scripts' seed
GSM8K_SHOTS, MATH_SHOTS = 9, 5
MATH_SHOT_MAX_CHARS = 500
ANSWER = "The answer is:"

GSM8K_SYSTEM = None  # the reference sends none for GSM8K
MATH_SYSTEM = ("You solve math problems one step at a time. Write only one sentence that "
               "extends the reasoning so far. End with the final answer in \\boxed{}.")
ARC_SYSTEM = ("Answer the multiple-choice science question. Before you answer, look at "
              "each choice in turn and say whether it is right or wrong. Finish with "
              f"'{ANSWER} <letter>'.")
MMLU_SYSTEM = ("The following are multiple-choice questions about {category}. Think "
               "step by step, writing only one sentence per turn that extends the "
               "reasoning so far, and finish with 'The answer is (X)', where X is the "
               "letter of the right choice.")
PROOFWRITER_SYSTEM = ("Use only the context to decide whether the statement is true (A), "
                      "false (B) or unknown (C). Apply one fact or rule per turn, and finish "
                      f"with '{ANSWER} <letter>'.")

_PW_ASK = "Based on the above information, is the following statement true, false, or unknown?"
_PW_SPLIT = re.compile(r"^(?P<context>.*?)\s*" + re.escape(_PW_ASK) + r"\s*(?P<statement>.+)$",
                       re.S)


class ProfileDataMissing(EngineError):
    """The reference profile's few-shot files are not where the settings say."""


@dataclass(frozen=True)
class Prompt:
    """An agent prompt's parts: system (or None), shots as (user turn, steps), the
    item's own user turn."""
    system: str | None
    shots: tuple[tuple[str, tuple[str, ...]], ...]
    user: str


_dirs = {"fewshot": None, "benchmark": None}


def configure(fewshot_dir: Path | str, benchmark_dir: Path | str) -> None:
    """Where the splits are (the server calls this with its settings at start-up)."""
    _dirs["fewshot"], _dirs["benchmark"] = Path(fewshot_dir), Path(benchmark_dir)


def _dir(kind: str) -> Path:
    if _dirs[kind] is None:
        s = Settings()
        configure(s.fewshot_dir, s.benchmark_dir)
    return _dirs[kind]


@lru_cache(maxsize=8)
def _jsonl(path: Path) -> tuple[dict, ...]:
    try:
        with open(path, encoding="utf-8") as f:
            return tuple(json.loads(line) for line in f if line.strip())
    except OSError as exc:
        raise ProfileDataMissing(
            f"the reference profile needs {path.name} at {path} ({exc.strerror}); set "
            "RATIONALYST_FEWSHOT_DIR / RATIONALYST_BENCHMARK_DIR to the folders that "
            "hold it, or use profile 'generic'") from None


def _by_id(path: Path) -> dict[str, dict]:
    return {str(it["id"]): it for it in _jsonl(path)}


# ---- user turns (the reference's layouts) -----------------------------------------

def question_text(question: str, choices) -> str:
    text = "Question: " + question.strip()
    if choices:
        text += "\nChoices: " + " ".join(f"{chr(65 + i)} - {c}" for i, c in enumerate(choices))
    return text + "\nAnswer:"


def proofwriter_text(question: str) -> str:
    """'Question: <ask> <statement>\\nContext: ...\\nChoices: A) True B) False C) Unknown'."""
    m = _PW_SPLIT.match(question.strip())
    if m:
        head = (f"Question: Based on the context information, is the following statement "
                f"true, false, or unknown? {m['statement'].strip()}\n"
                f"Context: {m['context'].strip()}")
    else:  # a user's own question: keep it whole
        head = "Question: " + question.strip()
    return head + "\nChoices: A) True B) False C) Unknown\nAnswer:"


# ---- solution text to one turn per line or sentence -------------------------------

def gsm8k_steps(solution: str) -> tuple[str, ...]:
    steps = []
    for line in solution.split("\n"):
        line = line.strip()
        if not line:
            continue
        if line.startswith("####"):
            steps.append(f"{ANSWER} {line[4:].strip()}")
            continue
        steps.append(line if line[-1] in ".!?" else line + ".")
    return tuple(steps)


def sentences(text: str) -> tuple[str, ...]:
    """Split on '. ' as the reference does (keeping the period)."""
    return tuple(s.strip() for s in re.split(r"(?<=\.)\s+", text.strip()) if s.strip())


# ---- the shots --------------------------------------------------------------------

@lru_cache(maxsize=4)
def _gsm8k(fewshot: Path) -> Prompt:
    items = _jsonl(fewshot / "gsm8k_train.jsonl")
    picks = random.Random(SHOT_SEED).sample(range(len(items)), GSM8K_SHOTS)
    shots = tuple((question_text(items[i]["question"], None), gsm8k_steps(items[i]["solution"]))
                  for i in picks)
    return Prompt(GSM8K_SYSTEM, shots, "")


def math_pool(benchmark: Path) -> list[dict]:
    """MATH items outside MATH-500 with short, figure-free solutions."""
    held_out = {" ".join(it["question"].split()) for it in _jsonl(benchmark / "math500.jsonl")}
    return [it for it in _jsonl(benchmark / "math.jsonl")
            if " ".join(it["question"].split()) not in held_out
            and len(it["solution"]) <= MATH_SHOT_MAX_CHARS and "[asy]" not in it["solution"]
            and "\\boxed" in it["solution"]]


@lru_cache(maxsize=4)
def _math(benchmark: Path) -> Prompt:
    picks = random.Random(SHOT_SEED).sample(math_pool(benchmark), MATH_SHOTS)
    shots = tuple((question_text(it["question"], None), sentences(it["solution"]))
                  for it in picks)
    return Prompt(MATH_SYSTEM, shots, "")


@lru_cache(maxsize=4)
def _arc(fewshot: Path) -> Prompt:
    items = _by_id(fewshot / "arc_challenge_train.jsonl")
    shots = tuple((question_text(items[i]["question"], items[i]["choices"]), tuple(steps))
                  for i, steps in handwritten_shots.ARC)
    return Prompt(ARC_SYSTEM, shots, "")


@lru_cache(maxsize=16)
def _mmlu(fewshot: Path, category: str) -> Prompt:
    items = [it for it in _jsonl(fewshot / "mmlu_pro_validation.jsonl")
             if it["category"] == category]
    shots = tuple((question_text(it["question"], it["choices"]),
                   sentences(it["cot_content"].replace("A: ", "", 1))) for it in items)
    return Prompt(MMLU_SYSTEM.format(category=category), shots, "")


@lru_cache(maxsize=4)
def _proofwriter(benchmark: Path) -> Prompt:
    items = _by_id(benchmark / "proofwriter_dev.jsonl")
    shots = tuple((proofwriter_text(items[i]["question"]), tuple(steps))
                  for i, steps in handwritten_shots.PROOFWRITER)
    return Prompt(PROOFWRITER_SYSTEM, shots, "")


def reference_prompt(problem: Problem) -> Prompt:
    """The reference profile's prompt for one problem."""
    fewshot, benchmark = _dir("fewshot"), _dir("benchmark")
    if problem.task == "math":
        base, user = _gsm8k(fewshot), question_text(problem.question, None)
    elif problem.task == "math_boxed":
        base, user = _math(benchmark), question_text(problem.question, None)
    elif problem.task == "true_false":
        base, user = _proofwriter(benchmark), proofwriter_text(problem.question)
    elif problem.category:
        base = _mmlu(fewshot, problem.category)
        user = question_text(problem.question, problem.choices)
    else:
        base, user = _arc(fewshot), question_text(problem.question, problem.choices)
    return Prompt(base.system, base.shots, user)
