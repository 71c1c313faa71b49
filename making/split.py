"""Sentences, `<BOT>…<EOT>` markers, triples (preceding, rationale, following) and the
leak guard. Pure text functions: no model, easy to test on tricky outputs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein
from rapidfuzz.utils import default_process

# A boundary after ., ! or ? (and closing quotes/brackets) before whitespace, at a
# blank line (a paragraph's end), and after the "Answer:" of a rendered reasoning item,
# so that the first rationale sees what the server's first rationale call sees
# ("Question: q\nAnswer:"). A single line break is no boundary: it cuts sentences.
_BOUNDARY = re.compile(
    r"(?<=[.!?])[\"')\]]*\s+(?!Answer:)|\n[ \t]*\n\s*(?!Answer:)"
    r"|(?<=\nAnswer:)[ \t]+"
)
# No boundary inside display maths (a LaTeX environment, $$...$$ or \[...\]) or code
# (``` fences, MATH's [asy]...[/asy] figures).
_BLOCK = re.compile(
    r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}|\$\$.*?\$\$|\\\[.*?\\\]"
    r"|```.*?```|\[asy\].*?\[/asy\]",
    re.DOTALL,
)
# A "Question: ...\nAnswer:" text: the question is one piece, asked about only after it.
_ANSWER_AT = re.compile(r"\A\s*Question:.*?\nAnswer:", re.DOTALL)
# Markers as models write them: any case, spaces inside the brackets.
_MARKER = re.compile(r"<\s*(/?)\s*(bot|eot)\s*>", re.IGNORECASE)


class MarkerError(ValueError):
    """Unpaired or nested markers: the output cannot be split."""


def sentences(text: str) -> list[str]:
    """Segments whose concatenation is `text` (each keeps its trailing space)."""
    out, start = [], 0
    blocks = [m.span() for m in _BLOCK.finditer(text)]
    head = _ANSWER_AT.match(text)
    for m in _BOUNDARY.finditer(text):
        if any(a < m.start() < b for a, b in blocks) or (head and m.start() < head.end()):
            continue
        if m.end() > start and text[start : m.start()].strip():
            out.append(text[start : m.end()])
            start = m.end()
    if start < len(text):
        if out and not text[start:].strip():
            out[-1] += text[start:]
        else:
            out.append(text[start:])
    return out


def boundaries(text: str) -> list[tuple[str, str]]:
    """(text so far, next sentence) at each sentence boundary, for insert mode."""
    segs = sentences(text)
    return [("".join(segs[:i]).rstrip(), segs[i].strip()) for i in range(1, len(segs))]


@dataclass(frozen=True)
class Piece:
    text: str
    is_rationale: bool


def parse_markers(output: str) -> list[Piece]:
    """Split a rewrite into text and rationale pieces; raises MarkerError on an
    unpaired or nested marker. `</BOT>` is read as `<EOT>` (small models write it)."""
    pieces: list[Piece] = []
    pos, open_at = 0, None
    for m in _MARKER.finditer(output):
        is_open = m[2].lower() == "bot" and not m[1]
        if is_open:
            if open_at is not None:
                raise MarkerError("nested <BOT>")
            pieces.append(Piece(output[pos : m.start()], False))
            open_at = m.end()
        else:
            if open_at is None:
                raise MarkerError("<EOT> without <BOT>")
            pieces.append(Piece(output[open_at : m.start()], True))
            open_at = None
        pos = m.end()
    if open_at is not None:
        raise MarkerError("<BOT> without <EOT>")
    pieces.append(Piece(output[pos:], False))
    return pieces


def strip_rationales(pieces: list[Piece]) -> str:
    return "".join(p.text for p in pieces if not p.is_rationale)


def similarity(a: str, b: str) -> float:
    """The reference's check: 1 - edit distance / length, spaces removed."""
    a, b = re.sub(r"\s+", "", a), re.sub(r"\s+", "", b)
    return Levenshtein.normalized_similarity(a, b)


# Words that carry no content of their own: a rationale may share them freely.
_STOPWORDS = frozenset(
    """
a about after again all also am an and any are as at be because been before being
between both but by can could did do does doing done each few for from had has have
having he her here hers him his how i if in into is it its itself just me more most my
no nor not now of off on once only or other our out over own same she should so some
such than that the their them then there these they this those through to too under
until up very was we were what when where which while who whom why will with would
yes you your
""".split()
)
# The guard's content-word rule needs this many content words in the following text
# (the containment rule two): a short one ("Yes.", "So x = 2.") is named by any
# rationale on topic.
MIN_CONTENT_WORDS = 3
MIN_CONTAINED_WORDS = 2
CONTENT_SHARE = 0.6  # "most of its content words"
LEAK_REASONS = ("similar", "contains", "content_words", "answer", "new_numbers", "meaning")
_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_ANSWER_IS = re.compile(r"answer is:?\s*\$?([^\s$]+)", re.IGNORECASE)
# A yes/no answer said outright ("The answer is no.", "So, yes."), not merely a "yes"
# somewhere in a rationale.
_SAYS_YES_NO = re.compile(
    r"(?:answer is:?|\bso,?|^)\s*(yes|no)\W*$|answer is:?\s*(yes|no)\b", re.IGNORECASE
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def numbers(text: str) -> set[str]:
    return {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text)}


