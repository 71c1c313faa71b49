"""The reference profile: the paper's per-dataset agent prompts, rebuilt.

Structure follows the reference's inference_no_length.py (see ../shared/RATIONALYST.md,
"Per-dataset agent prompts"); the instructions are in our own words. A request names
its dataset (`dataset`); without one the task family picks (math: GSM8K, math_boxed:
MATH, true_false: ProofWriter, multiple choice: MMLU-Pro with a category, else ARC).
Each shot is one user turn, then one assistant turn per step:
- GSM8K: no system prompt; the reference's own nine train items: its draw
  (`np.random.seed(14); np.random.choice(train, 9, replace=False)` over the 7,473
  train items in source order) picks indices GSM8K_DRAW (tests/test_reference_protocol.py
  repeats the draw); one turn per solution line, `####` becomes `The answer is:`.
- MATH: 5 items of MATH's train split, kept in shots/math_train.jsonl (not the
  reference's draw: that needs the whole 7,500-item split in its order); the solution
  split on ". " as the reference does.
- CommonsenseQA (ECQA): 8 CommonsenseQA train items with ECQA-style explanations in our
  own words (shots/commonsenseqa_train.jsonl, see shots/SOURCES.md): one turn per
  choice, the positive explanation at the answer's position, then the answer.
- HellaSwag (ours; the reference has no HellaSwag code): 4 validation items, judged one
  ending per turn (handwritten_shots.HELLASWAG); eval leaves them out.
- ARC: 7 hand-written shots judging one choice per turn.
- MMLU-Pro: that category's 5 validation items in the reference's seeded order.
- ProofWriter: its own layout, letter answers, 3 hand-written shots.
"""

from __future__ import annotations

import json
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
SHOTS_DIR = Path(__file__).resolve().parent / "shots"  # package data
# np.random.seed(14); np.random.choice(7473, 9, replace=False): the reference's draw.
GSM8K_TRAIN_SIZE = 7473
GSM8K_DRAW = (4396, 675, 1062, 3312, 7420, 932, 6625, 3489, 364)
# np.random.seed(14); np.random.choice(5, 5, replace=False): the order in which the
# reference's draw shows a category's 5 MMLU-Pro validation items.
MMLU_ORDER = (1, 2, 4, 0, 3)

GSM8K_SYSTEM = None  # the reference sends none for GSM8K
MATH_SYSTEM = (
    "You solve math problems one step at a time. Write only one sentence that "
    "extends the reasoning so far. End with the final answer in \\boxed{}."
)
ARC_SYSTEM = (
    "Answer the multiple-choice science question. Before you answer, look at "
    "each choice in turn and say whether it is right or wrong. Finish with "
    f"'{ANSWER} <letter>'."
)
ECQA_SYSTEM = (
    "You answer multiple-choice questions by reasoning one step at a time, "
    "writing only one sentence per turn that extends the reasoning so far. "
    "Several choices may seem possible: pick the most likely one, and finish "
    f"with '{ANSWER} <letter>'."
)
HELLASWAG_SYSTEM = (
    "Pick the ending that most plausibly continues the text. Judge one "
    "ending per turn, in order, saying whether it fits, and finish with "
    f"'{ANSWER} <letter>'."
)
MMLU_SYSTEM = (
    "The following are multiple-choice questions about {category}. Think "
    "step by step, writing only one sentence per turn that extends the "
    "reasoning so far, and finish with 'The answer is (X)', where X is the "
    "letter of the right choice."
)
PROOFWRITER_SYSTEM = (
    "Use only the context to decide whether the statement is true (A), "
    "false (B) or unknown (C). Apply one fact or rule per turn, and finish "
    f"with '{ANSWER} <letter>'."
)

_PW_ASK = "Based on the above information, is the following statement true, false, or unknown?"
_PW_SPLIT = re.compile(
    r"^(?P<context>.*?)\s*" + re.escape(_PW_ASK) + r"\s*(?P<statement>.+)$", re.S
)


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
            "hold it, or use profile 'generic'"
        ) from None


def _by_id(path: Path) -> dict[str, dict]:
    return {str(it["id"]): it for it in _jsonl(path)}


