"""Issue 25's done-when checks on documents written for the check
(tests/data/heldout_docs.jsonl: question/answer items with display maths, an [asy]
figure and choices in the question, and plain texts with maths, code and a
"Question: ...\\nAnswer:" layout), and on the committed rerun.

Extraction runs on a scripted engine (it stands in for the model only: every prompt it
receives is built by the real pipeline), so the checks read exactly where the pipeline
asks for a rationale."""

import asyncio
import json
import re
from pathlib import Path

from rationalyst.making import extract, split
from rationalyst.making.documents import read_documents
from rationalyst.supervisor.scripted_engine import ScriptedEngine

HERE = Path(__file__).resolve().parent
DOCS = HERE / "data/heldout_docs.jsonl"
RERUN = HERE.parent / "docs/results/made-smollm2-135m"
OPEN_CLOSE = [
    (r"\$\$", r"\$\$"),
    (r"\\\[", r"\\\]"),
    (r"\\begin\{", r"\\end\{"),
    (r"```", r"```"),
    (r"\[asy\]", r"\[/asy\]"),
]


def _asked(tmp_path) -> tuple[list[dict], list[tuple[str, str]]]:
    """The input items and every (text so far, next sentence) extraction asked about."""
    asked = []

    def reply(prompt: str) -> str:
        body = prompt.rsplit("Text so far:\n", 1)[1]
        so_far, nxt = body.split("\n\nNext sentence:\n", 1)
        asked.append((so_far, nxt.split("\n\nReasoning:", 1)[0]))
        return "Some linking thought here."

    docs = read_documents([str(DOCS)])
    asyncio.run(
        extract.run(
            ScriptedEngine(generate=reply), docs, tmp_path, extract.ExtractConfig(), progress=False
        )
    )
    items = [json.loads(line) for line in DOCS.read_text().splitlines()]
    return items, asked


def test_no_rationale_is_asked_inside_a_question(tmp_path):
    items, asked = _asked(tmp_path)
    questions = [it["question"].strip() for it in items if "question" in it]
    questions.append("Is the sun a star? Most people think of stars as small.")
    for so_far, nxt in asked:
        for q in questions:
            # A prefix that holds the question's start holds all of it and its "Answer:".
            if so_far.startswith("Question: " + q[:20]):
                assert q in so_far and re.search(r"\nAnswer:", so_far), so_far
        assert not nxt.startswith("Question:")
    # Every question/answer item was asked about right after its question.
    for q in questions:
        assert any(
            so_far.startswith("Question: " + q) and so_far.rstrip().endswith("Answer:")
            for so_far, _ in asked
        ), q


def test_no_rationale_is_asked_inside_display_maths_or_code(tmp_path):
    _, asked = _asked(tmp_path)
    assert len(asked) >= 20
    for so_far, _ in asked:
        for opening, closing in OPEN_CLOSE:
            if opening == closing:
                assert len(re.findall(opening, so_far)) % 2 == 0, so_far
            else:
                assert len(re.findall(opening, so_far)) == len(re.findall(closing, so_far)), so_far


def test_plain_text_is_asked_about_between_sentences(tmp_path):
    _, asked = _asked(tmp_path)
    birds = [(s, n) for s, n in asked if s.startswith("Many birds")]
    assert birds == [
        ("Many birds migrate at night.", "The air is cooler and calmer after sunset."),
        (
            "Many birds migrate at night. The air is cooler and calmer after sunset.",
            "Predators that hunt by sight are less active in the dark.",
        ),
    ]


def test_the_rerun_keeps_leaks_under_5_percent_and_drops_truncations():
    """The rerun's committed audit: a sample of its guarded triples, re-checked by the
    guard at a looser bar (similarity 0.6, half the content words). At most 5% may read
    as a restatement of the following text; the extract stats count the dropped
    truncations."""
    audit = RERUN / "leak_audit.jsonl"
    rows = [json.loads(line) for line in audit.read_text().splitlines()]
    assert len(rows) >= 100
    flagged = [r for r in rows if loose_leak(r["rationale"], r["following"])]
    assert len(flagged) <= 0.05 * len(rows), flagged[:3]
    for shard in ("a", "b"):
        stats = json.loads((RERUN / f"shard-{shard}/extract_stats.json").read_text())
        assert "rationales_truncated" in stats and "rationales_leak_by_reason" in stats


def loose_leak(rationale: str, following: str) -> bool:
    if split.is_leak(rationale, following, 0.6):
        return True
    wanted = split.content_words(following)
    return len(wanted) >= split.MIN_CONTENT_WORDS and len(
        wanted & split.content_words(rationale)
    ) >= 0.5 * len(wanted)
