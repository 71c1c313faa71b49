"""Parsing, splitting and the leak guard of the making pipeline, on tricky model
outputs (pure text functions: no model)."""

import pytest

from rationalyst.making import split


def test_markers_any_case_and_spaces_split_into_triples():
    out = (
        "Tom has 3 boxes. < bot >He must multiply.<  EOT > He has 36 pencils. "
        "<Bot>Giving away means subtracting.</bot> He has 26 left."
    )
    pieces = split.parse_markers(out)
    assert [p.is_rationale for p in pieces] == [False, True, False, True, False]
    triples, drops = split.triples_from_pieces(pieces)
    assert [(t.preceding, t.rationale, t.following) for t in triples] == [
        ("Tom has 3 boxes.", "He must multiply.", "He has 36 pencils."),
        (
            "Tom has 3 boxes. He has 36 pencils.",
            "Giving away means subtracting.",
            "He has 26 left.",
        ),
    ]
    assert drops == {"empty": 0, "at_edge": 0}
    assert (
        split.strip_rationales(pieces).split()
        == "Tom has 3 boxes. He has 36 pencils. He has 26 left.".split()
    )


@pytest.mark.parametrize(
    "out",
    [
        "A. <BOT>r1 B.",  # never closed
        "A. r1<EOT> B.",  # closed, never opened
        "A. <BOT>r1 <BOT>r2<EOT><EOT> B.",  # nested
    ],
)
def test_unpaired_or_nested_markers_raise(out):
    with pytest.raises(split.MarkerError):
        split.parse_markers(out)


def test_empty_rationales_and_rationales_at_the_edges_give_no_triple():
    out = "<BOT>at the start<EOT>A is big. <BOT>  <EOT> B is small. <BOT>ok<EOT> C. <BOT>at the end<EOT>"
    triples, drops = split.triples_from_pieces(split.parse_markers(out))
    assert [(t.preceding, t.rationale, t.following) for t in triples] == [
        ("A is big. B is small.", "ok", "C.")
    ]
    assert drops == {"empty": 1, "at_edge": 2}


def test_rewritten_text_fails_the_similarity_check():
    original = "Tom has 3 boxes of 12 pencils. He gives away 10. He has 26 left."
    kept = "Tom has 3 boxes of 12 pencils. <BOT>multiply<EOT> He gives away 10. He has 26 left."
    rewritten = "Tom owns three boxes with twelve pencils each, gives ten away, keeps 26."
    assert split.similarity(split.strip_rationales(split.parse_markers(kept)), original) >= 0.99
    assert split.similarity(rewritten, original) < 0.9


def test_sentences_rebuild_the_text_and_respect_the_answer_header():
    text = "Question: Can a cat fly?\nAnswer: No. Cats have no wings.\nSo they cannot fly."
    segs = split.sentences(text)
    assert "".join(segs) == text
    assert split.boundaries(text) == [
        ("Question: Can a cat fly?\nAnswer:", "No."),
        ("Question: Can a cat fly?\nAnswer: No.", "Cats have no wings."),
        ("Question: Can a cat fly?\nAnswer: No. Cats have no wings.", "So they cannot fly."),
    ]


def test_no_boundary_inside_display_maths():
    text = "We expand.\n\\begin{align*}\na &= b.\n&= c.\n\\end{align*}\nDone."
    segs = split.sentences(text)
    assert "".join(segs) == text
    assert any(s.startswith("\\begin{align*}") and "\\end{align*}" in s for s in segs)


@pytest.mark.parametrize(
    "rationale",
    [
        "He has 26 pencils left.",  # a copy
        "he has 26 pencils left",  # copy, other case, no punctuation
        "26 pencils left he has.",  # reordered words
        "So he has 26 pencils left over now.",  # paraphrase padding the sentence
    ],
)
def test_leak_guard_rejects_copies_and_paraphrases(rationale):
    assert split.is_leak(rationale, "He has 26 pencils left.", 0.7)


@pytest.mark.parametrize(
    "rationale",
    [
        "Giving pencils away means subtracting them from the total.",
        "Subtract the 10 given away from the 36.",
    ],
)
def test_leak_guard_keeps_real_rationales(rationale):
    assert not split.is_leak(rationale, "He has 36 - 10 = 26 pencils left.", 0.7)


def test_clean_rationale_drops_label_markers_and_newlines():
    assert split.clean_rationale("Rationale:  multiply <EOT>\n first") == "multiply first"