def stated_answers(text: str) -> set[str]:
    """Final answers a solution step states: \\boxed{...} or "The answer is: x"."""
    found = _BOXED.findall(text) + _ANSWER_IS.findall(text)
    return {a.replace(" ", "").rstrip(".") for a in found} - {""}


def _states(rationale: str, answer: str) -> bool:
    if _NUMBER.fullmatch(answer.lstrip("-")):
        return answer.lstrip("-").replace(",", "") in numbers(rationale)
    return len(answer) >= 2 and answer in re.sub(r"[\s$]", "", rationale)


def content_words(text: str) -> set[str]:
    """Lower-cased words of 2+ letters that are not stopwords, and numbers; LaTeX
    command names (\\frac) are markup, not content."""
    text = re.sub(r"\\[A-Za-z]+", " ", text.lower())
    words = re.findall(r"\d+(?:[.,]\d+)*|[a-z][a-z'-]*[a-z]", text)
    return {w.replace(",", "") for w in words if w not in _STOPWORDS}


def leak_reason(
    rationale: str, following: str, threshold: float, preceding: str = ""
) -> str | None:
    """Why a rationale restates the following text (it raises its likelihood
    trivially), or None. "similar": a copy or paraphrase (rapidfuzz, `threshold`);
    "contains": the following text inside a longer rationale; "content_words": most of
    the following text's content words (numbers included), these two only for a
    following text of MIN_CONTENT_WORDS or more; "answer": the final answer the
    following step states (\\boxed{x}, "The answer is: x"; a bare "Yes."/"No." said
    outright as the answer); "new_numbers": a number of
    two or more digits that the following text brings first (not in `preceding`)."""
    r, f = default_process(rationale), default_process(following)
    if not r or not f:
        return None
    score = max(fuzz.ratio(r, f), fuzz.token_sort_ratio(r, f))
    if 20 <= len(r) <= len(f):  # a rationale that is a chunk of the following text
        score = max(score, fuzz.partial_ratio(r, f))
    if score >= 100 * threshold:
        return "similar"
    wanted = content_words(following)
    if len(wanted) >= MIN_CONTAINED_WORDS and f" {f} " in f" {r} ":
        return "contains"
    if len(wanted) >= MIN_CONTENT_WORDS and len(
        wanted & content_words(rationale)
    ) >= CONTENT_SHARE * len(wanted):
        return "content_words"
    return _states_what_follows(rationale, following, preceding)


def _states_what_follows(rationale: str, following: str, preceding: str) -> str | None:
    if any(_states(rationale, a) for a in stated_answers(following)):
        return "answer"
    said = _SAYS_YES_NO.search(rationale.strip())
    if said and (said[1] or said[2]).lower() == default_process(following):
        return "answer"
    new = {n for n in numbers(following) - numbers(preceding) if len(n) >= 2}
    if preceding and new & numbers(rationale):
        return "new_numbers"
    return None


def is_leak(rationale: str, following: str, threshold: float, preceding: str = "") -> bool:
    return leak_reason(rationale, following, threshold, preceding) is not None


def clean_rationale(text: str) -> str:
    """One line, markers and a leading 'Rationale:' label removed."""
    text = _MARKER.sub(" ", text)
    text = re.sub(r"^\s*(rationale|reasoning)\s*:\s*", "", text, flags=re.IGNORECASE)
    return " ".join(text.split())


@dataclass
class Triple:
    preceding: str
    rationale: str
    following: str


def triples_from_pieces(pieces: list[Piece]) -> tuple[list[Triple], dict[str, int]]:
    """Each rationale with the text before it and the text up to the next rationale.
    Empty rationales are dropped; one at the very start (nothing precedes) or the
    very end (nothing follows) has no triple. Returns counts of what was dropped."""
    drops = {"empty": 0, "at_edge": 0}
    out: list[Triple] = []
    text_so_far = ""
    for i, p in enumerate(pieces):
        if not p.is_rationale:
            text_so_far += p.text
            continue
        rationale = clean_rationale(p.text)
        following = "".join(q.text for q in _until_next_rationale(pieces, i + 1)).strip()
        if not rationale:
            drops["empty"] += 1
        elif not text_so_far.strip() or not following:
            drops["at_edge"] += 1
        else:
            out.append(Triple(_squash(text_so_far), rationale, _squash(following)))
    return out, drops


def _until_next_rationale(pieces: list[Piece], start: int) -> list[Piece]:
    out = []
    for q in pieces[start:]:
        if q.is_rationale:
            break
        out.append(q)
    return out


def _squash(text: str) -> str:
    """Strip, and close the gap a removed marker leaves ("a  b" -> "a b")."""
    return re.sub(r"[ \t]{2,}", " ", text.strip())
