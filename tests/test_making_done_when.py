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
from rationalyst.making.leak import LeakGuard
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


def _audit(name: str) -> list[dict]:
    return [json.loads(line) for line in (RERUN / name).read_text().splitlines()]


def test_the_rerun_drops_truncations_and_its_guard_passes_every_audited_triple():
    rows = _audit("leak_audit_heldout.jsonl")
    assert len(rows) >= 100
    # The committed guard lets every audited triple through: the sample is of its output.
    guard = LeakGuard()
    assert not [r for r in rows if guard.reason(r["rationale"], r["following"], r["preceding"])]
    # It is not the sample the meaning rule's threshold was set on.
    assert not {r["id"] for r in rows} & {r["id"] for r in _audit("leak_audit.jsonl")}
    for shard in ("a", "b"):
        stats = json.loads((RERUN / f"shard-{shard}/extract_stats.json").read_text())
        assert stats["rationales_truncated"] > 0  # cut-off rationales were dropped
        assert set(stats["rationales_leak_by_reason"]) == set(split.LEAK_REASONS)
        assert stats["rationales_leak_by_reason"]["meaning"] > 0


def test_the_meaning_rule_on_the_sample_its_threshold_was_set_on():
    """leak_audit.jsonl: a reader's verdicts on the triples before the meaning rule.
    The rule rejects 7 of its 10 restatements (and 19 of the 110 others)."""
    guard = LeakGuard()
    rows = _audit("leak_audit.jsonl")
    rejected = [r for r in rows if guard.reason(r["rationale"], r["following"], r["preceding"])]
    assert sum(r["restates"] is True for r in rows) == 10
    assert sum(r["restates"] is True for r in rejected) == 7
    assert len(rejected) == 26


def test_the_rerun_restates_its_following_text_in_at_most_5_percent():
    """Issue 25's bar, on a reader's verdicts over a seeded sample of the triples the
    final guard keeps, read without the guard's scores (leak_audit.py; "partly"
    counts as no)."""
    rows = _audit("leak_audit_heldout.jsonl")
    assert all(r["restates"] in (True, False, "partly") for r in rows)
    assert sum(r["restates"] is True for r in rows) <= 0.05 * len(rows)
