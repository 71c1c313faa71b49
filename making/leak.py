"""The leak guard: a rationale must not restate the text that follows it (it would
raise that text's likelihood trivially, and teach RATIONALYST to copy).

The lexical rules live in split.leak_reason. A paraphrase shares few words with what
it restates ("A hat is a product of the milliner's craft" before "A milliner is
someone who makes hats."), so the "meaning" rule adds a sentence-embedding check:
the following text's cosine with the rationale, or with any clause of it, reaches
`meaning`. An embedding also rates a rationale on the same topic high, so the rule
errs towards rejecting: a rejected good rationale costs one training pair, a kept
restatement teaches copying. The threshold was set on one read sample and checked on
another (docs/results/made-smollm2-135m/README.md).
"""

from __future__ import annotations

import re
from functools import cached_property

from . import embeddings, split

MEANING_THRESHOLD = 0.58  # WordLlama's cosine; set on a read sample (module docstring)
# Clause breaks: sentence ends, and the connectives a rationale chains its claims with
# ("..., so it is impossible").
_CLAUSES = re.compile(
    r"(?<=[.;!?])\s+|,\s*(?=(?:so|but|and|which|because|since|therefore|thus)\b)|\bso\b"
)


def clauses(text: str) -> list[str]:
    """The text and its clauses of three words or more."""
    parts = [p.strip(" ,") for p in _CLAUSES.split(text) if p]
    return [text] + [p for p in parts if len(p.split()) >= 3 and p != text]


class LeakGuard:
    """`reason(rationale, following, preceding)`: why a rationale leaks, or None.

    `embedder`: 'wordllama' (bundled), a sentence-transformers directory, or None for
    the lexical rules only. It is loaded on first use."""

    def __init__(
        self,
        threshold: float = 0.7,
        meaning: float = MEANING_THRESHOLD,
        embedder: str | None = embeddings.BUNDLED,
    ):
        self.threshold, self.meaning, self.spec = threshold, meaning, embedder

    @cached_property
    def embedder(self) -> embeddings.Embedder:
        return embeddings.load(self.spec)

    def closeness(self, rationale: str, following: str) -> float:
        """Largest cosine of the following text with the rationale or a clause of it."""
        parts = clauses(rationale)
        vecs = self.embedder.encode([following, *parts])
        return float((vecs[1:] @ vecs[0]).max())

    def reason(self, rationale: str, following: str, preceding: str = "") -> str | None:
        why = split.leak_reason(rationale, following, self.threshold, preceding)
        if why or self.spec is None:
            return why
        # A short following text ("Yes.", "So x = 2.") has nothing to paraphrase; the
        # answer rule covers it.
        if len(split.content_words(following)) < split.MIN_CONTENT_WORDS:
            return None
        return "meaning" if self.closeness(rationale, following) >= self.meaning else None