def test_no_boundary_inside_code_or_figures_nor_at_a_single_line_break():
    text = (
        'Draw the square.\n[asy]\ndraw((0,0)--(1,0)); label("A.", (0,0));\n'
        "dot((1,1));\n[/asy]\nIts side is 1. Run it:\n```\nx = 1. \ny = 2.\n```\n"
        "It prints\n3 in the end.\n\nNew paragraph"
    )
    segs = split.sentences(text)
    assert "".join(segs) == text
    assert [s.strip()[:12] for s in segs] == [
        "Draw the squ",
        "[asy]\ndraw((",
        "Run it:\n```\n",
        "New paragrap",
    ]
    assert "It prints\n3 in the end." in segs[2]  # a lone newline does not cut a sentence


def test_no_boundary_inside_the_question():
    text = (
        "Question: Tom is 3. Ann is 5.\nWho is older?\nChoices: A - Tom B - Ann\n"
        "Answer: Ann is 5. The answer is: B"
    )
    pairs = split.boundaries(text)
    assert [nxt for _, nxt in pairs] == ["Ann is 5.", "The answer is: B"]
    assert pairs[0][0].endswith("Ann\nAnswer:")


def test_leak_guard_catches_a_restatement_inside_a_longer_rationale():
    # The held-out example: kept by the similarity guard alone.
    following = "The air is cooler and calmer after sunset."
    rationale = (
        "Many birds migrate and fly at night, but the air is cooler and calmer after sunset."
    )
    assert split.leak_reason(rationale, following, 0.7) == "contains"
    # Most of its content words, reordered and padded, numbers included.
    assert (
        split.leak_reason(
            "Sunset brings calmer winds and cooler air, which makes long "
            "flights of migrating birds easier.",
            following,
            0.7,
        )
        == "content_words"
    )
    assert (
        split.leak_reason(
            "Add 36 pencils to 10 to get the 46 pencils in the box.",
            "So the box holds 36 + 10 = 46 pencils.",
            0.7,
        )
        == "content_words"
    )


@pytest.mark.parametrize(
    "rationale",
    [
        "Yes. A library holds thousands of books, so reading them all takes years.",
        "Bats use echolocation, yes, and no light is needed for it.",
        "No, because the moon has no air.",
    ],
)
def test_leak_guard_keeps_rationales_that_merely_contain_a_short_following_text(rationale):
    for following in ("Yes.", "No.", "So x = 2."):
        assert split.leak_reason(rationale, following, 0.7) is None


def test_content_words_drop_stopwords_and_latex_commands_but_keep_numbers():
    assert split.content_words("So $\\frac{1}{2}$ of the 1,200 apples are red.") == {
        "1",
        "2",
        "1200",
        "apples",
        "red",
    }


@pytest.mark.parametrize(
    "rationale, following, preceding",
    [
        # The final answer of the following step, said first.
        (
            "The answer is indeed 262144.",
            "Each roll has 8 outcomes, so the answer is $$8^6=\\boxed{262144}$$",
            "Question: How many outcomes?\nAnswer:",
        ),
        (
            "This is a classic puzzle. The answer is $8$.",
            "Donut Haven will have $\\boxed{8}$ donuts left over.",
            "Question: How many are left?\nAnswer:",
        ),
        # A number the following text brings first.
        (
            "The plane is a luxury item with a 106 million dollar price tag.",
            "The Boeing 737-800 plane costs 106 million dollars in 2019.",
            "Question: Could a Boeing 737-800 be bought with lottery winnings?\nAnswer: Yes.",
        ),
    ],
)
def test_leak_guard_catches_the_answer_or_a_new_number_said_first(rationale, following, preceding):
    assert split.leak_reason(rationale, following, 0.7, preceding) in ("answer", "new_numbers")


def test_numbers_already_in_the_text_are_no_leak():
    preceding = "Question: Tom has 36 pencils and gives away 10. How many are left?\nAnswer:"
    assert (
        split.leak_reason(
            "Subtract the 10 given away from the 36.",
            "He has 36 - 10 = 26 pencils left.",
            0.7,
            preceding,
        )
        is None
    )
    assert (
        split.leak_reason(
            "Subtract to find that 26 are left.",
            "He has 36 - 10 = 26 pencils left.",
            0.7,
            preceding,
        )
        == "new_numbers"
    )


@pytest.mark.parametrize(
    "rationale, following",
    [
        ("The answer is no.", "No."),
        ("A nosebleed can be stopped with pressure. So, yes.", "Yes."),
        ("A state is an entity, so Guam is not a state.", "Guam is not a state."),
    ],
)
def test_leak_guard_catches_an_answer_said_outright_and_short_sentences_restated(
    rationale, following
):
    assert split.leak_reason(rationale, following, 0.7) in ("answer", "contains")
    assert split.leak_reason("The answer is yes.", "No.", 0.7) is None