# ---- user turns (the reference's layouts) -----------------------------------------


def question_text(question: str, choices) -> str:
    text = "Question: " + question.strip()
    if choices:
        text += "\nChoices: " + " ".join(f"{chr(65 + i)} - {c}" for i, c in enumerate(choices))
    return text + "\nAnswer:"


def proofwriter_text(question: str, shot: bool = False) -> str:
    """'Question: <ask> <statement>\\nContext: ...\\nChoices: A) True B) False C) Unknown
    \\nAnswer: ' (the trailing space is the reference's); its shots list the choices as
    'A - True B - False C - Unknown'."""
    m = _PW_SPLIT.match(question.strip())
    if m:
        head = (
            f"Question: Based on the context information, is the following statement "
            f"true, false, or unknown? {m['statement'].strip()}\n"
            f"Context: {m['context'].strip()}"
        )
    else:  # a user's own question: keep it whole
        head = "Question: " + question.strip()
    choices = "A - True B - False C - Unknown" if shot else "A) True B) False C) Unknown"
    return f"{head}\nChoices: {choices}\nAnswer: "


def hellaswag_text(context: str, endings) -> str:
    """Our HellaSwag layout: the text to continue, then its endings as choices."""
    return question_text("Which ending continues this text best? " + context.strip(), endings)


# ---- solution text to one turn per line or sentence -------------------------------

_CALC = re.compile(r"<<[^<>]*>>")


def gsm8k_steps(solution: str, calculator: bool = True) -> tuple[str, ...]:
    """The reference's split: `####` -> the answer phrase, one turn per non-empty line,
    a period added where a line does not end with one (the answer line too).
    calculator=False drops the `<<48/2=24>>` annotations (and the spaces they leave),
    as an agent prompted without them writes its steps: what `rationalyst` trains on."""
    if not calculator:
        solution = "\n".join(" ".join(_CALC.sub("", ln).split()) for ln in solution.split("\n"))
    lines = solution.replace("####", ANSWER).split("\n")
    return tuple(ln if ln.endswith(".") else ln + "." for ln in lines if ln != "")


def reference_sentences(text: str) -> tuple[str, ...]:
    """The reference's MATH and MMLU-Pro split: on ". ", which drops those periods."""
    return tuple(s for s in text.split(". ") if s != "")


def sentences(text: str) -> tuple[str, ...]:
    """Split after each '.' (keeping it); `rationalyst rank`'s split of MATH solutions."""
    return tuple(s.strip() for s in re.split(r"(?<=\.)\s+", text.strip()) if s.strip())


# ---- the shots --------------------------------------------------------------------


@lru_cache(maxsize=4)
def _gsm8k(fewshot: Path) -> Prompt:
    items = _by_id(fewshot / "gsm8k_train.jsonl")
    picks = [items[f"gsm8k-train-{i}"] for i in GSM8K_DRAW]
    shots = tuple(
        (question_text(it["question"], None), gsm8k_steps(it["solution"])) for it in picks
    )
    return Prompt(GSM8K_SYSTEM, shots, "")


def math_pool(benchmark: Path) -> list[dict]:
    """MATH test items outside MATH-500 with short, figure-free solutions (the shots of
    `rationalyst rank`)."""
    held_out = {" ".join(it["question"].split()) for it in _jsonl(benchmark / "math500.jsonl")}
    return [
        it
        for it in _jsonl(benchmark / "math.jsonl")
        if " ".join(it["question"].split()) not in held_out
        and len(it["solution"]) <= MATH_SHOT_MAX_CHARS
        and "[asy]" not in it["solution"]
        and "\\boxed" in it["solution"]
    ]


@lru_cache(maxsize=1)
def _math() -> Prompt:
    shots = tuple(
        (question_text(it["question"], None), reference_sentences(it["solution"]))
        for it in _jsonl(SHOTS_DIR / "math_train.jsonl")
    )
    return Prompt(MATH_SYSTEM, shots, "")


