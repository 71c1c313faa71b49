"""Prompts of the making pipeline, in our own words, with few-shot examples that are
not from any evaluation set."""

from __future__ import annotations

INSERT_SYSTEM = (
    "You reveal the unstated reasoning in a text. You are given the text so far and the "
    "sentence that comes next. Write one short sentence with the thought that leads "
    "from the text so far to the next sentence: what the writer had to notice, recall "
    "or plan. Do not repeat the next sentence."
)

# (text so far, next sentence, rationale)
INSERT_SHOTS = [
    (
        "Question: A baker fills 6 trays with 9 rolls each and sells 20 rolls. How many "
        "rolls are left?\nAnswer: The baker makes 6 x 9 = 54 rolls.",
        "After selling 20, 54 - 20 = 34 rolls are left.",
        "Selling rolls removes them, so subtract the sold rolls from the total.",
    ),
    (
        "The river froze early that winter.",
        "The ferry stayed tied up at the dock until March.",
        "A frozen river cannot be crossed by boat, so the ferry could not run.",
    ),
    (
        "Question: Can a person read a whole library in a week?\nAnswer:",
        "No.",
        "A library holds thousands of books and one book takes hours to read, so it is impossible.",
    ),
]


def insert_messages(so_far: str, next_sentence: str) -> list[dict]:
    msgs = [{"role": "system", "content": INSERT_SYSTEM}]
    for a, b, r in INSERT_SHOTS:
        msgs.append({"role": "user", "content": _insert_user(a, b)})
        msgs.append({"role": "assistant", "content": r})
    msgs.append({"role": "user", "content": _insert_user(so_far, next_sentence)})
    return msgs


def _insert_user(so_far: str, next_sentence: str) -> str:
    return f"Text so far:\n{so_far}\n\nNext sentence:\n{next_sentence}\n\nReasoning:"


REWRITE_SYSTEM = (
    "Copy the user's text exactly, and between its sentences add the unstated reasoning "
    "that leads to the next sentence, each wrapped as <BOT>reasoning<EOT>. Other than "
    "the added rationales, do not modify the original text."
)

REWRITE_SHOTS = [
    (
        "Question: Tom has 3 boxes of 12 pencils and gives away 10. How many are left?\n"
        "Answer: Tom has 3 x 12 = 36 pencils. He has 36 - 10 = 26 left.",
        "Question: Tom has 3 boxes of 12 pencils and gives away 10. How many are left?\n"
        "Answer: <BOT>First find how many pencils there are in all.<EOT> Tom has 3 x 12 = "
        "36 pencils. <BOT>Giving pencils away means subtracting them.<EOT> He has 36 - 10 "
        "= 26 left.",
    ),
    (
        "The shop ran out of bread by noon. The owner baked twice as much the next day.",
        "The shop ran out of bread by noon. <BOT>Running out means demand was higher than "
        "the supply, so the owner should bake more.<EOT> The owner baked twice as much the "
        "next day.",
    ),
]


def rewrite_messages(text: str) -> list[dict]:
    msgs = [{"role": "system", "content": REWRITE_SYSTEM}]
    for plain, marked in REWRITE_SHOTS:
        msgs.append({"role": "user", "content": plain})
        msgs.append({"role": "assistant", "content": marked})
    msgs.append({"role": "user", "content": text})
    return msgs


# The filter's frame, the reference's: the following text as the continuation of the
# preceding text, with the rationale appended to the preceding text or not.
FILTER_SYSTEM = "Your task is to generate future text given preceding text."
