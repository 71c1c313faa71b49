"""The leak guard's meaning rule (making/leak.py), with the real bundled embedding
model (WordLlama, from its wheel: no hub), and extraction on a scripted engine that
stands in for the model that writes rationales."""

import asyncio
import json

import pytest

from rationalyst.cli.making_cmd import ExtractOptions
from rationalyst.making import extract, leak, split
from rationalyst.making.documents import read_documents
from rationalyst.supervisor.scripted_engine import ScriptedEngine

# Paraphrases a reader found in the rerun (leak_audit.jsonl) that every lexical rule
# lets through, and one written for the check.
PARAPHRASES = [
    (
        "A hat is a product of the milliner's craft, so it is likely that the milliner is "
        "a milliner.",
        "A milliner is someone who makes hats.",
    ),
    (
        "A city's livability is measured by its ability to provide clean air, so it is a "
        "crucial aspect of a city's quality of life.",
        "Clean air is an important attribute for a livable city.",
    ),
    ("Hats are made by milliners.", "A milliner is someone who makes hats."),
]
# Rationales on the same topic that bring something else.
ON_TOPIC = [
    (
        "Birds that fly at night avoid the predators that hunt by sight.",
        "The air is cooler and calmer after sunset.",
    ),
    (
        "Mercury was used to make felt for hats, which poisoned the workers.",
        "A milliner is someone who makes hats.",
    ),
    (
        "The question asks whether a hat maker would need a chelating drug.",
        "A milliner is someone who makes hats.",
    ),
]


@pytest.fixture(scope="module")
def guard():
    return leak.LeakGuard()


@pytest.mark.parametrize("rationale,following", PARAPHRASES)
def test_meaning_rule_catches_paraphrases_the_lexical_rules_miss(guard, rationale, following):
    assert split.leak_reason(rationale, following, 0.7) is None
    assert guard.reason(rationale, following) == "meaning"
    assert leak.LeakGuard(embedder=None).reason(rationale, following) is None


@pytest.mark.parametrize("rationale,following", ON_TOPIC)
def test_meaning_rule_keeps_rationales_on_the_same_topic(guard, rationale, following):
    assert guard.closeness(rationale, following) < leak.MEANING_THRESHOLD
    assert guard.reason(rationale, following) is None


def test_a_clause_is_enough_and_short_following_texts_are_left_to_the_answer_rule(guard):
    rationale, following = PARAPHRASES[0]
    whole = guard.embedder.cosine(rationale, following)
    first = guard.embedder.cosine(leak.clauses(rationale)[1], following)
    assert leak.clauses(rationale)[1] == "A hat is a product of the milliner's craft"
    assert guard.closeness(rationale, following) == pytest.approx(max(whole, first), abs=1e-6)
    # "Yes." has no content to paraphrase, however close its embedding.
    assert guard.reason("Yes, it is.", "Yes.") is None


def test_lexical_rules_still_come_first(guard):
    following = "The air is cooler and calmer after sunset."
    assert guard.reason("the air is cooler and calmer after sunset", following) == "similar"


def test_the_cli_default_is_the_guards_threshold():
    assert ExtractOptions.model_fields["leak_meaning"].default == leak.MEANING_THRESHOLD
    assert extract.ExtractConfig().leak_meaning == leak.MEANING_THRESHOLD


def test_extraction_counts_meaning_leaks_and_can_turn_the_rule_off(tmp_path):
    src = tmp_path / "docs.jsonl"
    src.write_text(
        json.dumps(
            {
                "id": "hat",
                "question": "Would a milliner know about felt?",
                "solution": "A milliner is someone who makes hats. Hats are often felt. Yes.",
            }
        )
        + "\n"
    )

    def reply(prompt: str) -> str:
        nxt = prompt.rsplit("Next sentence:\n", 1)[1].split("\n\n", 1)[0]
        if nxt.startswith("A milliner"):
            return "Hats are made by milliners."
        return "Felt is a fabric pressed from wool fibres, which suits hat making."

    stats = {}
    for name, cfg in (
        ("on", extract.ExtractConfig()),
        ("off", extract.ExtractConfig(leak_embedder=None)),
    ):
        stats[name] = asyncio.run(
            extract.run(
                ScriptedEngine(generate=reply),
                read_documents([str(src)]),
                tmp_path / name,
                cfg,
                progress=False,
            )
        )
    assert stats["on"]["rationales_leak_by_reason"]["meaning"] == 1
    assert stats["off"]["rationales_leak_by_reason"]["meaning"] == 0
    assert stats["off"]["triples"] == stats["on"]["triples"] + 1
    kept = [json.loads(x) for x in (tmp_path / "on/triples.jsonl").read_text().splitlines()]
    assert "Hats are made by milliners." not in [t["rationale"] for t in kept]