def ecqa_steps(item: dict) -> tuple[str, ...]:
    """One turn per choice: the negatives in order, the joined positives at the answer's
    position; then the answer (with the reference's leading space)."""
    at = ord(item["answer"]) - 65
    negatives = list(item["negatives"])
    turns = negatives[:at] + [" ".join(item["positives"])] + negatives[at:]
    return (*turns, f" {ANSWER} {item['answer']}")


@lru_cache(maxsize=1)
def _ecqa() -> Prompt:
    shots = tuple(
        (question_text(it["question"], it["choices"]), ecqa_steps(it))
        for it in _jsonl(SHOTS_DIR / "commonsenseqa_train.jsonl")
    )
    return Prompt(ECQA_SYSTEM, shots, "")


@lru_cache(maxsize=4)
def _hellaswag(benchmark: Path) -> Prompt:
    items = _by_id(benchmark / "hellaswag.jsonl")
    shots = tuple(
        (hellaswag_text(items[i]["question"], items[i]["choices"]), tuple(steps))
        for i, steps in handwritten_shots.HELLASWAG
    )
    return Prompt(HELLASWAG_SYSTEM, shots, "")


HELLASWAG_SHOT_IDS = frozenset(i for i, _ in handwritten_shots.HELLASWAG)


@lru_cache(maxsize=4)
def _arc(fewshot: Path) -> Prompt:
    items = _by_id(fewshot / "arc_challenge_train.jsonl")
    # The reference's ARC shots end their user turn with "Answer: " (its items do not).
    shots = tuple(
        (question_text(items[i]["question"], items[i]["choices"]) + " ", tuple(steps))
        for i, steps in handwritten_shots.ARC
    )
    return Prompt(ARC_SYSTEM, shots, "")


@lru_cache(maxsize=16)
def _mmlu(fewshot: Path, category: str) -> Prompt:
    items = [
        it for it in _jsonl(fewshot / "mmlu_pro_validation.jsonl") if it["category"] == category
    ]
    if len(items) == len(MMLU_ORDER):
        items = [items[i] for i in MMLU_ORDER]
    shots = tuple(
        (
            question_text(it["question"], it["choices"]),
            reference_sentences(it["cot_content"].replace("A: ", "")),
        )
        for it in items
    )
    return Prompt(MMLU_SYSTEM.format(category=category), shots, "")


@lru_cache(maxsize=4)
def _proofwriter(benchmark: Path) -> Prompt:
    items = _by_id(benchmark / "proofwriter_dev.jsonl")
    shots = tuple(
        (proofwriter_text(items[i]["question"], shot=True), tuple(steps))
        for i, steps in handwritten_shots.PROOFWRITER
    )
    return Prompt(PROOFWRITER_SYSTEM, shots, "")


def dataset_of(problem: Problem) -> str:
    """The request's dataset, or the one its task family stands for."""
    if problem.dataset:
        return problem.dataset
    if problem.task == "multiple_choice":
        return "mmlu_pro" if problem.category else "arc_challenge"
    return {"math": "gsm8k", "math_boxed": "math", "true_false": "proofwriter"}[problem.task]


def reference_user(problem: Problem) -> str:
    """The problem's own user turn under the reference profile (no shots loaded)."""
    name = dataset_of(problem)
    if name == "hellaswag":
        return hellaswag_text(problem.question, problem.choices)
    if name == "proofwriter":
        return proofwriter_text(problem.question)
    return question_text(problem.question, problem.choices)


def reference_prompt(problem: Problem) -> Prompt:
    """The reference profile's prompt for one problem."""
    fewshot, benchmark = _dir("fewshot"), _dir("benchmark")
    name = dataset_of(problem)
    user = reference_user(problem)
    if name == "gsm8k":
        base = _gsm8k(fewshot)
    elif name == "math":
        base = _math()
    elif name == "commonsenseqa":
        base = _ecqa()
    elif name == "hellaswag":
        base = _hellaswag(benchmark)
    elif name == "proofwriter":
        base = _proofwriter(benchmark)
    elif name == "mmlu_pro":
        base = _mmlu(fewshot, problem.category or "other")
    else:
        base = _arc(fewshot)
    return Prompt(base.system, base.shots, user)
