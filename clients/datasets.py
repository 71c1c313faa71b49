"""The benchmarks of `rationalyst eval`: where each file is, what to send, how to grade.

The server already extracts the answer per task family (its `answer` field), so this
module only builds requests and matches that prediction against the gold answer. It
speaks no HTTP and imports nothing from `server` or `supervisor`.

Matching rules:
- GSM8K (`math`): numeric equality. `$`, spaces, a trailing `.` and thousands commas
  (`1,234`) are dropped, then both sides are compared as numbers, so `18`, `18.00` and
  `$18` match gold `18`. The reference truncates a prediction at its decimal point; we
  do not (it would accept `18.9` for `18`). A malformed comma (`1,8`) does not parse.
- MATH (`math_boxed`): the `\\boxed{}` content, normalised by `normalize_math`, then
  string equality, or numeric equality when both sides parse as numbers/fractions.
- Multiple choice (ARC, CommonsenseQA, HellaSwag, MMLU-Pro, StrategyQA): letters.
  StrategyQA's yes/no gold is sent as choices ["Yes", "No"], gold A or B.
- ProofWriter (`true_false`): True / False / Unknown, case-insensitive.
A prediction of None (nothing parsed by the server) is wrong and counts as "no answer".
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def default_data_dir() -> Path:
    """RATIONALYST_DATA_DIR, else ../shared/data/benchmarks beside this repo."""
    env = os.environ.get("RATIONALYST_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data" / "benchmarks"


# ---- numbers ----------------------------------------------------------------------

_NUM = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d*)?")


def parse_number(s: str | None) -> Fraction | None:
    """`18`, `18.00`, `$1,234.`, `-.5` as an exact number; None if not one number."""
    if s is None:
        return None
    s = s.strip().replace("$", "").replace("\\$", "").replace(" ", "").rstrip(".")
    if _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    if not _NUM.fullmatch(s):
        return None
    return Fraction(s)


def _math_number(s: str) -> Fraction | None:
    """A normalised MATH answer as a number: plain, `\\frac{a}{b}`, `a/b`, with sign."""
    if (n := parse_number(s)) is not None:
        return n
    m = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}", s) or re.fullmatch(
        r"(-?)(-?\d+)/(-?\d+)", s
    )
    if m and int(m.group(3)) != 0:
        value = Fraction(int(m.group(2)), int(m.group(3)))
        return -value if m.group(1) else value
    return None


# ---- MATH normalisation -----------------------------------------------------------

_DROP = (
    "\\left",
    "\\right",
    "\\!",
    "\\,",
    "\\;",
    "\\:",
    "\\$",
    "$",
    "\\%",
    "%",
    "^\\circ",
    "^{\\circ}",
    "\\displaystyle",
)


def normalize_math(s: str | None) -> str | None:
    """Canonical form of a `\\boxed{}` answer, for string comparison.

    Drops `\\left`/`\\right`, thin spaces, `$`, `%`, degrees and all whitespace;
    `\\dfrac`/`\\tfrac` -> `\\frac`; `\\frac12` -> `\\frac{1}{2}`, `\\sqrt2` ->
    `\\sqrt{2}`; unwraps `\\text{...}`; drops a trailing `.` and a leading `x=`."""
    if s is None:
        return None
    s = re.sub(r"\\(?:text|textbf|mbox|mathrm)\{([^{}]*)\}", r"\1", s)
    for token in _DROP:
        s = s.replace(token, "")
    s = re.sub(r"\s+", "", s).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\{([^{}]*)\}(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\sqrt(\d+)", r"\\sqrt{\1}", s)
    s = s.rstrip(".")
    if re.fullmatch(r"[a-zA-Z]=[^=]+", s):  # "x=5" -> "5"
        s = s[2:]
    return s


def math_equal(gold: str, pred: str | None) -> bool:
    g, p = normalize_math(gold), normalize_math(pred)
    if p is None or p == "":
        return False
    if g == p:
        return True
    gn, pn = _math_number(g), _math_number(p)
    return gn is not None and pn is not None and gn == pn


def number_equal(gold: str, pred: str | None) -> bool:
    g, p = parse_number(gold), parse_number(pred)
    return g is not None and p is not None and g == p


def letter_equal(gold: str, pred: str | None) -> bool:
    if pred is None:
        return False
    m = re.fullmatch(r"\(?([A-Za-z])\)?\.?", pred.strip())
    return m is not None and m.group(1).upper() == gold.strip().upper()


def truth_equal(gold: str, pred: str | None) -> bool:
    return pred is not None and pred.strip().rstrip(".").lower() == gold.strip().lower()


# ---- the benchmarks ---------------------------------------------------------------

# HellaSwag validation items that are the reference profile's shots
# (supervisor/handwritten_shots.HELLASWAG): left out of the evaluation.
HELLASWAG_SHOTS = frozenset(
    {"hellaswag-val-112", "hellaswag-val-4574", "hellaswag-val-728", "hellaswag-val-2806"}
)


@dataclass(frozen=True)
class Benchmark:
    name: str
    file: str
    task: str  # the task family sent to the server
    match: Callable[[str, str | None], bool]
    # The paper's dataset this file is (rationalyst.protocol.DATASETS), sent as the
    # request's `dataset`; None: no reference prompt (StrategyQA), sent as generic.
    dataset: str | None = None
    exclude: frozenset[str] = frozenset()  # items used as shots

    def profile(self, wanted: str) -> str:
        return wanted if self.dataset else "generic"

    def request(self, item: dict, profile: str = "generic") -> dict:
        """The /solve fields for one item: question, task, choices, the profile and the
        dataset (with MMLU-Pro's category under the reference profile)."""
        fields = {"task": self.task, "profile": self.profile(profile)}
        if self.dataset:
            fields["dataset"] = self.dataset
        if self.name == "mmlu_pro" and fields["profile"] == "reference":
            fields["category"] = item.get("category")
        if self.name == "strategyqa":
            return {"question": item["question"], "choices": ["Yes", "No"], **fields}
        if self.name == "proofwriter":  # its question is already context + statement
            question = item.get("question") or (item["context"] + "\n" + item["statement_prompt"])
            return {"question": question, "choices": None, **fields}
        choices = item.get("choices") if self.task == "multiple_choice" else None
        return {"question": item["question"], "choices": choices, **fields}

    def gold(self, item: dict) -> str:
        """The gold answer in the form the server returns its prediction."""
        answer = str(item["answer"])
        if self.name == "strategyqa":
            return {"yes": "A", "no": "B"}[answer.strip().lower()]
        if self.name == "proofwriter" and len(answer) == 1 and item.get("choices"):
            return item["choices"][ord(answer.upper()) - 65]  # A/B/C -> True/False/Unknown
        return answer

    def correct(self, item: dict, prediction: str | None) -> bool:
        return prediction is not None and self.match(self.gold(item), prediction)


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in [
        Benchmark("gsm8k", "gsm8k.jsonl", "math", number_equal, "gsm8k"),
        Benchmark("math", "math500.jsonl", "math_boxed", math_equal, "math"),  # MATH-500
        Benchmark("math_full", "math.jsonl", "math_boxed", math_equal, "math"),  # the paper's
        Benchmark(
            "commonsenseqa", "commonsenseqa.jsonl", "multiple_choice", letter_equal, "commonsenseqa"
        ),
        Benchmark(
            "hellaswag",
            "hellaswag.jsonl",
            "multiple_choice",
            letter_equal,
            "hellaswag",
            exclude=HELLASWAG_SHOTS,
        ),
        Benchmark("proofwriter", "proofwriter.jsonl", "true_false", truth_equal, "proofwriter"),
        Benchmark(
            "arc_challenge", "arc_challenge.jsonl", "multiple_choice", letter_equal, "arc_challenge"
        ),
        Benchmark("mmlu_pro", "mmlu_pro.jsonl", "multiple_choice", letter_equal, "mmlu_pro"),
        Benchmark("strategyqa", "strategyqa.jsonl", "multiple_choice", letter_equal),
    ]
}


def get(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(BENCHMARKS)}") from None


def load_items(
    bench: Benchmark, data_dir: Path | str | None = None, limit: int | None = None
) -> list[dict]:
    """The first `limit` items of a benchmark file (all when None), without the items
    the reference profile shows as shots."""
    path = Path(data_dir or default_data_dir()) / bench.file
    items: list[dict] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if limit is not None and len(items) >= limit:
                break
            if line.strip():
                item = json.loads(line)
                if str(item.get("id")) not in bench.exclude:
                    items.append(item)
    return items


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of k successes in n trials; (0, 0) when n is 0."""
    if n == 0:
        return 0.0, 0.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    return (0.0 if k == 0 else lo), (1.0 if k == n else hi)  # exact at the edges
