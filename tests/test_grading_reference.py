"""`--grading reference` reads answers the way the reference's inference_no_length.py
does, quirks included; `--grading lenient` is the server's own answer. One table per
dataset: each row is the steps, the reference's reading, and whether each mode grades
it right for the gold given."""

from __future__ import annotations

import pytest

from rationalyst.clients import datasets, grading
from rationalyst.supervisor import answers


def both(
    dataset: str,
    task: str,
    steps: list[str],
    gold_item: dict,
    choices=None,
    question: str = "q",
    seed: int = 0,
):
    """(reference reading, reference right?, lenient right?) for these steps."""
    ref = grading.reference_prediction(dataset, question, choices, steps, seed)
    ref_ok = ref is not None and ref == grading.reference_gold(dataset, gold_item)
    # Lenient: what the server's loop extracts from the first step with an answer.
    server = next((a for s in steps if (a := answers.extract(task, s, choices))), None)
    bench = datasets.get(dataset if dataset != "math" else "math_full")
    return ref, ref_ok, bench.correct(gold_item, server)


GSM8K = [  # steps, reference reading, reference right, lenient right (gold 18)
    (["The answer is: 18"], "18", True, True),
    (["The answer is: 18.9"], "18", True, False),  # cut at the decimal point
    (["The answer is: $1,8.50"], "18", True, False),  # commas dropped, then cut
    (["The answer is 3 + 15 = 18."], "18", True, False),  # after the first '='
    (["#### 18"], "18", True, True),  # #### is the phrase
    (["THE ANSWER IS 18"], None, False, True),  # case-sensitive phrases
    (["Well, the answer is, so far, 18"], None, False, True),  # ',' reads as empty
    # The server stops at the first answer too; the reference reads the first occurrence.
    (["the answer is 7 but", "The answer is 18"], "7", False, False),
    (["The answer is eighteen"], "eighteen", False, False),  # no digits: the text
]


@pytest.mark.parametrize("steps,reading,ref_ok,lenient_ok", GSM8K)
def test_gsm8k(steps, reading, ref_ok, lenient_ok):
    assert both("gsm8k", "math", steps, {"answer": "18"}) == (reading, ref_ok, lenient_ok)


MATH = [  # gold \boxed{\frac{1}{2}}
    (["So $x = \\boxed{\\frac{1}{2}}$."], "\\frac{1}{2}", True, True),
    (["So $x = \\boxed{\\dfrac12}$."], "\\frac{1}{2}", True, True),  # strip_string
    (["$\\boxed{0.5}$"], "\\frac{1}{2}", True, True),  # its 0.5 rule
    (["First $\\boxed{3}$.", "Then $x$ is $\\frac12$."], "3", False, False),  # last box
    (["$\\boxed 1/2$"], "\\frac{1}{2}", True, False),  # '\boxed ' up to '$'
    (["It is \\boxed{x/y}."], "x/y", False, False),  # a/b with letters: unstripped
    (["no box, the answer is 1/2"], None, False, False),
]


@pytest.mark.parametrize("steps,reading,ref_ok,lenient_ok", MATH)
def test_math(steps, reading, ref_ok, lenient_ok):
    item = {"answer": "\\frac{1}{2}", "solution": "So it is $\\boxed{\\frac{1}{2}}$."}
    assert both("math", "math_boxed", steps, item) == (reading, ref_ok, lenient_ok)


LETTERS = [  # gold B of A-E
    (["The answer is: B"], "B", True, True),
    (["The answer is B"], "B", True, True),
    (["The answer is: (B)"], "(B)", False, True),  # first word, parentheses kept
    (["The answer is: B."], "B.", False, True),
    (["The answer is: B) ice"], "B)", False, True),
    (["The answer is: ice"], "ice", False, True),  # an option's text
    (["The correct answer is: B"], "B", True, True),
    (["I think the answer is A.", "The answer is: B"], "A.", False, False),
]


