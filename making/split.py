"""Sentences, `<BOT>…<EOT>` markers, triples (preceding, rationale, following) and the
leak guard. Pure text functions: no model, easy to test on tricky outputs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein
from rapidfuzz.utils import default_process

# A boundary after ., ! or ? (and closing quotes/brackets) before whitespace, at a
# line break, and after the "Answer:" of a rendered reasoning item, so that the first
# rationale sees what the server's first rationale call sees ("Question: q\nAnswer:").
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?!Answer:)|\n+\s*(?!Answer:)"
                       r"|(?<=\nAnswer:)[ \t]+")
# No boundary inside display maths (a LaTeX environment, $$...$$ or \[...\]).
_DISPLAY = re.compile(r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}|\$\$.*?\$\$|\\\[.*?\\\]",
                      re.DOTALL)
# Markers as models write them: any case, spaces inside the brackets.
_MARKER = re.compile(r"<\s*(/?)\s*(bot|eot)\s*>", re.IGNORECASE)


class MarkerError(ValueError):
    """Unpaired or nested markers: the output cannot be split."""


def sentences(text: str) -> list[str]:
    """Segments whose concatenation is `text` (each keeps its trailing space)."""
    out, start = [], 0
    display = [m.span() for m in _DISPLAY.finditer(text)]
    for m in _BOUNDARY.finditer(text):
        if any(a < m.start() < b for a, b in display):
            continue
        if m.end() > start and text[start:m.start()].strip():
            out.append(text[start:m.end()])
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
            pieces.append(Piece(output[pos:m.start()], False))
            open_at = m.end()
        else:
            if open_at is None:
                raise MarkerError("<EOT> without <BOT>")
            pieces.append(Piece(output[open_at:m.start()], True))
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


def is_leak(rationale: str, following: str, threshold: float) -> bool:
    """A rationale that restates the following text: raises its likelihood trivially.
    Copies score high on `ratio`; paraphrases that reorder or drop a few words on
    `token_sort_ratio` and on `partial_ratio` (the rationale is a near-copy of part
    of it). Both are 0-100 on lower-cased text with punctuation removed."""
    r, f = default_process(rationale), default_process(following)
    if not r or not f:
        return False
    score = max(fuzz.ratio(r, f), fuzz.token_sort_ratio(r, f))
    if 20 <= len(r) <= len(f):  # a rationale that is a chunk of the following text
        score = max(score, fuzz.partial_ratio(r, f))
    return score >= 100 * threshold


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