@pytest.mark.parametrize("dataset", ["commonsenseqa", "hellaswag"])
@pytest.mark.parametrize("steps,reading,ref_ok,lenient_ok", LETTERS)
def test_letter_datasets(dataset, steps, reading, ref_ok, lenient_ok):
    choices = ["air", "ice", "sand", "water", "fire"]
    if dataset == "hellaswag":
        choices = choices[:4]
    assert both(dataset, "multiple_choice", steps, {"answer": "B"}, choices) == (
        reading,
        ref_ok,
        lenient_ok,
    )


ARC = [  # (steps, gold item, reading, ref right, lenient right)
    (["The answer is: B"], {"answer": "B", "answer_key_original": "B"}, "B", True, True),
    (["The answer is: (B)"], {"answer": "B", "answer_key_original": "B"}, "(B)", False, True),
    # numeric keys: the reference's gold is "2", its choices are lettered: never right
    (["The answer is: B"], {"answer": "B", "answer_key_original": "2"}, "B", False, True),
    (["The answer is: 2"], {"answer": "B", "answer_key_original": "2"}, "2", True, False),
]


@pytest.mark.parametrize("steps,item,reading,ref_ok,lenient_ok", ARC)
def test_arc(steps, item, reading, ref_ok, lenient_ok):
    assert both("arc_challenge", "multiple_choice", steps, item, ["a", "b", "c", "d"]) == (
        reading,
        ref_ok,
        lenient_ok,
    )


PROOFWRITER = [  # gold A (True); the server answers True/False/Unknown
    (["The answer is: A"], "A", True, True),
    (["The answer is: True"], "True", False, True),  # the word is not the letter
    (["The answer is: A) True"], "A)", False, True),
    (["The statement is true.", "The answer is A"], "A", True, True),
]


@pytest.mark.parametrize("steps,reading,ref_ok,lenient_ok", PROOFWRITER)
def test_proofwriter(steps, reading, ref_ok, lenient_ok):
    item = {"answer": "A", "choices": ["True", "False", "Unknown"]}
    assert both("proofwriter", "true_false", steps, item) == (reading, ref_ok, lenient_ok)


MMLU = [  # gold C
    (["The answer is (C)."], "C", True, True),
    (["The answer is ((C))."], None, False, True),  # split('(')[1] is empty: no answer
    (["Hmm.", "So the answer is (C)"], "C", True, True),
]


@pytest.mark.parametrize("steps,reading,ref_ok,lenient_ok", MMLU)
def test_mmlu_pro(steps, reading, ref_ok, lenient_ok):
    assert both("mmlu_pro", "multiple_choice", steps, {"answer": "C"}, list("abcdefghij")) == (
        reading,
        ref_ok,
        lenient_ok,
    )


def test_mmlu_pro_guesses_a_seeded_letter_when_the_phrase_has_no_parentheses():
    steps = ["The answer is C."]  # a phrase, but no "answer is (X)": the reference guesses
    guesses = {
        grading.reference_prediction("mmlu_pro", "q", list("abcdefghij"), steps, s)
        for s in range(40)
    }
    assert all(isinstance(g, grading.Guess) for g in guesses) and len(guesses) > 3
    assert grading.reference_prediction(
        "mmlu_pro", "q", None, steps, 7
    ) == grading.reference_prediction("mmlu_pro", "q", None, steps, 7)  # seeded
    assert grading.reference_prediction("mmlu_pro", "q", None, ["No phrase (C)."]) is None


def test_only_the_first_14_steps_are_read():
    steps = ["Thinking."] * 14 + ["The answer is: 18"]
    assert grading.reference_prediction("gsm8k", "q", None, steps) is None
    assert grading.reference_prediction("gsm8k", "q", None, steps[1:]) == "18"


def test_prediction_modes_and_golds():
    trace = {"answer": "18", "steps": [{"text": "The answer is: 18.5"}]}
    req = {"question": "q", "choices": None}
    assert grading.prediction("lenient", "gsm8k", trace, req) == "18"
    assert grading.prediction("reference", "gsm8k", trace, req) == "18"
    assert grading.reference_gold("gsm8k", {"answer": "1234"}) == "1234"
    assert grading.reference_gold("arc_challenge", {"answer": "A"}) == "A"
